// The decision logic of Lanyard's one file-watching mechanism (file-watch.ts), as pure functions:
// what a look at watched files found, compared with what was decided about earlier versions.
import { createHash } from 'node:crypto';

/** What one look at the watched files found: a fingerprint of their version, or why they could not be read. */
export type FileLook<T> =
  | { readonly ok: true; readonly fingerprint: string; readonly value: T }
  | { readonly ok: false; readonly error: unknown };

/** What is remembered of versions already handed over (fingerprints). */
export interface WatchMemory {
  /** the version last accepted */
  readonly accepted?: string | undefined;
  /** the version last refused: not handed over again until the files change */
  readonly refused?: string | undefined;
}

/** The files changed since a remembered version, did not, or could not be read (a swap in progress, gone). */
export type WatchDecision = 'changed' | 'unchanged' | 'unreadable';

/** What the user made of a changed version: used; refused for good; refused for now (look again next time). */
export type WatchVerdict = 'accepted' | 'refused' | 'retry';

/**
 * How verdicts are remembered. 'latest': one version, whatever became of it (a refusal forgets the
 * accepted version, a retry forgets both). 'both': the last accepted and the last refused version,
 * each kept until replaced; a retry leaves both as they are.
 */
export type MemoryPolicy = 'latest' | 'both';

export function decideFileChange(memory: WatchMemory, look: FileLook<unknown>): WatchDecision {
  if (!look.ok) return 'unreadable';
  return look.fingerprint === memory.accepted || look.fingerprint === memory.refused
    ? 'unchanged'
    : 'changed';
}

export function rememberVerdict(
  memory: WatchMemory,
  fingerprint: string,
  verdict: WatchVerdict,
  policy: MemoryPolicy,
): WatchMemory {
  if (policy === 'latest') {
    if (verdict === 'retry') return {};
    return verdict === 'accepted' ? { accepted: fingerprint } : { refused: fingerprint };
  }
  if (verdict === 'retry') return memory;
  return verdict === 'accepted'
    ? { accepted: fingerprint, refused: memory.refused }
    : { accepted: memory.accepted, refused: fingerprint };
}

/** On-use looks: whether one is due, `intervalMs` after the last one (never looked: due). */
export function lookDue(lastLookMs: number | undefined, nowMs: number, intervalMs: number): boolean {
  return lastLookMs === undefined || nowMs - lastLookMs >= intervalMs;
}

/** What identifies a file's version without reading it. */
export interface FileStat {
  readonly mtimeMs: number;
  readonly size: number;
  readonly ino: number;
}

/** The fingerprint of files known by their stat (mtime, size, inode): a change of any is a new version. */
export function statFingerprint(...stats: readonly FileStat[]): string {
  return stats.map((s) => `${s.mtimeMs}:${s.size}:${s.ino}`).join('|');
}

/** The fingerprint of files known by their content: SHA-256 of the parts, NUL-separated. */
export function contentFingerprint(...parts: readonly (string | Uint8Array)[]): string {
  const h = createHash('sha256');
  parts.forEach((p, i) => {
    if (i > 0) h.update('\0');
    h.update(p);
  });
  return h.digest('hex');
}
