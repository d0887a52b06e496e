import type { Logger } from 'pino';
import { formatDuration, type Clock, type Scheduler } from '../../ca/index.js';
import { createFileVersionTracker, lookAtStats, type FileVersionTracker } from '../file-watch.js';
import { AuthenticatorUnavailableError } from './errors.js';
import { raceSignal } from './common.js';
import { JWKS_RETRY_MS, jwksRefreshDelayMs, parseJwks, type KeySet } from './jwks.js';
import {
  readFileSource,
  readUrlSource,
  validateSource,
  type JwksSource,
  type ValidSource,
} from './jwks-source.js';

export type { JwksSource } from './jwks-source.js';

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
  /** whether the key set in use holds the key of this fingerprint (JwksKey.fingerprint); false before the first load */
  holds(fingerprint: string): boolean;
  /** loads now (single-flight); throws AuthenticatorUnavailableError on failure */
  reload(reason: string): Promise<void>;
  stats(): JwksKeyStoreStats;
  /** aborts a fetch in progress and stops the scheduled ones */
  close(): void;
}

/** One key store's state; the functions below read and update it. */
interface StoreState {
  readonly options: JwksKeyStoreOptions;
  readonly source: ValidSource;
  readonly sourceName: string;
  readonly closing: AbortController;
  // file source: its version (mtime, size, inode) on the one file-watching mechanism, looked at on use
  readonly fileTracker: FileVersionTracker;
  readonly stats: {
    jwksLoads: number;
    jwksLoadFailures: number;
    unknownKidRefetches: number;
    scheduledRefreshes: number;
  };
  keySet: KeySet | undefined;
  loading: Promise<void> | undefined;
  lastFailure: { atMs: number; message: string } | undefined;
  lastKidRefetchMs: number;
  // URL source: when the key set in use was fetched; the next scheduled fetch, cancellable
  loadedAtMs: number;
  cancelScheduled: (() => void) | undefined;
  closed: boolean;
}

/**
 * A URL source is fetched again every refreshIntervalMs (sooner when the answer's Cache-Control
 * max-age says so, not below 10 s), a failed fetch after JWKS_RETRY_MS; keys older than maxKeyAgeMs
 * are fetched again on use or refused. A file source is re-read when its mtime, size or inode changes
 * (checked on use). A load that finds a key gone or changed calls onKeysLost.
 */
export function createJwksKeyStore(options: JwksKeyStoreOptions): JwksKeyStore {
  const source = validateSource(options.source);
  const st: StoreState = {
    options,
    source,
    sourceName: 'file' in source ? source.file : source.url.href,
    closing: new AbortController(),
    fileTracker: createFileVersionTracker({ clock: options.clock, intervalMs: options.fileCheckIntervalMs }),
    stats: { jwksLoads: 0, jwksLoadFailures: 0, unknownKidRefetches: 0, scheduledRefreshes: 0 },
    keySet: undefined,
    loading: undefined,
    lastFailure: undefined,
    lastKidRefetchMs: -Infinity,
    loadedAtMs: -Infinity,
    cancelScheduled: undefined,
    closed: false,
  };
  return {
    sourceName: st.sourceName,
    keys: (signal) => keys(st, signal),
    refetchForUnknownKid: (signal) => refetchForUnknownKid(st, signal),
    tooOld: () => tooOld(st, options.clock.now().getTime()),
    holds: (fingerprint) => st.keySet?.keys.some((k) => k.fingerprint === fingerprint) ?? false,
    reload: (reason) => reload(st, reason),
    stats: () => ({ ...st.stats }),
    close() {
      st.closed = true;
      st.cancelScheduled?.();
      st.cancelScheduled = undefined;
      st.closing.abort();
    },
  };
}

/** JwksKeyStore.keys */
async function keys(st: StoreState, signal: AbortSignal): Promise<KeySet> {
  const { source } = st;
  const nowMs = st.options.clock.now().getTime();
  if (tooOld(st, nowMs)) {
    await reloadTooOld(st, nowMs, signal);
  } else if (st.keySet === undefined) {
    if (backingOff(st, nowMs) && st.lastFailure !== undefined) {
      throw new AuthenticatorUnavailableError(`the JWKS is unavailable: ${st.lastFailure.message}`, {
        reason: 'keys',
      });
    }
    await raceSignal(reload(st, 'first use'), signal);
  } else if ('file' in source && st.fileTracker.due()) {
    await checkFile(st, source.file, signal);
  }
  if (st.keySet === undefined)
    throw new AuthenticatorUnavailableError('the JWKS is not loaded', { reason: 'keys' });
  return st.keySet;
}

/** JwksKeyStore.refetchForUnknownKid */
async function refetchForUnknownKid(st: StoreState, signal: AbortSignal): Promise<KeySet | undefined> {
  if (st.loading !== undefined) {
    await raceSignal(st.loading, signal);
    return st.keySet;
  }
  const nowMs = st.options.clock.now().getTime();
  if (nowMs - st.lastKidRefetchMs < st.options.refetchIntervalMs) return undefined;
  st.lastKidRefetchMs = nowMs;
  st.stats.unknownKidRefetches++;
  await raceSignal(reload(st, 'unknown kid'), signal);
  return st.keySet;
}

