import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import {
  issuerCredentialFromPem,
  readIssuerDir,
  readPemFile,
  type IssuerDirFiles,
} from '../ca/store/index.js';
import {
  isLanyardError,
  parseCertificatesPem,
  systemScheduler,
  type Clock,
  type IssuerCredential,
  type Scheduler,
} from '../ca/index.js';
import { contentFingerprint, createFileWatch, type FileLook, type WatchVerdict } from './file-watch.js';

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

/**
 * The PEM material of a credential that validated, with the time it was validated at and the
 * anchors' spiffe_sequence: what a cluster primary hands to its workers (credential-handoff.ts).
 */
export interface CredentialMaterial {
  readonly certificatePem: string;
  readonly keyPem: string;
  readonly anchorsPem: string;
  /** the `now` it validated at (ISO 8601) */
  readonly validatedAt: string;
  /** when the source loaded it (ISO 8601) */
  readonly loadedAt: string;
  readonly anchorsSequence: number | undefined;
}

export interface DirectoryCredentialOptions {
  /** directory with tls.crt/tls.key[/ca.crt] or crt.pem/key.pem */
  readonly dir: string;
  /** trust anchors file; defaults to DIR/ca.crt */
  readonly trustAnchorsPath?: string;
  /** PEM certificates appended after those of the certificate file (a cross certificate, say) */
  readonly intermediatesPath?: string;
  readonly clock: Clock;
  /** runs the polls and the fs.watch debounce (default: Node's timers, unref'd) */
  readonly scheduler?: Scheduler;
  readonly logger: Logger;
  /** how often the files are re-read; 0 disables polling (changes are still seen through fs.watch) */
  readonly pollIntervalMs?: number;
  readonly onReload?: (outcome: ReloadOutcome) => void;
  /** called with the material of each credential that validated, before the onChange listeners */
  readonly onMaterial?: (material: CredentialMaterial) => void;
}

/** What one look at the credential files read. */
interface CredentialFiles {
  readonly files: IssuerDirFiles;
  readonly anchorsMtimeMs: number;
  /** the intermediates file's text, unparsed (undefined: none configured) */
  readonly intermediatesPem: string | undefined;
}

/**
 * One look at the issuer directory and the intermediates file: their contents (one fingerprint) and
 * the anchors file's mtime.
 */
