// Direct cross-cluster mTLS between the pods, both directions, with openssl and with Node.
import { agentOnce, identity, opensslHandshake, spiffe } from './mtls-checks.js';
import { MTLS_PORT, type Cluster, type StoryContext } from './story-context.js';
import type { StorySummary } from './story-summary.js';

const DIRECTIONS: readonly (readonly [Cluster, Cluster])[] = [
  ['west', 'east'],
  ['east', 'west'],
];

export async function crossClusterMtls(ctx: StoryContext): Promise<StorySummary['crossCluster']> {
  const { pods, path: p, say } = ctx;
  const opensslResult: Record<string, boolean> = {};
  const nodeResult: Record<string, boolean> = {};
  let spiffeSeen = true;
  for (const [from, to] of DIRECTIONS) {
    const r = await opensslHandshake(
      ctx.topo,
      { host: pods[to].host, dir: p(to, 'pod'), expect: identity(pods[from].sa) },
      { host: pods[from].host, dir: p(from, 'pod'), expect: identity(pods[to].sa) },
    );
    opensslResult[`${from}->${to}`] = r.ok;
    if (!r.ok && process.env.LANYARD_DEMO_DEBUG !== undefined) process.stderr.write(r.output);
    if (!(r.serverCert?.uris.includes(spiffe(pods[to].sa)) ?? false)) spiffeSeen = false;
    if (!(r.clientCert?.uris.includes(spiffe(pods[from].sa)) ?? false)) spiffeSeen = false;
    say(
      `openssl: ${from} pod → ${to} pod over TLS 1.3: ${r.ok ? 'verified both ways' : 'FAILED'}`,
      `${from} saw ${r.serverCert?.dnsNames.join(', ') ?? '?'} / ${r.serverCert?.uris.join(', ') ?? '?'}; ${to} saw ${r.clientCert?.dnsNames.join(', ') ?? '?'} / ${r.clientCert?.uris.join(', ') ?? '?'}`,
    );
    const n = agentOnce(
      ctx.agentLaunch,
      pods[from].host,
      p(from, 'pod'),
      `${pods[to].host.address}:${MTLS_PORT}`,
      identity(pods[to].sa),
      spiffe(pods[to].sa),
    );
    nodeResult[`${from}->${to}`] = n.ok;
    say(
      `node tls: ${from} pod → ${to} pod: ${n.ok ? 'verified both ways' : `FAILED (${n.error ?? ''})`}`,
      n.peer,
    );
  }
  return { openssl: opensslResult, node: nodeResult, spiffeSeen };
}
