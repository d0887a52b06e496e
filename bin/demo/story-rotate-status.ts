// `lanyard rotate status` over both clusters' admin endpoints, as the rotation steps read it, the notes
// it leaves (one per phase, kept in the summary), and the phase-4 gate: no leaf signed by an A-issuer
// can be valid any more.
import { systemClock } from '../../ca/index.js';
import { adminGet } from './identity.js';
import { CLUSTERS, type StoryContext } from './story-context.js';
import type { HandshakeRecord } from './story-summary.js';

/** The part of `lanyard rotate status --json` the story reads. */
export interface RotateStatus {
  phase: string | number;
  next: { action: string; safe: boolean; waitUntil?: string };
}

/** `--cluster east=http://… --cluster west=http://…`: both issuers' admin endpoints. */
export function clusterArgs(ctx: StoryContext): string[] {
  return CLUSTERS.flatMap((c) => ['--cluster', `${c}=${ctx.adminUrl(c)}`]);
}

export interface RotationStatus {
  status(): RotateStatus;
  /** reads the status once, says it with the traffic so far; returns the line it said */
  note(label: string): string;
  /**
   * Records now as the moment both issuers switched (from their /v1/status credentialLoadedAt): no
   * leaf an A-issuer signed can outlive that by more than leafLifetimeMs + clockSkewMs.
   */
  switched(): void;
  /** resolves once no leaf under an A-issuer can be valid; says what opened the gate */
  oldLeavesGone(): Promise<string>;
  /** resolves once rotate status, reading the pods, calls stopping the cross certificate safe; says so */
  crossMayGo(): Promise<string>;
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
  ];
  let bound: number | undefined;
  const status = (): RotateStatus => {
    const r = ctx.lanyard(['rotate', 'status', ...clusters, '--json']);
    return JSON.parse(r.stdout) as RotateStatus;
  };
  const says = (s: RotateStatus): string =>
    `phase ${String(s.phase)}, next ${s.next.action} (${s.next.safe ? 'safe' : 'not safe'})`;
  return {
    status,
    note(label) {
      const s = status();
      const line = `${label}: ${says(s)}`;
      ctx.say(
        `rotate status → phase ${String(s.phase)}; next: ${s.next.action}, ${s.next.safe ? 'safe' : 'NOT safe yet'}${s.next.waitUntil !== undefined ? ` (wait until ${s.next.waitUntil})` : ''}`,
        `${records.length} handshakes so far, ${records.filter((r) => !r.ok).length} failed`,
      );
      return line;
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
          const early = now < bound ? `, EARLY: the issuers' bound is ${new Date(bound).toISOString()}` : '';
          return `rotate status: ${says(s)}${early}`;
        }
        if (now > bound + 30_000)
          return `rotate status never said so (${says(s)}); the issuers' bound ${new Date(bound).toISOString()} (switch + leaf lifetime + skew) passed`;
        const until = Date.parse(s.next.waitUntil ?? '');
        await sleep(Number.isNaN(until) ? 1000 : Math.min(Math.max(until - now + 100, 500), 5000));
      }
    },
    async crossMayGo() {
      const deadline = systemClock.now().getTime() + 30_000;
      for (;;) {
        const s = status();
        if (s.next.action === 'stop-serving-cross' && s.next.safe) return `rotate status: ${says(s)}`;
        if (systemClock.now().getTime() > deadline)
          throw new Error(`rotate status never called stopping the cross certificate safe: ${says(s)}`);
        await sleep(500);
      }
    },
  };
}
