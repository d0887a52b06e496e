// `lanyard rotate status` over both clusters' admin endpoints, as the rotation steps read it, and the
// narrated notes it leaves (one per milestone, kept in the summary's rotation phases).
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
  /** reads the status once, says it with the traffic so far and records it as `label` */
  note(label: string): void;
  /** every note, in order */
  readonly phases: readonly string[];
}

export function createRotationStatus(ctx: StoryContext, records: readonly HandshakeRecord[]): RotationStatus {
  const clusters = clusterArgs(ctx);
  const phases: string[] = [];
  const status = (): RotateStatus => {
    const r = ctx.lanyard(['rotate', 'status', ...clusters, '--json']);
    return JSON.parse(r.stdout) as RotateStatus;
  };
  return {
    status,
    phases,
    note(label) {
      const s = status();
      phases.push(
        `${label}: phase ${String(s.phase)}, next ${s.next.action} (${s.next.safe ? 'safe' : 'not safe'})`,
      );
      ctx.say(
        `rotate status → phase ${String(s.phase)}; next: ${s.next.action}, ${s.next.safe ? 'safe' : 'NOT safe yet'}${s.next.waitUntil !== undefined ? ` (wait until ${s.next.waitUntil})` : ''}`,
        `${records.length} handshakes so far, ${records.filter((r) => !r.ok).length} failed`,
      );
    },
  };
}
