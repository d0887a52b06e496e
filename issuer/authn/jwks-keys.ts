import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { UsageError, formatDuration, type Clock, type Scheduler } from '../../ca/index.js';
import { createFileVersionTracker, lookAtStats } from '../file-watch.js';
import { AuthenticatorUnavailableError } from './errors.js';
import { raceSignal } from './common.js';
import {
  JWKS_RETRY_MS,
  fetchJwks,
  jwksRefreshDelayMs,
  parseJwks,
  readJwksFile,
  type KeySet,
} from './jwks.js';

/** Where the verification keys come from: a local JWKS file, or an HTTPS URL (CA bundle optional). */
export type JwksSource =
  | { readonly file: string }
  | {
      readonly url: string;
      readonly caFile?: string;
      /** bearer token sent with the request, re-read on every fetch (Kubernetes rotates projected tokens) */
      readonly tokenFile?: string;
    };

export interface JwksKeyStoreOptions {
  readonly source: JwksSource;
  /** keys that verify none of these are left out */
  readonly algorithms: readonly string[];
  readonly clock: Clock;
  /** runs the scheduled fetches of a URL source */
  readonly scheduler: Scheduler;
  /** least time between two re-reads for an unknown kid, ms */
  readonly refetchIntervalMs: number;
  /** file source: least time between two mtime checks, ms */
  readonly fileCheckIntervalMs: number;
  /** URL source: time allowed for one fetch, ms */
  readonly fetchTimeoutMs: number;
  /** after a failed load, calls fail fast for this long before the next attempt on use, ms */
  readonly retryBackoffMs: number;
  /** URL source: longest time between two fetches (a shorter Cache-Control max-age wins), ms */
  readonly refreshIntervalMs: number;
  /** URL source: keys fetched longer ago than this are not used, ms */
  readonly maxKeyAgeMs: number;
  /** called when a load finds a key gone or changed (before the new set is in use) */
  readonly onKeysLost: () => void;
  readonly logger?: Logger | undefined;
}

/** Counters since creation. */
export interface JwksKeyStoreStats {
  /** successful JWKS loads, the first one included */
  readonly jwksLoads: number;
  /** failed JWKS loads */
  readonly jwksLoadFailures: number;
  /** JWKS re-reads triggered by an unknown kid */
  readonly unknownKidRefetches: number;
  /** scheduled JWKS fetches started (URL source) */
  readonly scheduledRefreshes: number;
}

/** The key set of one JWKS source over time: loaded on first use, kept fresh, swapped whole. */
export interface JwksKeyStore {
  /** the file path or URL, for logs and operator messages */
  readonly sourceName: string;
  /**
   * The key set to verify with: loaded, not older than its file, and (URL) fetched less than
   * maxKeyAgeMs ago, loading it when needed; throws AuthenticatorUnavailableError otherwise.
   */
  keys(signal: AbortSignal): Promise<KeySet>;
  /**
   * For a kid the set does not have: joins a load in progress, or re-reads unless one was done
   * less than refetchIntervalMs ago. The key set after it, or undefined when nothing was re-read.
   */
  refetchForUnknownKid(signal: AbortSignal): Promise<KeySet | undefined>;
  /** URL source: the key set in use was fetched maxKeyAgeMs ago or longer (it vouches for nothing) */
  tooOld(): boolean;
  /** loads now (single-flight); throws AuthenticatorUnavailableError on failure */
  reload(reason: string): Promise<void>;
  stats(): JwksKeyStoreStats;
  /** aborts a fetch in progress and stops the scheduled ones */
  close(): void;
}

type ValidSource =
  { readonly file: string } | { readonly url: URL; readonly caFile?: string; readonly tokenFile?: string };

/**
 * A URL source is fetched again every refreshIntervalMs (sooner when the answer's Cache-Control
 * max-age says so, not below 10 s), a failed fetch after JWKS_RETRY_MS; keys older than maxKeyAgeMs
 * are fetched again on use or refused. A file source is re-read when its mtime, size or inode changes
 * (checked on use). A load that finds a key gone or changed calls onKeysLost.
 */
