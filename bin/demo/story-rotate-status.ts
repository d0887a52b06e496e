// `lanyard rotate status` over both clusters' admin endpoints, as the rotation steps read it, the notes
// it leaves (one per phase, kept in the summary), and the phase-4 gate: no leaf signed by an A-issuer
// can be valid any more.
import { systemClock } from '../../ca/index.js';
import { adminGet } from './identity.js';
import { CLUSTERS, type StoryContext } from './story-context.js';
import type { HandshakeRecord, OldLeavesGate, RotateStatusFields } from './story-summary.js';

/** The part of `lanyard rotate status --json` the story reads. */
export interface RotateStatus {
  phase: string | number;
  next: { action: string; safe: boolean; waitUntil?: string };
}

/** `--cluster east=http://… --cluster west=http://…`: both issuers' admin endpoints. */
export function clusterArgs(ctx: StoryContext): string[] {
  return CLUSTERS.flatMap((c) => ['--cluster', `${c}=${ctx.adminUrl(c)}`]);
}

/** How long a gate may stay shut past the moment it should open (generous: a loaded host). */
const GATE_GRACE_MS = 60_000;

/** The --json fields the story records and asserts. */
export const fieldsOf = (s: RotateStatus): RotateStatusFields => ({
  phase: s.phase === 'steady' ? 'steady' : Number(s.phase),
  action: s.next.action,
  safe: s.next.safe,
});

/** `phase 4, next drop-old-anchors (safe)`: the fields, for reading. */
export const describeStatus = (f: RotateStatusFields): string =>
  `phase ${String(f.phase)}, next ${f.action} (${f.safe ? 'safe' : 'not safe'})`;

export interface RotationStatus {
  status(): RotateStatus;
  /** reads the status once, says it (after `label`) with the traffic so far; returns its --json fields */
  note(label: string): RotateStatusFields;
  /**
   * Records now as the moment both issuers switched (from their /v1/status credentialLoadedAt): no
   * leaf an A-issuer signed can outlive that by more than leafLifetimeMs + clockSkewMs.
   */
  switched(): void;
  /** resolves once no leaf under an A-issuer can be valid, with what opened the gate */
  oldLeavesGone(): Promise<OldLeavesGate>;
  /** resolves once rotate status, reading the pods, calls stopping the cross certificate safe, with what it said */
  crossMayGo(): Promise<RotateStatusFields>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The latest instant a leaf signed before the switch can be valid, from both issuers' /v1/status. */
function boundFromIssuers(ctx: StoryContext): number {
  return Math.max(
    ...CLUSTERS.map((c) => {
      const s = JSON.parse(adminGet(ctx.topo, ctx.pods[c].host, `${ctx.adminUrl(c)}/v1/status`) || '{}') as {
        credentialLoadedAt?: string;
        leafLifetimeMs?: number;
        clockSkewMs?: number;
      };
      const loaded = Date.parse(s.credentialLoadedAt ?? '');
      if (Number.isNaN(loaded) || s.leafLifetimeMs === undefined) throw new Error(`${c}: no /v1/status`);
      return loaded + s.leafLifetimeMs + (s.clockSkewMs ?? 0);
    }),
  );
}

/**
 * `kubeconfigs`: `--kubeconfig NAME=FILE` for each cluster (its pods, for the clean-up gate). Read
 * from phase 1 on (anchor-b and cross.crt exist by then).
 */
export function createRotationStatus(
  ctx: StoryContext,
  records: readonly HandshakeRecord[],
  kubeconfigs: readonly string[],
): RotationStatus {
  // the anchor rolled in and the cross certificate, so that every step's commands can be printed
  const clusters = [
    ...clusterArgs(ctx),
    ...kubeconfigs,
    ...['--new-anchor', ctx.path('anchor-b'), '--cross-signed', ctx.path('cross.crt')],
    // one issuer process per cluster, read directly: no replica picks the switch up later than the one
    // read, so the margin for Secret propagation across replicas (default 2m) is not needed here
    ...['--propagation-margin', '0s'],
  ];
  let bound: number | undefined;
  const status = (): RotateStatus => {
    const r = ctx.lanyard(['rotate', 'status', ...clusters, '--json']);
    // 0, 1 and 3 print the status; 2 (a usage error) prints only its reason
    if (r.code === 2 || r.stdout.trim() === '')
      throw new Error(`lanyard rotate status exited ${r.code}: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout) as RotateStatus;
  };
  const says = (s: RotateStatus): string => describeStatus(fieldsOf(s));
  return {
    status,
    note(label) {
      const s = status();
      ctx.say(
        `rotate status (${label}) → phase ${String(s.phase)}; next: ${s.next.action}, ${s.next.safe ? 'safe' : 'NOT safe yet'}${s.next.waitUntil !== undefined ? ` (wait until ${s.next.waitUntil})` : ''}`,
        `${records.length} handshakes so far, ${records.filter((r) => !r.ok).length} failed`,
      );
      return fieldsOf(s);
    },
    switched() {
      bound = boundFromIssuers(ctx);
    },
    async oldLeavesGone() {
      if (bound === undefined) throw new Error('the switch was not recorded');
      // `rotate status` decides; the bound from the issuers' own status says whether it decided early,
      // and stands in if it never decides
      for (;;) {
        const s = status();
        const now = systemClock.now().getTime();
        if (s.next.action === 'drop-old-anchors' && s.next.safe) {
          const early = now < bound;
          ctx.say(
            `the phase-4 gate: rotate status says ${says(s)}${early ? `, EARLY: the issuers' bound is ${new Date(bound).toISOString()}` : ''}`,
          );
          return { ...fieldsOf(s), openedBy: 'rotate-status', early };
        }
        if (now > bound + GATE_GRACE_MS) {
          ctx.say(
            `the phase-4 gate: rotate status never said so (${says(s)}); the issuers' bound ${new Date(bound).toISOString()} (switch + leaf lifetime + skew) passed`,
          );
          return { ...fieldsOf(s), openedBy: 'issuers-bound', early: false };
        }
        const until = Date.parse(s.next.waitUntil ?? '');
        await sleep(Number.isNaN(until) ? 1000 : Math.min(Math.max(until - now + 100, 500), 5000));
      }
    },
    async crossMayGo() {
      const deadline = systemClock.now().getTime() + GATE_GRACE_MS;
      for (;;) {
        const s = status();
        if (s.next.action === 'stop-serving-cross' && s.next.safe) return fieldsOf(s);
        if (systemClock.now().getTime() > deadline)
          throw new Error(`rotate status never called stopping the cross certificate safe: ${says(s)}`);
        await sleep(500);
      }
    },
  };
}
