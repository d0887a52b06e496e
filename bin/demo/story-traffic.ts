// Continuous cross-cluster traffic during the rotation: each pod's agent in loop mode makes `rate` new
// mTLS handshakes a second to the other pod, and every handshake is recorded.
import { identity, spiffe } from './mtls-checks.js';
import { exited, onJsonLines } from './process-io.js';
import { AGENT, CLUSTERS, MTLS_PORT, NODE_ARGS, REPO, type StoryContext } from './story-context.js';
import type { HandshakeRecord } from './story-summary.js';

export interface Traffic {
  /** every handshake so far, both directions, in the order reported */
  readonly records: readonly HandshakeRecord[];
  /** stops both loops and resolves once they have exited */
  stop(): Promise<void>;
}

export function startTraffic(ctx: StoryContext, rate: number): Traffic {
  const { pods, path: p } = ctx;
  const records: HandshakeRecord[] = [];
  const loops = CLUSTERS.map((from) => {
    const to = from === 'east' ? 'west' : 'east';
    const child = ctx.topo.spawnOn(
      pods[from].host,
      process.execPath,
      [
        ...NODE_ARGS,
        AGENT,
        '--dir',
        p(from, 'pod'),
        '--mode',
        'loop',
        '--rate',
        String(rate),
        '--peer',
        `${pods[to].host.address}:${MTLS_PORT}`,
        '--peer-identity',
        identity(pods[to].sa),
        '--peer-spiffe',
        spiffe(pods[to].sa),
      ],
      { cwd: REPO },
    );
    onJsonLines(child, (line) => {
      if (line.event === 'handshake') {
        records.push({
          ok: line.ok === true,
          from,
          to,
          ...(typeof line.error === 'string' ? { error: line.error } : {}),
          ...(typeof line.peer === 'string' ? { peer: line.peer } : {}),
        });
      }
    });
    return child;
  });
  return {
    records,
    async stop() {
      for (const l of loops) l.kill('SIGTERM');
      await Promise.all(loops.map((l) => exited(l)));
    },
  };
}
