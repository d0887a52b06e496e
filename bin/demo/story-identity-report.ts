// The story's last steps: `lanyard check` across both clusters, then how the pods got their
// certificates (each proxy's calls, renewal timing, and the issuers' TLS connections by outcome).
import { adminGet, tlsConnectionCounts, type PodProxy, type proxyOnce } from './identity.js';
import { clusterArgs } from './story-rotate-status.js';
import { CLUSTERS, type Cluster, type StoryContext } from './story-context.js';
import type { StorySummary } from './story-summary.js';

type PodIdentity = StorySummary['identity']['pods'][string];

/** `lanyard check` over both clusters: its exit code. */
export function finalCheck(ctx: StoryContext): number {
  const check = ctx.lanyard(['check', ...clusterArgs(ctx)]);
  ctx.say(`lanyard check → exit ${check.code}`, check.stdout.trim().split('\n').slice(-1)[0]);
  return check.code;
}

function podIdentityOf(x: PodProxy): PodIdentity {
  return {
    certified: x.certified.length,
    alpn: [...new Set(x.certified.map((e) => e.alpn))],
    servedBy: [...new Set(x.certified.map((e) => e.servedBy))],
    failed: x.failures.length,
    failures: x.failures.slice(0, 10).map((f) => ({ kind: f.kind, error: f.error })),
    restarts: x.restarts,
    renewalLagMs: x.certified.flatMap((e, i) => {
      const prev = x.certified[i - 1];
      return prev !== undefined && prev.run === e.run
        ? [Date.parse(e.requestedAt) - Date.parse(prev.refreshAt)]
        : [];
    }),
  };
}

/** Stops the proxies and reports what each got and what each issuer counted. */
export async function identityReport(
  ctx: StoryContext,
  proxies: Record<Cluster, PodProxy>,
  stale: ReturnType<typeof proxyOnce>,
): Promise<StorySummary['identity']> {
  await Promise.all(Object.values(proxies).map((x) => x.stop()));
  const tlsConnections: Record<string, Record<string, number>> = {};
  for (const c of CLUSTERS)
    tlsConnections[c] = tlsConnectionCounts(
      adminGet(ctx.topo, ctx.pods[c].host, `${ctx.adminUrl(c)}/metrics`),
    );
  const pods = Object.fromEntries(CLUSTERS.map((c) => [c, podIdentityOf(proxies[c])]));
  ctx.say(
    "How the pods got their certificates: the proxy-faithful client over TLS 1.3, no ALPN, from their own cluster's identity service",
    CLUSTERS.map(
      (c) =>
        `${c}: ${pods[c]?.certified ?? 0} certificates (${pods[c]?.restarts ?? 0} proxy restarts), ALPN ${JSON.stringify(pods[c]?.alpn)}, ${pods[c]?.failed ?? 0} Certify failed; ${c} issuer's TLS connections by outcome ${JSON.stringify(tlsConnections[c])}`,
    ).join('\n'),
  );
  return {
    pods,
    tlsConnections,
    staleProxy: {
      ok: stale.ok,
      ...(stale.failure !== undefined ? { kind: stale.failure.kind, error: stale.failure.error } : {}),
      ...(stale.failure?.code !== undefined ? { code: stale.failure.code } : {}),
    },
  };
}
