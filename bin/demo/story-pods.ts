// The pods: each pod's proxy asks its own cluster's identity service only, as an unmodified Linkerd
// proxy does (TLS 1.3, no ALPN, SNI = the service name), and keeps renewing; next to it the pod's
// mTLS agent serves the pod's certificate to the other cluster's pod.
import { type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { parseCertificatesPem, type CertificateInfo } from '../../ca/index.js';
import { IDENTITY_SVC_NAME, startPodProxy, type PodProxy } from './identity.js';
import { identity, spiffe } from './mtls-checks.js';
import { onJsonLines, waitFor, waitForOutput } from './process-io.js';
import {
  AGENT,
  CLUSTERS,
  MTLS_PORT,
  NODE_ARGS,
  REPO,
  type Cluster,
  type StoryContext,
} from './story-context.js';

export interface RunningPods {
  readonly proxies: Record<Cluster, PodProxy>;
  readonly agents: readonly ChildProcess[];
  /** codes of the clients each pod's listener refused, in order (pod-agent's "refused" events) */
  readonly refusals: Record<Cluster, string[]>;
}

/** Starts both pods' proxies and waits for each pod's first certificate. */
async function startProxies(ctx: StoryContext): Promise<Record<Cluster, PodProxy>> {
  const { launch, proxySpec, path: p } = ctx;
  // A proxy reads its trust anchors once, at start: the cluster's bundle (its issuer's ca.crt, as the
  // mounted trust-roots ConfigMap) as it is when the pod starts.
  const proxies: Record<Cluster, PodProxy> = {
    east: startPodProxy(launch, proxySpec('east', p('east', 'issuer', 'ca.crt')), p('east', 'pod')),
    west: startPodProxy(launch, proxySpec('west', p('west', 'issuer', 'ca.crt')), p('west', 'pod')),
  };
  for (const c of CLUSTERS)
    await waitFor(
      () => existsSync(p(c, 'pod', 'tls.crt')) && existsSync(p(c, 'pod', 'ca.crt')),
      `${c} pod's certificate`,
    ).catch((err: unknown) => {
      throw new Error(
        `${(err as Error).message}; last failure: ${proxies[c].failures.at(-1)?.error ?? 'none'}`,
      );
    });
  return proxies;
}

/** Each pod's mTLS listener, accepting only the other cluster's pod; refusals recorded by code. */
async function startAgents(ctx: StoryContext): Promise<Pick<RunningPods, 'agents' | 'refusals'>> {
  const { pods, path: p } = ctx;
  const agents: ChildProcess[] = [];
  const refusals: Record<Cluster, string[]> = { east: [], west: [] };
  for (const c of CLUSTERS) {
    const pod = pods[c];
    const peer = c === 'east' ? pods.west : pods.east;
    const agent = ctx.topo.spawnOn(
      pod.host,
      process.execPath,
      [
        ...NODE_ARGS,
        AGENT,
        '--dir',
        p(c, 'pod'),
        '--listen',
        `${pod.host.address}:${MTLS_PORT}`,
        '--client-identity',
        identity(peer.sa),
        '--client-spiffe',
        spiffe(peer.sa),
      ],
      { cwd: REPO },
    );
    agents.push(agent);
    onJsonLines(agent, (line) => {
      if (line.event === 'refused') refusals[c].push(typeof line.code === 'string' ? line.code : '?');
    });
    await waitForOutput(agent, /"listening"/, `${c} pod's mTLS listener`);
  }
  return { agents, refusals };
}

function sayPodCertificates(ctx: StoryContext, proxies: Record<Cluster, PodProxy>): void {
  for (const c of CLUSTERS) {
    const leaf = parseCertificatesPem(
      readFileSync(ctx.path(c, 'pod', 'tls.crt'), 'utf8'),
      'tls.crt',
    )[0] as CertificateInfo;
    const got = proxies[c].certified[0];
    ctx.say(
      `${c} pod holds ${leaf.dnsNames.join(', ')}`,
      [
        `${leaf.uris.join(', ')}, issued by ${c}'s issuer, valid until ${leaf.notAfter.toISOString()}`,
        `got as a Linkerd proxy gets it: TLS 1.3, ALPN ${got?.alpn === false ? 'none' : String(got?.alpn)}, SNI ${IDENTITY_SVC_NAME}, serving certificate checked against the anchors it started with; next Certify at ${got?.refreshAt ?? '?'} (70 % of valid_until)`,
      ].join('\n'),
    );
  }
}

export async function startPods(ctx: StoryContext): Promise<RunningPods> {
  const proxies = await startProxies(ctx);
  const { agents, refusals } = await startAgents(ctx);
  sayPodCertificates(ctx, proxies);
  return { proxies, agents, refusals };
}