/** Reads the source, parses it and swaps the key set; onKeysLost when a key went away. */
async function load(st: StoreState, reason: string): Promise<void> {
  const { options, source } = st;
  // file source: the version read, settled as accepted or refused
  const version: { fingerprint?: string } = {};
  const startedMs = options.clock.now().getTime();
  try {
    const { text, maxAgeMs } =
      'file' in source
        ? await readFileSource(source.file, version)
        : await readUrlSource(source, { timeoutMs: options.fetchTimeoutMs, signal: st.closing.signal });
    const next = parseJwks(text, options.algorithms);
    if (st.keySet !== undefined && lostKeys(st.keySet, next)) options.onKeysLost();
    st.keySet = next;
    st.loadedAtMs = startedMs;
    if (version.fingerprint !== undefined) {
      st.fileTracker.settle(version.fingerprint, 'accepted');
      st.fileTracker.looked();
    }
    st.lastFailure = undefined;
    st.stats.jwksLoads++;
    const nextInMs = jwksRefreshDelayMs(maxAgeMs, options.refreshIntervalMs);
    scheduleRefresh(st, nextInMs);
    options.logger?.info(
      {
        event: 'jwks_loaded',
        reason,
        source: st.sourceName,
        kids: next.keys.map((k) => k.kid ?? null),
        ...(next.duplicateKids.length > 0 ? { duplicateKids: next.duplicateKids } : {}),
        ...(next.skipped.length > 0 ? { skipped: next.skipped } : {}),
        ...('url' in source ? { nextRefreshInMs: nextInMs } : {}),
      },
      'JWKS loaded',
    );
  } catch (err) {
    throw loadFailed(st, reason, version.fingerprint, err);
  }
}

/** A failed load: recorded, logged, the next fetch scheduled; the error to throw. */
function loadFailed(
  st: StoreState,
  reason: string,
  fingerprint: string | undefined,
  err: unknown,
): AuthenticatorUnavailableError {
  const { options, source } = st;
  const { clock, maxKeyAgeMs } = options;
  const message = (err as Error).message;
  st.lastFailure = { atMs: clock.now().getTime(), message };
  st.stats.jwksLoadFailures++;
  // a file that failed to parse is not retried until it changes again
  if (fingerprint !== undefined) st.fileTracker.settle(fingerprint, 'refused');
  scheduleRefresh(st, Math.min(JWKS_RETRY_MS, options.refreshIntervalMs));
  options.logger?.warn(
    {
      event: 'jwks_load_failed',
      reason,
      source: st.sourceName,
      err: message,
      ...(st.keySet !== undefined && 'url' in source
        ? { keysAgeMs: clock.now().getTime() - st.loadedAtMs, maxKeyAgeMs }
        : {}),
    },
    'JWKS load failed',
  );
  return new AuthenticatorUnavailableError(`cannot load the JWKS (${reason}): ${message}`, {
    reason: 'keys',
  });
}

/** URL source: (re)arms the one scheduled fetch. A file source is checked on use instead. */
function scheduleRefresh(st: StoreState, delayMs: number): void {
  if (!('url' in st.source) || st.closed) return;
  st.cancelScheduled?.();
  st.cancelScheduled = st.options.scheduler.after(delayMs, () => {
    st.cancelScheduled = undefined;
    st.stats.scheduledRefreshes++;
    // a failure is logged by load() and keeps the previous keys until they pass maxKeyAgeMs
    reload(st, 'scheduled').catch(() => undefined);
  });
}

function tooOld(st: StoreState, nowMs: number): boolean {
  return 'url' in st.source && st.keySet !== undefined && nowMs - st.loadedAtMs >= st.options.maxKeyAgeMs;
}

/** Single-flight: concurrent callers share one load; each may stop waiting on its own signal. */
function reload(st: StoreState, reason: string): Promise<void> {
  st.loading ??= load(st, reason).finally(() => {
    st.loading = undefined;
  });
  return st.loading;
}

/** Within retryBackoffMs of a failed load with none in progress: fail fast instead of loading. */
function backingOff(st: StoreState, nowMs: number): boolean {
  return (
    st.loading === undefined &&
    st.lastFailure !== undefined &&
    nowMs - st.lastFailure.atMs < st.options.retryBackoffMs
  );
}

/** Fetches a key set past maxKeyAgeMs again (at most once per retryBackoffMs); refuses it if that fails. */
async function reloadTooOld(st: StoreState, nowMs: number, signal: AbortSignal): Promise<void> {
  const { maxKeyAgeMs } = st.options;
  const refuse = (cause?: unknown): AuthenticatorUnavailableError =>
    new AuthenticatorUnavailableError(
      `the JWKS could not be refreshed for ${formatDuration(nowMs - st.loadedAtMs)}, longer than its maximum age ${formatDuration(maxKeyAgeMs)}; its keys are no longer used`,
      { reason: 'keys', ...(cause !== undefined ? { cause } : {}) },
    );
  if (backingOff(st, nowMs)) throw refuse();
  try {
    await raceSignal(reload(st, 'too old'), signal);
  } catch (err) {
    if (signal.aborted) throw err;
    throw refuse(err);
  }
  if (tooOld(st, st.options.clock.now().getTime())) throw refuse();
}

/** File source: re-reads the file when it changed; a changed file that does not parse keeps the keys. */
async function checkFile(st: StoreState, file: string, signal: AbortSignal): Promise<void> {
  st.fileTracker.looked();
  const look = await lookAtStats([file]);
  if (!look.ok) {
    st.options.logger?.warn(
      { event: 'jwks_stat_failed', source: st.sourceName, err: (look.error as Error).message },
      'cannot stat the JWKS file; keeping the keys loaded before',
    );
  }
  if (st.fileTracker.decide(look) === 'changed') {
    await raceSignal(reload(st, 'file changed'), signal).catch((err: unknown) => {
      if (!(err instanceof AuthenticatorUnavailableError) || signal.aborted) throw err;
    });
  }
}

/** True when a key of `before` is missing from `after` or changed (same kid, other material). */
function lostKeys(before: KeySet, after: KeySet): boolean {
  const kept = new Set(after.keys.map((k) => k.fingerprint));
  return before.keys.some((k) => !kept.has(k.fingerprint));
}