async function lookAtIssuerDir(
  options: Pick<DirectoryCredentialOptions, 'dir' | 'trustAnchorsPath' | 'intermediatesPath'>,
): Promise<FileLook<CredentialFiles>> {
  try {
    const [files, intermediatesPem] = await Promise.all([
      readIssuerDir(options.dir, options.trustAnchorsPath),
      options.intermediatesPath === undefined ? undefined : readPemFile(options.intermediatesPath),
    ]);
    const anchorsMtimeMs = (await stat(files.anchorsPath)).mtimeMs;
    const fingerprint = contentFingerprint(
      files.certificatePem,
      files.keyPem,
      files.anchorsPem,
      ...(intermediatesPem === undefined ? [] : [intermediatesPem]),
    );
    return { ok: true, fingerprint, value: { files, anchorsMtimeMs, intermediatesPem } };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * The certificate PEM a credential is assembled from: the certificate file's, then the certificates
 * of the intermediates file, which must hold at least one CERTIFICATE block and nothing else (its
 * own code otherwise: ERR_PEM_MALFORMED, ERR_PEM_UNEXPECTED_TYPE, …).
 */
function withIntermediates(certificatePem: string, intermediatesPem: string | undefined): string {
  if (intermediatesPem === undefined) return certificatePem;
  parseCertificatesPem(intermediatesPem, 'the intermediates file');
  return `${certificatePem}${certificatePem.endsWith('\n') ? '' : '\n'}${intermediatesPem}`;
}

/**
 * The refusals of a served cross certificate (ca/credential.ts), whether it comes from --intermediates
 * or from tls.crt (issuer create --cross-signed): at start they fail the start (a wrong certificate,
 * not a Secret still arriving); at a reload they are a rejected reload.
 */
const CROSS_CERT_CODES: ReadonlySet<string> = new Set([
  'ERR_CROSS_CERT_MISMATCH',
  'ERR_CROSS_CERT_UNTRUSTED',
  'ERR_CROSS_CERT_EXPIRES_FIRST',
  'ERR_CROSS_PATHLEN',
]);

/**
 * At start, an intermediates file that cannot be read or holds anything but certificates fails the
 * start with its code, as does a cross certificate the credential refuses (CROSS_CERT_CODES), rather
 * than starting not ready as the other credential files do. At a reload both are rejected reloads:
 * the previous credential keeps serving.
 */
async function checkIntermediatesFile(path: string): Promise<void> {
  withIntermediates('', await readPemFile(path));
}

/** What a directory credential source holds between two looks at the directory. */
interface DirectoryState {
  credential: IssuerCredential | undefined;
  loadedAt: Date | undefined;
  anchorsDigest: string | undefined;
  anchorsSequence: number | undefined;
  outcome: ReloadOutcome;
  /** what the last rejected reload threw */
  rejection?: unknown;
  readonly listeners: Set<(cred: IssuerCredential) => void>;
}

/**
 * Loads the issuer credential from a directory and keeps it current on the file watch
 * (file-watch.ts): polls every few seconds and watches the directory (Kubernetes swaps a mounted
 * Secret by re-pointing its `..data` symlink). A new credential is used only when it validates
 * completely (parses, key matches, CA, chains to an anchor, not expired); otherwise the old one
 * keeps serving. Files that cannot be read count as a rejected reload, at every look.
 */
export async function createDirectoryCredentialSource(
  options: DirectoryCredentialOptions,
): Promise<CredentialSource> {
  if (options.intermediatesPath !== undefined) await checkIntermediatesFile(options.intermediatesPath);
  const state: DirectoryState = {
    credential: undefined,
    loadedAt: undefined,
    anchorsDigest: undefined,
    anchorsSequence: undefined,
    outcome: { result: 'unchanged' },
    listeners: new Set(),
  };

  const watch = createFileWatch({
    look: () => lookAtIssuerDir(options),
    onChange(look): WatchVerdict {
      let next: IssuerCredential;
      try {
        next = acceptCredential(state, options, look);
      } catch (err) {
        return rejectReload(state, options, err);
      }
      announceLoaded(state, options, next);
      return 'accepted';
    },
    onUnreadable: (err) => {
      rejectReload(state, options, err);
    },
    // one version remembered, whatever became of it: files put back as they were are loaded again
    policy: 'latest',
    clock: options.clock,
    scheduler: options.scheduler ?? systemScheduler,
    pollIntervalMs: options.pollIntervalMs ?? 2000,
    watchDirs: [
      options.dir,
      ...[options.trustAnchorsPath, options.intermediatesPath]
        .filter((p): p is string => p !== undefined)
        .map((p) => dirname(p)),
    ],
  });

  async function reload(): Promise<ReloadOutcome> {
    const decision = await watch.check();
    return decision === 'unchanged' ? { result: 'unchanged' } : state.outcome;
  }

  await reload();
  const { outcome } = state;
  // a refused cross certificate fails the start wherever it is served from (--intermediates or tls.crt)
  if (outcome.result === 'rejected' && CROSS_CERT_CODES.has(outcome.code)) {
    await watch.close();
    throw state.rejection;
  }

  return {
    current: () => state.credential,
    loadedAt: () => state.loadedAt,
    anchorsSequence: () => state.anchorsSequence,
    onChange(fn) {
      state.listeners.add(fn);
      return () => state.listeners.delete(fn);
    },
    reload,
    close: () => watch.close(),
  };
}

/** Validates the files into a credential and makes it current (throws when they do not validate). */
function acceptCredential(
  state: DirectoryState,
  options: DirectoryCredentialOptions,
  { files, anchorsMtimeMs, intermediatesPem }: CredentialFiles,
): IssuerCredential {
  const { clock } = options;
  const validatedAt = clock.now();
  const certificatePem = withIntermediates(files.certificatePem, intermediatesPem);
  const next = issuerCredentialFromPem({ ...files, certificatePem }, validatedAt);
  state.credential = next;
  const loadedAt = (state.loadedAt = clock.now());
  const nextAnchorsDigest = contentFingerprint(files.anchorsPem);
  if (nextAnchorsDigest !== state.anchorsDigest) {
    state.anchorsDigest = nextAnchorsDigest;
    const fromFile = Math.floor(anchorsMtimeMs / 1000);
    state.anchorsSequence =
      state.anchorsSequence === undefined ? fromFile : Math.max(fromFile, state.anchorsSequence + 1);
  }
  options.onMaterial?.({
    certificatePem,
    keyPem: files.keyPem,
    anchorsPem: files.anchorsPem,
    validatedAt: validatedAt.toISOString(),
    loadedAt: loadedAt.toISOString(),
    anchorsSequence: state.anchorsSequence,
  });
  return next;
}

/** A credential was loaded: logged, then the onChange listeners and onReload hear of it. */
function announceLoaded(
  state: DirectoryState,
  options: DirectoryCredentialOptions,
  next: IssuerCredential,
): void {
  state.outcome = { result: 'loaded', credential: next };
  options.logger.info(
    {
      event: 'credential_loaded',
      issuerSerial: next.certificate.serialHex,
      issuerSkid: next.issuerKeyIdHex,
      notAfter: next.certificate.notAfter.toISOString(),
      anchors: next.anchors.length,
    },
    'issuer credential loaded',
  );
  for (const fn of state.listeners) fn(next);
  options.onReload?.(state.outcome);
}

/** A reload that failed (files unreadable or invalid): logged and counted; the old credential stays. */
function rejectReload(
  state: DirectoryState,
  options: DirectoryCredentialOptions,
  err: unknown,
): WatchVerdict {
  const code = isLanyardError(err) ? err.code : 'ERR_INTERNAL';
  const message = err instanceof Error ? err.message : String(err);
  state.outcome = { result: 'rejected', code, message };
  state.rejection = err;
  const { credential } = state;
  options.logger.warn(
    { event: 'credential_rejected', code, keptSerial: credential?.certificate.serialHex },
    `issuer credential in ${options.dir} rejected: ${message}${credential ? '; the previous credential keeps serving' : ''}`,
  );
  options.onReload?.(state.outcome);
  // A certificate that is merely not valid yet (a clock a little behind its issuer's) may become
  // valid without the files changing: look at the same files again at the next poll.
  return code === 'ERR_CERT_NOT_YET_VALID' ? 'retry' : 'refused';
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
    readonly intermediatesPath?: string;
    readonly pollIntervalMs: number;
  };
  readonly clock: Clock;
  readonly scheduler?: Scheduler;
  readonly logger: Logger;
  readonly reloads: { labels(result: string): { inc(): void } };
  /** the time of the latest (re)load, unix seconds, by result */
  readonly lastReload?: { labels(result: string): { set(value: number): void } };
  readonly onReload?: () => void;
  readonly onMaterial?: (material: CredentialMaterial) => void;
}): Promise<CredentialSource> {
  return createDirectoryCredentialSource({
    dir: o.config.issuerDir,
    ...(o.config.trustAnchorsPath !== undefined ? { trustAnchorsPath: o.config.trustAnchorsPath } : {}),
    ...(o.config.intermediatesPath !== undefined ? { intermediatesPath: o.config.intermediatesPath } : {}),
    clock: o.clock,
    ...(o.scheduler !== undefined ? { scheduler: o.scheduler } : {}),
    ...(o.onMaterial !== undefined ? { onMaterial: o.onMaterial } : {}),
    logger: o.logger.child({ component: 'credentials' }),
    pollIntervalMs: o.config.pollIntervalMs,
    onReload: (outcome) => {
      if (outcome.result !== 'unchanged') {
        const result = outcome.result === 'loaded' ? 'ok' : 'rejected';
        o.reloads.labels(result).inc();
        o.lastReload?.labels(result).set(o.clock.now().getTime() / 1000);
      }
      o.onReload?.();
    },
  });
}
