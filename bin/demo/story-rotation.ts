// The anchor rotation under traffic, phase by phase, each step waiting until `lanyard rotate status`
// (and the pods) show it took effect: 1. the new anchor joins both bundles and the proxies restart to
// trust it; 2. issuers and serving certificates move under the new anchor (a proxy that trusts only the
// old anchor is now refused); 3. once rotate status calls it safe, the old anchor leaves the bundles and
// the proxies restart to trust the new anchor only.
import { readFileSync } from 'node:fs';
import { parseCertificatesPem, systemClock, type CertificateInfo } from '../../ca/index.js';
import { writeFileAtomic } from '../../ca/store/index.js';
import { adminGet, issueServingCert, proxyOnce, servingSerial, type PodProxy } from './identity.js';
import { waitFor } from './process-io.js';
import { createRotationStatus, type RotationStatus } from './story-rotate-status.js';
import { CLUSTERS, type Cluster, type StoryContext } from './story-context.js';
import type { ServingCerts } from './story-setup.js';
import type { StorySummary } from './story-summary.js';
import { startTraffic } from './story-traffic.js';

export interface RotationInput {
  readonly serving: ServingCerts;
  readonly proxies: Record<Cluster, PodProxy>;
  /** handshakes per second per direction */
  readonly rate: number;
}

export interface RotationOutcome {
  readonly rotation: StorySummary['rotation'];
  /** a proxy started with the old anchor only, once the serving certificates are under the new one */
  readonly stale: ReturnType<typeof proxyOnce>;
}

interface Step {
  readonly ctx: StoryContext;
  readonly input: RotationInput;
  readonly rs: RotationStatus;
}

const readCertificate = (file: string, name: string): CertificateInfo =>
  parseCertificatesPem(readFileSync(file, 'utf8'), name)[0] as CertificateInfo;

/** Whether cluster `c`'s pod trusts anchor `a` (its ca.crt holds it). */
const trusts = (ctx: StoryContext, c: Cluster, a: CertificateInfo): boolean =>
  parseCertificatesPem(readFileSync(ctx.path(c, 'pod', 'ca.crt'), 'utf8'), 'ca.crt').some((x) =>
    x.der.equals(a.der),
  );

/** A proxy reads its trust anchors only at start: to trust another bundle it must be restarted. */
async function restartProxies(input: RotationInput): Promise<void> {
  for (const c of CLUSTERS) await input.proxies[c].restart();
}

async function addNewAnchor({ ctx, input, rs }: Step): Promise<void> {
  const { must, path: p, say } = ctx;
  must(['anchor', 'create', '--out', p('anchor-b'), '--common-name', 'root-b.linkerd.cluster.local']);
  for (const c of CLUSTERS) must(['bundle', 'add', p(c, 'issuer', 'ca.crt'), p('anchor-b', 'anchor.crt')]);
  say("Phase 1: added the new anchor to both clusters' bundles (the issuers reload them live)");
  await waitFor(() => rs.status().phase === 1, 'both issuers to serve the new bundle');
  rs.note('bundles updated');
  const anchorB = readCertificate(p('anchor-b', 'anchor.crt'), 'anchor-b');
  // To trust the new anchor the proxies must be restarted (kubectl rollout restart). Only the identity
  // side restarts here; the mTLS agent keeps serving and picks up the new key, certificate and ca.crt.
  await restartProxies(input);
  await waitFor(
    () => trusts(ctx, 'east', anchorB) && trusts(ctx, 'west', anchorB),
    'both pods to trust the new anchor after their restart',
    60_000,
  );
  say(
    "Restarted both pods' proxies (kubectl rollout restart): a proxy reads its trust anchors only at start; from the bundle they now trust old and new",
    'without this restart they would refuse, in phase 2, the serving certificate and the leaves signed under the new anchor',
  );
}

