import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import {
  createFileKeyStore,
  createIssuerCredential,
  isLanyardError,
  readIssuerDir,
  type Clock,
  type IssuerCredential,
} from '../ca/index.js';

/** The issuer credential currently in force; swapped whole, never mutated. */
export interface CredentialSource {
  current(): IssuerCredential | undefined;
  /** when the current credential was loaded (by this process), per the injected clock */
  loadedAt(): Date | undefined;
  /**
   * spiffe_sequence of the current trust anchors: the anchors file's mtime in whole seconds when this
   * set was loaded, so replicas reading the same file agree and a restart does not go back; raised
   * to one more than the previous set's when a changed set's mtime is not later. undefined = none.
   */
  anchorsSequence?(): number | undefined;
  onChange(fn: (cred: IssuerCredential) => void): () => void;
  /** Re-reads the files now. */
  reload(): Promise<ReloadOutcome>;
  close(): Promise<void>;
}

export type ReloadOutcome =
  | { readonly result: 'loaded'; readonly credential: IssuerCredential }
  | { readonly result: 'unchanged' }
  | { readonly result: 'rejected'; readonly code: string; readonly message: string };

export interface DirectoryCredentialOptions {
  /** directory with tls.crt/tls.key[/ca.crt] or crt.pem/key.pem */
  readonly dir: string;
  /** trust anchors file; defaults to DIR/ca.crt */
  readonly trustAnchorsPath?: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** how often the files are re-read; 0 disables polling (changes are still seen through fs.watch) */
  readonly pollIntervalMs?: number;
  readonly onReload?: (outcome: ReloadOutcome) => void;
}

/**
 * Loads the issuer credential from a directory and keeps it current: polls every few seconds and
 * watches the directory (Kubernetes swaps a mounted Secret by re-pointing its `..data` symlink).
 * A new credential is used only when it validates completely (parses, key matches, CA, chains to
 * an anchor, not expired); otherwise the old one keeps serving.
 */
