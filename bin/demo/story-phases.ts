// The rotation's phases as they happen: when each began, which pods were in the mesh when it ended,
// and the handshakes each pod pair made in it (by the time the agent started them). A phase ends only
// once every pair of running pods, in both directions, has made a handshake in it.
import { systemClock } from '../../ca/index.js';
import { waitFor } from './process-io.js';
import type { Mesh } from './story-pods.js';
import type { HandshakeRecord, PhaseReport, RotateStatusFields } from './story-summary.js';

interface Mark {
  readonly phase: number;
  readonly title: string;
  readonly start: number;
  live: string[];
  status?: RotateStatusFields;
}

export interface Phases {
  /** phase `n` begins now */
  begin(phase: number, title: string): void;
  /** what rotate status --json said at the end of the current phase */
  note(status: RotateStatusFields): void;
  /** waits until every pair in the mesh, both directions, made an ok handshake in the current phase (after `since`) */
  covered(since?: number): Promise<void>;
  report(end: number): PhaseReport[];
  /** ok handshakes by `from->to` and phase */
  pairs(): Record<string, Record<number, number>>;
}

const key = (r: { from: string; to: string }): string => `${r.from}->${r.to}`;

export function createPhases(mesh: Mesh): Phases {
  const marks: Mark[] = [];
  const phaseOf = (at: number): number => {
    let p = 0;
    for (const m of marks) if (m.start <= at) p = m.phase;
    return p;
  };
  const inPhase = (r: HandshakeRecord, phase: number): boolean => phaseOf(r.at) === phase;
  const current = (): Mark => {
    const m = marks.at(-1);
    if (m === undefined) throw new Error('no phase has begun');
    return m;
  };
  /** every directed pair of pods in the mesh, across clusters */
  const directedPairs = (): string[] => {
    const live = mesh.inMesh();
    return live.flatMap((a) =>
      live.filter((b) => b.cluster !== a.cluster).map((b) => `${a.name}->${b.name}`),
    );
  };
  return {
    begin(phase, title) {
      marks.push({ phase, title, start: systemClock.now().getTime(), live: [] });
    },
    note(status) {
      current().status = status;
    },
    async covered(since = 0) {
      const m = current();
      const missing = (): string[] => {
        const seen = new Set(
          mesh.records.filter((r) => r.ok && r.at >= since && inPhase(r, m.phase)).map(key),
        );
        return directedPairs().filter((p) => !seen.has(p));
      };
      await waitFor(() => missing().length === 0, `every pod pair to handshake in phase ${m.phase}`).catch(
        (err: unknown) => {
          throw new Error(`${(err as Error).message}: missing ${missing().join(', ')}`);
        },
      );
      m.live = mesh.inMesh().map((x) => x.name);
    },
    report(end) {
      return marks.map((m, i) => {
        const until = marks[i + 1]?.start ?? end;
        const rs = mesh.records.filter((r) => inPhase(r, m.phase));
        return {
          phase: m.phase,
          title: m.title,
          startedAt: new Date(m.start).toISOString(),
          durationMs: until - m.start,
          live: m.live,
          handshakes: rs.length,
          failed: rs.filter((r) => !r.ok).length,
          ...(m.status !== undefined ? { status: m.status } : {}),
        };
      });
    },
    pairs() {
      const out: Record<string, Record<number, number>> = {};
      for (const r of mesh.records) {
        if (!r.ok) continue;
        const byPhase = (out[key(r)] ??= {});
        const p = phaseOf(r.at);
        byPhase[p] = (byPhase[p] ?? 0) + 1;
      }
      return out;
    },
  };
}

/**
 * The pairs that made no ok handshake in a phase although both pods were in the mesh when it ended:
 * `phase n: from->to`, for every pair of pods of different clusters, both directions. Empty when the
 * traffic covered every pair in every phase.
 */
export function coverageGaps(r: {
  readonly phases: readonly PhaseReport[];
  readonly pairs: Record<string, Record<number, number>>;
}): string[] {
  return r.phases.flatMap((ph) => {
    const cluster = (name: string): string => name.split('-')[0] ?? '';
    return ph.live.flatMap((a) =>
      ph.live
        .filter((b) => cluster(b) !== cluster(a))
        .filter((b) => (r.pairs[`${a}->${b}`]?.[ph.phase] ?? 0) === 0)
        .map((b) => `phase ${ph.phase}: ${a}->${b}`),
    );
  });
}
