// The story's last steps: `lanyard check` across both clusters, then how the pods got their
// certificates (each proxy's calls, renewal timing, and the issuers' TLS connections by outcome).
import { adminGet, tlsConnectionCounts, type proxyOnce } from './identity.js';
import type { MeshPod } from './story-pods.js';
import { clusterArgs } from './story-rotate-status.js';
import { CLUSTERS, type StoryContext } from './story-context.js';
import type { Renewal, StorySummary } from './story-summary.js';

type PodIdentity = StorySummary['identity']['pods'][string];

/** How long after the renewed answer's refreshAt the renewal call was made (ms, for reading). */
export const renewalLagMs = (r: Renewal): number => Date.parse(r.requestedAt) - Date.parse(r.refreshAt);
/** How long before the renewed answer's valid_until the new certificate was in place (ms, for reading). */
export const renewalMarginMs = (r: Renewal): number => Date.parse(r.validUntil) - Date.parse(r.answeredAt);

/** `lanyard check` over both clusters: its exit code. */
export function finalCheck(ctx: StoryContext): number {
  const check = ctx.lanyard(['check', ...clusterArgs(ctx)]);
  ctx.say(`lanyard check → exit ${check.code}`, check.stdout.trim().split('\n').slice(-1)[0]);
  return check.code;
}

function podIdentityOf(pod: MeshPod): PodIdentity {
  const x = pod.proxy;
  return {
    cluster: pod.cluster,
    gen: pod.gen,
    trusts: pod.trusts,
    certified: x.certified.length,
    alpn: [...new Set(x.certified.map((e) => e.alpn))],
    servedBy: [...new Set(x.certified.map((e) => e.servedBy))],
    failed: x.failures.length,
    failures: x.failures.slice(0, 10).map((f) => ({ kind: f.kind, error: f.error })),
    // a pod is started once: another start of its proxy, or an exit of either process before the pod
    // was stopped, counts as a restart
    restarts: Math.max(0, x.pids.length - 1) + x.unexpectedExits + (pod.agentExitedEarly() ? 1 : 0),
    renewals: x.certified.flatMap((e, i) => {
      const prev = x.certified[i - 1];
      return prev !== undefined && prev.run === e.run
        ? [
            {
              refreshAt: prev.refreshAt,
              validUntil: prev.validUntil,
              requestedAt: e.requestedAt,
              answeredAt: e.answeredAt,
            },
          ]
        : [];
    }),
  };
}

/** Reports what each pod's proxy got (the pods are stopped by now) and what each issuer counted. */
export function identityReport(
  ctx: StoryContext,
  pods: readonly MeshPod[],
  stale: ReturnType<typeof proxyOnce>,
): StorySummary['identity'] {
  const tlsConnections: Record<string, Record<string, number>> = {};
  for (const c of CLUSTERS)
    tlsConnections[c] = tlsConnectionCounts(
      adminGet(ctx.topo, ctx.pods[c].host, `${ctx.adminUrl(c)}/metrics`),
    );
  const byPod = Object.fromEntries(pods.map((x) => [x.name, podIdentityOf(x)]));
  ctx.say(
    "How the pods got their certificates: the proxy-faithful client over TLS 1.3, no ALPN, from their own cluster's identity service",
    [
      ...Object.entries(byPod).map(
        ([name, x]) =>
          `${name} (trusts ${x.trusts.join(' + ')}): ${x.certified} certificates, ${x.renewals.length} renewals at 70 % of valid_until (ms after refreshAt: ${x.renewals.map(renewalLagMs).join(', ')}; ms left before valid_until: ${x.renewals.map(renewalMarginMs).join(', ')}), ${x.restarts} restarts, ALPN ${JSON.stringify(x.alpn)}, ${x.failed} Certify failed`,
      ),
      ...CLUSTERS.map((c) => `${c} issuer's TLS connections by outcome ${JSON.stringify(tlsConnections[c])}`),
    ].join('\n'),
  );
  return {
    pods: byPod,
    tlsConnections,
    staleProxy: {
      ok: stale.ok,
      ...(stale.failure !== undefined ? { kind: stale.failure.kind, error: stale.failure.error } : {}),
      ...(stale.failure?.code !== undefined ? { code: stale.failure.code } : {}),
    },
  };
}