export async function createDirectoryCredentialSource(
  options: DirectoryCredentialOptions,
): Promise<CredentialSource> {
  const { clock, logger } = options;
  let credential: IssuerCredential | undefined;
  let loadedAt: Date | undefined;
  let lastDigest: string | undefined;
  let anchorsDigest: string | undefined;
  let anchorsSequence: number | undefined;
  let inProgress: Promise<ReloadOutcome> | undefined;
  const listeners = new Set<(cred: IssuerCredential) => void>();

  async function load(): Promise<ReloadOutcome> {
    let outcome: ReloadOutcome;
    try {
      const files = await readIssuerDir(options.dir, options.trustAnchorsPath);
      const anchorsMtimeMs = (await stat(files.anchorsPath)).mtimeMs;
      const digest = createHash('sha256')
        .update(files.certificatePem)
        .update('\0')
        .update(files.keyPem)
        .update('\0')
        .update(files.anchorsPem)
        .digest('hex');
      if (digest === lastDigest) return { result: 'unchanged' };
      lastDigest = digest;
      const signer = createFileKeyStore().fromPem(files.keyPem, files.keyPath);
      const next = createIssuerCredential({
        certificatePem: files.certificatePem,
        signer,
        anchorsPem: files.anchorsPem,
        now: clock.now(),
      });
      credential = next;
      loadedAt = clock.now();
      const nextAnchorsDigest = createHash('sha256').update(files.anchorsPem).digest('hex');
      if (nextAnchorsDigest !== anchorsDigest) {
        anchorsDigest = nextAnchorsDigest;
        const fromFile = Math.floor(anchorsMtimeMs / 1000);
        anchorsSequence = anchorsSequence === undefined ? fromFile : Math.max(fromFile, anchorsSequence + 1);
      }
      outcome = { result: 'loaded', credential: next };
      logger.info(
        {
          event: 'credential_loaded',
          issuerSerial: next.certificate.serialHex,
          issuerSkid: next.certificate.subjectKeyId?.toString('hex'),
          notAfter: next.certificate.notAfter.toISOString(),
          anchors: next.anchors.length,
        },
        'issuer credential loaded',
      );
      for (const fn of listeners) fn(next);
    } catch (err) {
      const code = isLanyardError(err) ? err.code : 'ERR_INTERNAL';
      const message = err instanceof Error ? err.message : String(err);
      outcome = { result: 'rejected', code, message };
      // A certificate that is merely not valid yet (a clock a little behind its issuer's) may become
      // valid without the files changing: look at the same files again at the next poll.
      if (code === 'ERR_CERT_NOT_YET_VALID') lastDigest = undefined;
      logger.warn(
        { event: 'credential_rejected', code, keptSerial: credential?.certificate.serialHex },
        `issuer credential in ${options.dir} rejected: ${message}${credential ? '; the previous credential keeps serving' : ''}`,
      );
    }
    options.onReload?.(outcome);
    return outcome;
  }

  function reload(): Promise<ReloadOutcome> {
    inProgress ??= load().finally(() => {
      inProgress = undefined;
    });
    return inProgress;
  }

  await reload();

  const timers: NodeJS.Timeout[] = [];
  const pollMs = options.pollIntervalMs ?? 2000;
  if (pollMs > 0) {
    const t = setInterval(() => void reload(), pollMs);
    t.unref();
    timers.push(t);
  }
  const watchers: FSWatcher[] = [];
  let debounce: NodeJS.Timeout | undefined;
  const onFsEvent = (): void => {
    clearTimeout(debounce);
    debounce = setTimeout(() => void reload(), 100);
    debounce.unref();
  };
  for (const d of new Set([
    options.dir,
    ...(options.trustAnchorsPath !== undefined ? [dirname(options.trustAnchorsPath)] : []),
  ])) {
    try {
      const w = watch(d, { persistent: false }, onFsEvent);
      w.on('error', () => undefined);
      watchers.push(w);
    } catch {
      // fs.watch is an optimisation; polling still sees every change
    }
  }

  return {
    current: () => credential,
    loadedAt: () => loadedAt,
    anchorsSequence: () => anchorsSequence,
    onChange(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    reload,
    async close() {
      for (const t of timers) clearInterval(t);
      clearTimeout(debounce);
      for (const w of watchers) w.close();
      await inProgress;
    },
  };
}

/** A fixed credential (tests, embedded use). */
export function createStaticCredentialSource(
  credential: IssuerCredential | undefined,
  loadedAt?: Date,
): CredentialSource {
  return {
    current: () => credential,
    loadedAt: () => (credential === undefined ? undefined : loadedAt),
    onChange: () => () => undefined,
    reload: () => Promise.resolve({ result: 'unchanged' }),
    close: () => Promise.resolve(),
  };
}

/**
 * The issuer's credential source as `lanyard serve` configures it: the issuer directory and trust
 * anchors, the poll interval, and reloads counted in `reloads` by result.
 */
export function createIssuerCredentialSource(o: {
  readonly config: {
    readonly issuerDir: string;
    readonly trustAnchorsPath?: string;
    readonly pollIntervalMs: number;
  };
  readonly clock: Clock;
  readonly logger: Logger;
  readonly reloads: { labels(result: string): { inc(): void } };
  readonly onReload?: () => void;
}): Promise<CredentialSource> {
  return createDirectoryCredentialSource({
    dir: o.config.issuerDir,
    ...(o.config.trustAnchorsPath !== undefined ? { trustAnchorsPath: o.config.trustAnchorsPath } : {}),
    clock: o.clock,
    logger: o.logger.child({ component: 'credentials' }),
    pollIntervalMs: o.config.pollIntervalMs,
    onReload: (outcome) => {
      if (outcome.result !== 'unchanged')
        o.reloads.labels(outcome.result === 'loaded' ? 'ok' : 'rejected').inc();
      o.onReload?.();
    },
  });
}
