// The handshakes that must fail: a client under an anchor east does not trust, a peer that is not the
// expected identity, an expired leaf from a trusted issuer, and openssl s_server given the untrusted
// client. Each outcome keeps the code the refusing side gave, not only that it failed.
import {
  agentOnce,
  forgedPodFiles,
  identity,
  opensslHandshake,
  spiffe,
  type Outcome,
} from './mtls-checks.js';
import { waitFor, WAIT_TIMEOUT_MS } from './process-io.js';
import { MTLS_PORT, type Cluster, type StoryContext } from './story-context.js';
import type { StorySummary } from './story-summary.js';

/** A handshake from the west pod's host to the east pod, presenting the files in `dir`, expecting `sa`. */
function westToEast(ctx: StoryContext, dir: string, sa: string): Outcome {
  const { hosts } = ctx;
  return agentOnce(
    ctx.agentLaunch,
    hosts['west-pod'],
    dir,
    `${hosts['east-pod'].address}:${MTLS_PORT}`,
    identity(sa),
    spiffe(sa),
  );
}

/** A handshake the east pod should refuse, with the code east's listener gave for refusing it. */
async function refusedByEast(refusals: Record<Cluster, string[]>, attempt: () => Outcome): Promise<Outcome> {
  const before = refusals.east.length;
  const o = attempt();
  // east's listener reports the refusal as it happens; on a loaded host its line can take a while
  await waitFor(() => refusals.east.length > before, 'east to report the refusal', WAIT_TIMEOUT_MS / 4).catch(
    () => undefined,
  );
  const serverCode = refusals.east[before];
  return { ...o, ...(serverCode !== undefined ? { serverCode } : {}) };
}

/** What a handshake that should have failed came to: `refused` when it did. */
const verdict = (o: { ok: boolean }, refused: string): string => (o.ok ? 'ACCEPTED (wrong)' : refused);

export async function negativeCases(
  ctx: StoryContext,
  refusals: Record<Cluster, string[]>,
): Promise<StorySummary['negatives']> {
  const { must, path: p, say, hosts } = ctx;
  say('Negative cases');
  const rogueDir = p('rogue');
  must(['anchor', 'create', '--out', p('anchor-rogue')]);
  must(['issuer', 'create', '--anchor', p('anchor-rogue'), '--cluster', 'rogue', '--out', p('rogue-issuer')]);
  await forgedPodFiles(
    rogueDir,
    p('rogue-issuer'),
    { dnsName: identity(ctx.pods.west.sa), uri: spiffe(ctx.pods.west.sa) },
    p('west', 'pod', 'ca.crt'),
    'valid',
  );
  const untrusted = await refusedByEast(refusals, () => westToEast(ctx, rogueDir, 'web'));
  say(
    `a pod whose issuer chains to an anchor east does not trust: ${verdict(untrusted, `refused by east (${untrusted.serverCode ?? '?'})`)}`,
    untrusted.error,
  );
  const wrongId = westToEast(ctx, p('west', 'pod'), 'admin');
  say(
    `west pod expecting east to be "admin" while east is "web": ${verdict(wrongId, `refused (${wrongId.code ?? '?'})`)}`,
    wrongId.error,
  );
  const expiredDir = p('expired');
  await forgedPodFiles(
    expiredDir,
    p('west', 'issuer'),
    { dnsName: identity('db'), uri: spiffe('db') },
    p('west', 'pod', 'ca.crt'),
    'expired',
  );
  const expired = await refusedByEast(refusals, () => westToEast(ctx, expiredDir, 'web'));
  say(
    `an expired leaf from west's own issuer: ${verdict(expired, `refused by east (${expired.serverCode ?? '?'})`)}`,
    expired.error,
  );
  const sslUntrusted = await opensslHandshake(
    ctx.topo,
    { host: hosts['east-pod'], dir: p('east', 'pod'), expect: identity('db') },
    { host: hosts['west-pod'], dir: rogueDir, expect: identity('web') },
  );
  say(
    `openssl s_server given the same untrusted client: ${verdict(sslUntrusted, `refused (verify error ${String(sslUntrusted.serverVerifyError ?? '?')})`)}`,
  );
  return {
    untrustedAnchor: untrusted,
    wrongIdentity: wrongId,
    expired,
    opensslUntrustedClient: {
      ok: sslUntrusted.ok,
      ...(sslUntrusted.serverVerifyError !== undefined
        ? { serverVerifyError: sslUntrusted.serverVerifyError }
        : {}),
    },
  };
}
