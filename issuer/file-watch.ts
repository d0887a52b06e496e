// Lanyard's one file-watching mechanism, for every file it reloads: the issuer credential
// (credentials.ts), the serving TLS pair (serving-tls.ts), a JWKS file (authn/jwks-keys.ts) and the
// API server's bearer-token file (authn/token-review-client.ts).
//
// Three layers: the decisions are pure (file-watch-decision.ts); a tracker keeps what was decided
// and when the files were last looked at (time from the injected Clock); a watch looks on the
// injected Scheduler's timers (and fs.watch events, debounced on that Scheduler) and hands each
// changed version to its user, who says what became of it. Files read on use (a JWKS file, a token
// file) use the tracker alone; files served from (credential, serving pair) use the watch.
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { type Clock, type Scheduler } from '../ca/index.js';
import {
  contentFingerprint,
  decideFileChange,
  lookDue,
  rememberVerdict,
  statFingerprint,
  type FileLook,
  type MemoryPolicy,
  type WatchDecision,
  type WatchMemory,
  type WatchVerdict,
} from './file-watch-decision.js';

export * from './file-watch-decision.js';

/** What was decided about the versions of some files, and when they were last looked at. */
export interface FileVersionTracker {
  /** whether the files changed since a remembered version (pure: decideFileChange) */
  decide(look: FileLook<unknown>): WatchDecision;
  /** remembers what became of a version (rememberVerdict) */
  settle(fingerprint: string, verdict: WatchVerdict): void;
  /** on-use looks: whether intervalMs has passed since the last look (lookDue, on the clock) */
  due(): boolean;
  /** notes that the files were looked at now */
  looked(): void;
}

export interface FileVersionTrackerOptions {
  readonly clock: Clock;
  /** least time between two on-use looks, ms (due()); 0: every time */
  readonly intervalMs?: number;
  readonly policy?: MemoryPolicy;
  /** the version already in use when tracking starts */
  readonly initial?: string;
}

export function createFileVersionTracker(o: FileVersionTrackerOptions): FileVersionTracker {
  const policy = o.policy ?? 'latest';
  let memory: WatchMemory = o.initial !== undefined ? { accepted: o.initial } : {};
  let lastLookMs: number | undefined;
  return {
    decide: (look) => decideFileChange(memory, look),
    settle(fingerprint, verdict) {
      memory = rememberVerdict(memory, fingerprint, verdict, policy);
    },
    due: () => lookDue(lastLookMs, o.clock.now().getTime(), o.intervalMs ?? 0),
    looked() {
      lastLookMs = o.clock.now().getTime();
    },
  };
}

/** Looks at files by their stat (mtime, size, inode) without reading them; a failed stat is unreadable. */
export async function lookAtStats(paths: readonly string[]): Promise<FileLook<undefined>> {
  try {
    const stats = await Promise.all(paths.map((p) => stat(p)));
    return { ok: true, fingerprint: statFingerprint(...stats), value: undefined };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Reads files as UTF-8 and fingerprints their content; a failed read is unreadable. */
export async function lookAtContents(paths: readonly string[]): Promise<FileLook<string[]>> {
  try {
    const texts = await Promise.all(paths.map((p) => readFile(p, 'utf8')));
    return { ok: true, fingerprint: contentFingerprint(...texts), value: texts };
  } catch (error) {
    return { ok: false, error };
  }
}

export interface FileWatchOptions<T> {
  /** reads the files; `ok: false` (or a rejection) is unreadable */
  readonly look: () => Promise<FileLook<T>>;
  /** a changed version: what became of it; a throw counts as 'retry' */
  readonly onChange: (value: T, fingerprint: string) => WatchVerdict | Promise<WatchVerdict>;
  /** the files could not be read; what was in use stays in use */
  readonly onUnreadable?: (error: unknown) => void;
  readonly policy?: MemoryPolicy;
  /** the version already in use when the watch starts */
  readonly initial?: string;
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  /** look every this many ms; 0 or absent: no polling */
  readonly pollIntervalMs?: number;
  /** directories whose fs.watch events trigger a look `debounceMs` later (an optimisation: polling sees every change) */
  readonly watchDirs?: readonly string[];
  /** default 100 ms */
  readonly debounceMs?: number;
}

export interface FileWatch {
  /** looks now, joining a look in progress */
  check(): Promise<WatchDecision>;
  /** stops the timers and the fs.watch watchers; waits for a look in progress */
  close(): Promise<void>;
}

/**
 * Watches files on the scheduler: every pollIntervalMs, and shortly after an fs.watch event in one of
 * watchDirs (Kubernetes swaps a mounted Secret by re-pointing its `..data` symlink). One look at a
 * time; a changed version goes to onChange, whose verdict the tracker remembers.
 */
export function createFileWatch<T>(o: FileWatchOptions<T>): FileWatch {
  const tracker = createFileVersionTracker({
    clock: o.clock,
    ...(o.policy !== undefined ? { policy: o.policy } : {}),
    ...(o.initial !== undefined ? { initial: o.initial } : {}),
  });
  let inProgress: Promise<WatchDecision> | undefined;

  async function lookOnce(): Promise<WatchDecision> {
    const look = await o.look().catch((error: unknown): FileLook<T> => ({ ok: false, error }));
    tracker.looked();
    const decision = tracker.decide(look);
    if (!look.ok) {
      o.onUnreadable?.(look.error);
      return decision;
    }
    if (decision === 'unchanged') return decision;
    let verdict: WatchVerdict = 'retry';
    try {
      verdict = await o.onChange(look.value, look.fingerprint);
    } finally {
      tracker.settle(look.fingerprint, verdict);
    }
    return 'changed';
  }

  function check(): Promise<WatchDecision> {
    inProgress ??= lookOnce().finally(() => {
      inProgress = undefined;
    });
    return inProgress;
  }
  const tick = (): void => {
    check().catch(() => undefined);
  };

  const stops: (() => void)[] = [];
  if (o.pollIntervalMs !== undefined && o.pollIntervalMs > 0)
    stops.push(o.scheduler.every(o.pollIntervalMs, tick));
  let cancelDebounce: (() => void) | undefined;
  const onFsEvent = (): void => {
    cancelDebounce?.();
    cancelDebounce = o.scheduler.after(o.debounceMs ?? 100, tick);
  };
  const watchers: FSWatcher[] = [];
  for (const dir of new Set(o.watchDirs ?? [])) {
    try {
      const w = fsWatch(dir, { persistent: false }, onFsEvent);
      w.on('error', () => undefined);
      watchers.push(w);
    } catch {
      // fs.watch is an optimisation; polling still sees every change
    }
  }

  return {
    check,
    async close() {
      for (const stop of stops) stop();
      cancelDebounce?.();
      for (const w of watchers) w.close();
      await inProgress?.catch(() => undefined);
    },
  };
}