export function createJwksKeyStore(options: JwksKeyStoreOptions): JwksKeyStore {
  const { clock, scheduler, logger, maxKeyAgeMs, retryBackoffMs } = options;
  const source = validateSource(options.source);
  const sourceName = 'file' in source ? source.file : source.url.href;
  const closing = new AbortController();

  let keySet: KeySet | undefined;
  // file source: its version (mtime, size, inode) on the one file-watching mechanism, looked at on use
  const fileTracker = createFileVersionTracker({ clock, intervalMs: options.fileCheckIntervalMs });
  let loading: Promise<void> | undefined;
  let lastFailure: { atMs: number; message: string } | undefined;
  let lastKidRefetchMs = -Infinity;
  // URL source: when the key set in use was fetched; the next scheduled fetch, cancellable
  let loadedAtMs = -Infinity;
  let cancelScheduled: (() => void) | undefined;
  let closed = false;
  const stats = { jwksLoads: 0, jwksLoadFailures: 0, unknownKidRefetches: 0, scheduledRefreshes: 0 };

  /** Reads the source, parses it and swaps the key set; onKeysLost when a key went away. */
  async function load(reason: string): Promise<void> {
    let text: string;
    let newVersion: string | undefined;
    let maxAgeMs: number | undefined;
    const startedMs = clock.now().getTime();
    try {
      if ('file' in source) {
        const look = await lookAtStats([source.file]);
        if (!look.ok) {
          const err = look.error;
          throw new Error(
            `cannot read JWKS file ${source.file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
          );
        }
        newVersion = look.fingerprint;
        text = await readJwksFile(source.file);
      } else {
        const caPem = source.caFile !== undefined ? await readCaFile(source.caFile) : undefined;
        const bearerToken =
          source.tokenFile !== undefined ? (await readCaFile(source.tokenFile)).trim() : undefined;
        const fetched = await fetchJwks(source.url, {
          timeoutMs: options.fetchTimeoutMs,
          signal: closing.signal,
          ...(caPem !== undefined ? { caPem } : {}),
          ...(bearerToken !== undefined ? { bearerToken } : {}),
        });
        text = fetched.text;
        maxAgeMs = fetched.maxAgeMs;
      }
      const next = parseJwks(text, options.algorithms);
      if (keySet !== undefined && lostKeys(keySet, next)) options.onKeysLost();
      keySet = next;
      loadedAtMs = startedMs;
      if (newVersion !== undefined) {
        fileTracker.settle(newVersion, 'accepted');
        fileTracker.looked();
      }
      lastFailure = undefined;
      stats.jwksLoads++;
      const nextInMs = jwksRefreshDelayMs(maxAgeMs, options.refreshIntervalMs);
      scheduleRefresh(nextInMs);
      logger?.info(
        {
          event: 'jwks_loaded',
          reason,
          source: sourceName,
          kids: next.keys.map((k) => k.kid ?? null),
          ...(next.duplicateKids.length > 0 ? { duplicateKids: next.duplicateKids } : {}),
          ...(next.skipped.length > 0 ? { skipped: next.skipped } : {}),
          ...('url' in source ? { nextRefreshInMs: nextInMs } : {}),
        },
        'JWKS loaded',
      );
    } catch (err) {
      const message = (err as Error).message;
      lastFailure = { atMs: clock.now().getTime(), message };
      stats.jwksLoadFailures++;
      // a file that failed to parse is not retried until it changes again
      if (newVersion !== undefined) fileTracker.settle(newVersion, 'refused');
      scheduleRefresh(Math.min(JWKS_RETRY_MS, options.refreshIntervalMs));
      logger?.warn(
        {
          event: 'jwks_load_failed',
          reason,
          source: sourceName,
          err: message,
          ...(keySet !== undefined && 'url' in source
            ? { keysAgeMs: clock.now().getTime() - loadedAtMs, maxKeyAgeMs }
            : {}),
        },
        'JWKS load failed',
      );
      throw new AuthenticatorUnavailableError(`cannot load the JWKS (${reason}): ${message}`, {
        reason: 'keys',
      });
    }
  }

  /** URL source: (re)arms the one scheduled fetch. A file source is checked on use instead. */
  function scheduleRefresh(delayMs: number): void {
    if (!('url' in source) || closed) return;
    cancelScheduled?.();
    cancelScheduled = scheduler.after(delayMs, () => {
      cancelScheduled = undefined;
      stats.scheduledRefreshes++;
      // a failure is logged by load() and keeps the previous keys until they pass maxKeyAgeMs
      reload('scheduled').catch(() => undefined);
    });
  }

  function tooOld(nowMs: number): boolean {
    return 'url' in source && keySet !== undefined && nowMs - loadedAtMs >= maxKeyAgeMs;
  }

  /** Single-flight: concurrent callers share one load; each may stop waiting on its own signal. */
  function reload(reason: string): Promise<void> {
    loading ??= load(reason).finally(() => {
      loading = undefined;
    });
    return loading;
  }

  /** Within retryBackoffMs of a failed load with none in progress: fail fast instead of loading. */
  function backingOff(nowMs: number): boolean {
    return loading === undefined && lastFailure !== undefined && nowMs - lastFailure.atMs < retryBackoffMs;
  }

  /** Fetches a key set past maxKeyAgeMs again (at most once per retryBackoffMs); refuses it if that fails. */
  async function reloadTooOld(nowMs: number, signal: AbortSignal): Promise<void> {
    const refuse = (cause?: unknown): AuthenticatorUnavailableError =>
      new AuthenticatorUnavailableError(
        `the JWKS could not be refreshed for ${formatDuration(nowMs - loadedAtMs)}, longer than its maximum age ${formatDuration(maxKeyAgeMs)}; its keys are no longer used`,
        { reason: 'keys', ...(cause !== undefined ? { cause } : {}) },
      );
    if (backingOff(nowMs)) throw refuse();
    try {
      await raceSignal(reload('too old'), signal);
    } catch (err) {
      if (signal.aborted) throw err;
      throw refuse(err);
    }
    if (tooOld(clock.now().getTime())) throw refuse();
  }

  /** File source: re-reads the file when it changed; a changed file that does not parse keeps the keys. */
  async function checkFile(file: string, signal: AbortSignal): Promise<void> {
    fileTracker.looked();
    const look = await lookAtStats([file]);
    if (!look.ok) {
      logger?.warn(
        { event: 'jwks_stat_failed', source: sourceName, err: (look.error as Error).message },
        'cannot stat the JWKS file; keeping the keys loaded before',
      );
    }
    if (fileTracker.decide(look) === 'changed') {
      await raceSignal(reload('file changed'), signal).catch((err: unknown) => {
        if (!(err instanceof AuthenticatorUnavailableError) || signal.aborted) throw err;
      });
    }
  }

  return {
    sourceName,
    async keys(signal) {
      const nowMs = clock.now().getTime();
      if (tooOld(nowMs)) {
        await reloadTooOld(nowMs, signal);
      } else if (keySet === undefined) {
        if (backingOff(nowMs) && lastFailure !== undefined) {
          throw new AuthenticatorUnavailableError(`the JWKS is unavailable: ${lastFailure.message}`, {
            reason: 'keys',
          });
        }
        await raceSignal(reload('first use'), signal);
      } else if ('file' in source && fileTracker.due()) {
        await checkFile(source.file, signal);
      }
      if (keySet === undefined)
        throw new AuthenticatorUnavailableError('the JWKS is not loaded', { reason: 'keys' });
      return keySet;
    },
    async refetchForUnknownKid(signal) {
      if (loading !== undefined) {
        await raceSignal(loading, signal);
        return keySet;
      }
      const nowMs = clock.now().getTime();
      if (nowMs - lastKidRefetchMs < options.refetchIntervalMs) return undefined;
      lastKidRefetchMs = nowMs;
      stats.unknownKidRefetches++;
      await raceSignal(reload('unknown kid'), signal);
      return keySet;
    },
    tooOld: () => tooOld(clock.now().getTime()),
    reload,
    stats: () => ({ ...stats }),
    close() {
      closed = true;
      cancelScheduled?.();
      cancelScheduled = undefined;
      closing.abort();
    },
  };
}

function validateSource(s: JwksSource): ValidSource {
  if ('file' in s) {
    if (s.file === '') throw new UsageError('the JWKS file path is empty');
    return { file: s.file };
  }
  let url: URL;
  try {
    url = new URL(s.url);
  } catch {
    throw new UsageError(`the JWKS URL ${JSON.stringify(s.url)} is not a URL`);
  }
  if (url.protocol !== 'https:') throw new UsageError(`the JWKS URL must use https:, not ${url.protocol}`);
  return {
    url,
    ...(s.caFile !== undefined ? { caFile: s.caFile } : {}),
    ...(s.tokenFile !== undefined ? { tokenFile: s.tokenFile } : {}),
  };
}

async function readCaFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(
      `cannot read ${path} (JWKS CA or token file): ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
}

/** True when a key of `before` is missing from `after` or changed (same kid, other material). */
function lostKeys(before: KeySet, after: KeySet): boolean {
  const kept = new Set(after.keys.map((k) => k.fingerprint));
  return before.keys.some((k) => !kept.has(k.fingerprint));
}