async function reissueUnderNewAnchor({ ctx, input, rs }: Step): Promise<void> {
  const { must, path: p } = ctx;
  for (const c of CLUSTERS) {
    must(['issuer', 'create', '--anchor', p('anchor-b'), '--cluster', c, '--out', p(c, 'issuer-next')]);
    // Key and certificate replace the old pair; ca.crt (the bundle, still holding the old anchor) stays.
    await writeFileAtomic(p(c, 'issuer', 'tls.key'), readFileSync(p(c, 'issuer-next', 'tls.key')), {
      mode: 0o600,
      overwrite: true,
    });
    await writeFileAtomic(p(c, 'issuer', 'tls.crt'), readFileSync(p(c, 'issuer-next', 'tls.crt')), {
      overwrite: true,
    });
    // The identity service's serving certificate moves under the new anchor too: every running proxy
    // trusts it now, and the proxies restarted after phase 3 will trust nothing else.
    input.serving[c] = await issueServingCert(p(c, 'issuer-next'), p(c, 'serving'), systemClock.now());
  }
  ctx.say(
    "Phase 2: re-issued both issuers and their identity services' serving certificates under the new anchor (hot reload, no restart)",
  );
  await waitFor(
    () => rs.status().phase === 2 || rs.status().phase === 3,
    'both issuers to sign under the new anchor',
  );
  rs.note('issuers re-issued');
  await waitFor(
    () =>
      CLUSTERS.every(
        (c) =>
          servingSerial(adminGet(ctx.topo, ctx.pods[c].host, `${ctx.adminUrl(c)}/v1/status`)) ===
          input.serving[c].serial,
      ),
    'both issuers to serve the new serving certificate',
  );
}

/** A proxy started now with the old anchor only: it must refuse the new serving certificate. */
function staleProxy(ctx: StoryContext): ReturnType<typeof proxyOnce> {
  const stale = proxyOnce(ctx.launch, ctx.proxySpec('east', ctx.path('anchor-a', 'anchor.crt')));
  ctx.say(
    `a proxy started with the old anchor only, now: ${stale.ok ? 'ACCEPTED (wrong)' : `refused (${stale.failure?.code ?? stale.failure?.kind ?? '?'})`}`,
    stale.failure?.error,
  );
  return stale;
}

async function removeOldAnchor({ ctx, input, rs }: Step): Promise<void> {
  const { must, path: p, say } = ctx;
  await waitFor(
    () => {
      const s = rs.status();
      return s.next.action === 'remove-old-anchors' && s.next.safe;
    },
    'rotate status to call removing the old anchor safe',
    120_000,
  );
  rs.note('old leaves expired');
  const anchorA = readCertificate(p('anchor-a', 'anchor.crt'), 'anchor-a');
  for (const c of CLUSTERS) must(['bundle', 'remove', p(c, 'issuer', 'ca.crt'), p('anchor-a', 'anchor.crt')]);
  say('Phase 3: removed the old anchor from both bundles, as rotate status said it was safe');
  await waitFor(() => rs.status().phase === 'steady', 'the issuers to serve the final bundle');
  rs.note('old anchor removed');
  await restartProxies(input);
  await waitFor(
    () => !trusts(ctx, 'east', anchorA) && !trusts(ctx, 'west', anchorA),
    'both pods to drop the old anchor after their restart',
    60_000,
  );
  say("Restarted both pods' proxies again: they read the final bundle and trust the new anchor only");
}

export async function rotateUnderTraffic(ctx: StoryContext, input: RotationInput): Promise<RotationOutcome> {
  const { rate } = input;
  ctx.say('Anchor rotation under traffic: both pods keep making new handshakes to each other');
  const traffic = startTraffic(ctx, rate);
  const { records } = traffic;
  const rotationStart = performance.now();
  await waitFor(() => records.length >= 2 * rate, 'traffic to flow');
  const rs = createRotationStatus(ctx, records);
  const step: Step = { ctx, input, rs };
  rs.note('before');
  await addNewAnchor(step);
  await reissueUnderNewAnchor(step);
  const stale = staleProxy(ctx);
  await removeOldAnchor(step);
  const settle = records.length;
  await waitFor(() => records.length >= settle + 2 * rate, 'traffic after the rotation');
  await traffic.stop();
  const rotationMs = performance.now() - rotationStart;
  const failures = records.filter((r) => !r.ok);
  ctx.say(
    `Rotation done: ${records.length} cross-cluster handshakes, ${failures.length} failed, in ${(rotationMs / 1000).toFixed(1)} s`,
  );
  return {
    rotation: {
      phases: rs.phases,
      handshakes: records.length,
      failed: failures.length,
      failures: failures.slice(0, 20),
      durationMs: rotationMs,
    },
    stale,
  };
}
