// The story's first steps: the topology as built, the PKI (one anchor, an issuer and a token-signing
// key per cluster, each identity service's serving certificate), and the two issuers started.
import { type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { systemClock } from '../../ca/index.js';
import { IDENTITY_SVC_NAME, issueServingCert, type ServingCert } from './identity.js';
import { waitForOutput } from './process-io.js';
import {
  ADMIN_PORT,
  CLUSTERS,
  DEV_TOKEN_ISSUER,
  GRPC_PORT,
  LANYARD,
  NODE_ARGS,
  REPO,
  type Cluster,
  type StoryContext,
} from './story-context.js';

/** Each identity service's serving certificate, by cluster (phase 2 of the rotation replaces them). */
export type ServingCerts = Record<Cluster, ServingCert>;

export function describeTopology(ctx: StoryContext): void {
  const { topo } = ctx;
  ctx.say(
    `Topology: ${topo.mode === 'netns' ? 'network namespaces on one bridge (a flat L2 network)' : 'distinct loopback addresses (namespaces unavailable here)'}`,
    Object.values(ctx.hosts)
      .map((h) => `${h.name} ${h.address}${h.netns !== undefined ? ` (netns ${h.netns})` : ''}`)
      .join('\n'),
  );
}

/** One anchor, one issuer per cluster, one token-signing key per cluster and each pod's token file. */
export async function createPki(ctx: StoryContext): Promise<ServingCerts> {
  const { must, path: p } = ctx;
  must(['anchor', 'create', '--out', p('anchor-a'), '--common-name', 'root-a.linkerd.cluster.local']);
  for (const c of CLUSTERS) {
    must(['issuer', 'create', '--anchor', p('anchor-a'), '--cluster', c, '--out', p(c, 'issuer')]);
  }
  for (const c of CLUSTERS) {
    mkdirSync(p(c, 'pod'), { recursive: true });
    writeFileSync(
      p(c, 'pod', 'token'),
      must([
        'token',
        '--signing-key-dir',
        p(c, 'sa-signing'),
        '--namespace',
        'default',
        '--service-account',
        ctx.pods[c].sa,
        '--ttl',
        '2h',
      ]).trim(), // a projected service-account token file: the token, no newline
    );
  }
  // Each identity service's serving certificate: a mesh leaf for its own name from its cluster's issuer.
  const serving: ServingCerts = {
    east: await issueServingCert(p('east', 'issuer'), p('east', 'serving'), systemClock.now()),
    west: await issueServingCert(p('west', 'issuer'), p('west', 'serving'), systemClock.now()),
  };
  ctx.say(
    'Created one trust anchor, an issuer per cluster and a service-account signing key per cluster',
    [
      `anchor ${p('anchor-a', 'anchor.crt')}`,
      `each identity service's serving certificate: ${IDENTITY_SVC_NAME} (ECDSA P-256, serverAuth), signed by its cluster's issuer`,
    ].join('\n'),
  );
  return serving;
}

function serveArgs(ctx: StoryContext, c: Cluster, serving: ServingCert, leafLifetime: string): string[] {
  const host = ctx.pods[c].issuer;
  const p = ctx.path;
  return [
    'serve',
    '--issuer-dir',
    p(c, 'issuer'),
    '--listen',
    `${host.address}:${GRPC_PORT}`,
    // Certify over TLS, as Linkerd's identity service serves it (no ALPN needed)
    '--tls-cert',
    serving.certPath,
    '--tls-key',
    serving.keyPath,
    '--admin-listen',
    `${host.address}:${ADMIN_PORT}`,
    '--cluster',
    c,
    '--jwks-file',
    p(c, 'sa-signing', 'jwks.json'),
    '--token-issuer',
    DEV_TOKEN_ISSUER,
    '--leaf-lifetime',
    leafLifetime,
    '--clock-skew',
    '1s',
    '--poll-interval',
    '200ms',
    '--log-level',
    'warn',
    // one process per issuer: the four hosts share this machine's cores
    '--workers',
    '1',
  ];
}

/** Both issuers, each on its own host, serving Certify over TLS as the identity service. */
export async function startIssuers(
  ctx: StoryContext,
  serving: ServingCerts,
  leafLifetime: string,
): Promise<ChildProcess[]> {
  const serves: ChildProcess[] = [];
  for (const c of CLUSTERS) {
    const child = ctx.topo.spawnOn(
      ctx.pods[c].issuer,
      process.execPath,
      [...NODE_ARGS, LANYARD, ...serveArgs(ctx, c, serving[c], leafLifetime)],
      { cwd: REPO },
    );
    serves.push(child);
    await waitForOutput(child, /gRPC on/, `${c} issuer to start`);
  }
  const { hosts } = ctx;
  ctx.say(
    'Started both issuers, each on its own host, serving Certify over TLS as the identity service',
    `east ${hosts['east-issuer'].address}:${GRPC_PORT}, west ${hosts['west-issuer'].address}:${GRPC_PORT}, each as ${IDENTITY_SVC_NAME}`,
  );
  return serves;
}
