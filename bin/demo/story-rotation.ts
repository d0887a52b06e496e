// The anchor rotation under traffic with no pod restarted, by cross-signing (docs/operations/
// anchor-rotation.md): 1. prepare anchor B, the cross certificate (B by A) and a B-issuer per cluster;
// 2. switch the issuers to it, serving [issuer_B, cross] (and the identity services' serving chains the
// same way), so proxies that trust only A accept everything; 3. add B to the bundles and start pods
// that trust {A,B}; 4. wait until no leaf under an A-issuer can be alive; 5. drop A from the bundles and
// start pods that trust {B}; 6. stop the pods that trust only A (replaced, not restarted), then stop
// serving the cross certificate. Every pair of running pods keeps making handshakes across clusters.
import { readFileSync } from 'node:fs';
import { encodePem, parseCertificatesPem, systemClock, type CertificateInfo } from '../../ca/index.js';
import { writeFileAtomic } from '../../ca/store/index.js';
import { adminGet, issueServingCert, normSerial, proxyOnce, servingSerial } from './identity.js';
import { waitFor, WAIT_TIMEOUT_MS } from './process-io.js';
import { createPhases, type Phases } from './story-phases.js';
import type { Mesh, MeshPod } from './story-pods.js';
import { createRotationStatus, describeStatus, type RotationStatus } from './story-rotate-status.js';
import { CLUSTERS, type Cluster, type StoryContext } from './story-context.js';
import type { ServingCerts } from './story-setup.js';
import type { OldLeavesGate, RotateStatusFields, StorySummary } from './story-summary.js';
import { prepareNewAnchor } from './story-prepare.js';

export interface RotationInput {
  readonly serving: ServingCerts;
  readonly mesh: Mesh;
  /** `--kubeconfig NAME=FILE` per cluster, for rotate status */
  readonly kubeconfigs: readonly string[];
}

export interface RotationOutcome {
  readonly rotation: StorySummary['rotation'];
  /** a proxy started with the old anchor only, once the issuers serve under B with the cross certificate */
  readonly stale: ReturnType<typeof proxyOnce>;
}

interface Step {
  readonly ctx: StoryContext;
  readonly input: RotationInput;
  readonly rs: RotationStatus;
  readonly phases: Phases;
}

const certs = (file: string): CertificateInfo[] => parseCertificatesPem(readFileSync(file, 'utf8'), file);

/** Cluster `c`'s /v1/status, parsed ({} when unreachable). */
function issuerStatus(ctx: StoryContext, c: Cluster): Record<string, unknown> {
  try {
    return JSON.parse(adminGet(ctx.topo, ctx.pods[c].host, `${ctx.adminUrl(c)}/v1/status`)) as Record<
      string,
      unknown
    >;
  } catch {
    return {};
  }
}

/** Waits until both issuers' /v1/status satisfy `pred`. */
async function issuersShow(
  ctx: StoryContext,
  pred: (s: Record<string, unknown>, c: Cluster) => boolean,
  what: string,
): Promise<void> {
  await waitFor(() => CLUSTERS.every((c) => pred(issuerStatus(ctx, c), c)), what);
}

const anchorSubjects = (s: Record<string, unknown>): string[] =>
  Array.isArray(s.anchors) ? s.anchors.map((a) => String((a as { subject?: unknown }).subject)) : [];
const issuerOf = (s: Record<string, unknown>): { serial?: unknown; chainPem?: unknown } => s.issuer ?? {};

/** Phase 2: each issuer dir gets the B-issuer's key and [issuer_B, cross] (never ca.crt); serving chains too. */
async function switchIssuers({ ctx, input, phases }: Step): Promise<void> {
  const { path: p } = ctx;
  phases.begin(2, 'switch the issuers to the B-issuer, serving the cross certificate');
  for (const c of CLUSTERS) {
    await writeFileAtomic(p(c, 'issuer', 'tls.key'), readFileSync(p(c, 'issuer-next', 'tls.key')), {
      mode: 0o600,
      overwrite: true,
    });
    await writeFileAtomic(p(c, 'issuer', 'tls.crt'), readFileSync(p(c, 'issuer-next', 'tls.crt')), {
      overwrite: true,
    });
    // the identity service's serving chain: [serving, issuer_B, cross], so that proxies trusting only A
    // (through the cross certificate) and, later, proxies trusting only B both accept it
    input.serving[c] = await issueServingCert(p(c, 'issuer-next'), p(c, 'serving'), systemClock.now());
  }
  const next = Object.fromEntries(
    CLUSTERS.map((c) => [c, normSerial(certs(p(c, 'issuer-next', 'tls.crt'))[0]?.serialHex ?? '')]),
  );
  await issuersShow(
    ctx,
    (s, c) =>
      normSerial(String(issuerOf(s).serial)) === next[c] &&
      servingSerial(JSON.stringify(s)) === input.serving[c].serial,
    'both issuers to sign and serve under the B-issuer',
  );
  ctx.say(
    "Phase 2: switched both issuers to the B-issuer (tls.key + tls.crt copied, ca.crt untouched), and the identity services' serving chains to [serving, issuer_B, cross] (hot reload, no restart)",
    'every answer is now [leaf, issuer_B, cross]: a proxy that trusts only A verifies it through the cross certificate',
  );
}

/** Phase 3: B joins each cluster's bundle; pods created from now on trust {A,B}. */
async function addNewAnchor({ ctx, input, phases }: Step): Promise<MeshPod[]> {
  const { must, path: p } = ctx;
  phases.begin(3, 'add B to the bundles; new pods trust {A,B}');
  for (const c of CLUSTERS) must(['bundle', 'add', p(c, 'issuer', 'ca.crt'), p('anchor-b', 'anchor.crt')]);
  await issuersShow(ctx, (s) => anchorSubjects(s).length === 2, 'both issuers to serve the bundle {A,B}');
  const started = await Promise.all(CLUSTERS.map((c) => input.mesh.start(c, 'AB')));
  ctx.say(
    "Phase 3: added B to both clusters' bundles; started a new pod in each cluster (generation AB): its proxy read {A,B} at start",
    started.map((x) => `${x.name}: trusts ${x.trusts.join(' + ')}, mTLS on ${x.addr}`).join('\n'),
  );
  return started;
}

/** Phase 4: wait until no leaf signed by an A-issuer can be valid anywhere. */
async function waitOldLeaves({ ctx, rs, phases }: Step): Promise<OldLeavesGate> {
  phases.begin(4, 'wait until no leaf under an A-issuer can be alive');
  const gate = await rs.oldLeavesGone();
  ctx.say(
    `Phase 4: no leaf under an A-issuer can be alive any more (${gate.openedBy === 'rotate-status' ? 'rotate status' : "the issuers' bound"}: ${describeStatus(gate)})`,
  );
  return gate;
}

/** Phase 5: A leaves the bundles; pods created from now on trust {B}. */
async function removeOldAnchor({ ctx, input, phases }: Step): Promise<MeshPod[]> {
  const { must, path: p } = ctx;
  phases.begin(5, 'remove A from the bundles; new pods trust {B}');
  for (const c of CLUSTERS) must(['bundle', 'remove', p(c, 'issuer', 'ca.crt'), p('anchor-a', 'anchor.crt')]);
  await issuersShow(
    ctx,
    (s) => anchorSubjects(s).length === 1 && !anchorSubjects(s).some((x) => x.includes('root-a')),
    'both issuers to serve the bundle {B}',
  );
  const started = await Promise.all(CLUSTERS.map((c) => input.mesh.start(c, 'B')));
  ctx.say(
    'Phase 5: removed A from both bundles; started a new pod in each cluster (generation B): its proxy read {B} at start',
    started.map((x) => `${x.name}: trusts ${x.trusts.join(' + ')}, mTLS on ${x.addr}`).join('\n'),
  );
  return started;
}

/**
 * Phase 6: the pods that trust only A are stopped (replaced by generation B); then the cross
 * certificate goes. Resolves when every running pod holds a leaf answered without it.
 */
async function dropCross({
  ctx,
  input,
  rs,
  phases,
}: Step): Promise<{ renewedAt: number; cleanupGate: RotateStatusFields }> {
  const { path: p } = ctx;
  phases.begin(6, 'stop the pods that trust only A, then stop serving the cross certificate');
  const genA = input.mesh.pods.filter((x) => x.gen === 'A');
  await Promise.all(genA.map((x) => input.mesh.retire(x)));
  const cleanupGate = await rs.crossMayGo();
  ctx.say(
    `Phase 6: stopped the pods whose proxies trust only A (${genA.map((x) => x.name).join(', ')}): replaced by generation B, not restarted`,
    `rotate status: ${describeStatus(cleanupGate)}: no running proxy trusts only A (read from each cluster's pods, LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS of the linkerd-proxy container)`,
  );
  for (const c of CLUSTERS) {
    const issuerB = certs(p(c, 'issuer-next', 'tls.crt'))[0] as CertificateInfo;
    await writeFileAtomic(p(c, 'issuer', 'tls.crt'), encodePem('CERTIFICATE', issuerB.der), {
      overwrite: true,
    });
    input.serving[c] = await issueServingCert(p(c, 'issuer'), p(c, 'serving'), systemClock.now());
  }
  await issuersShow(
    ctx,
    (s, c) =>
      parseCertificatesPem(
        typeof issuerOf(s).chainPem === 'string' ? (issuerOf(s).chainPem as string) : '',
        'chain',
      ).length === 1 && servingSerial(JSON.stringify(s)) === input.serving[c].serial,
    'both issuers to serve [issuer_B] only',
  );
  // every pod still running renews at its own pace (70 % of valid_until) and gets [leaf, issuer_B]
  const served = systemClock.now().getTime();
  const live = input.mesh.inMesh();
  await waitFor(
    () => live.every((x) => x.proxy.certified.some((e) => Date.parse(e.requestedAt) > served)),
    'every running pod to renew without the cross certificate',
    // a renewal is due every 70 % of a leaf lifetime; generous on a loaded host
    2 * WAIT_TIMEOUT_MS,
  );
  ctx.say(
    'then stopped serving the cross certificate: issuers answer [leaf, issuer_B], serving chains [serving, issuer_B]; every running pod has renewed since, at its own 70 % point',
  );
  return { renewedAt: systemClock.now().getTime(), cleanupGate };
}

/** A proxy started now with the old anchor only: thanks to the cross certificate it is accepted. */
function staleProxy(ctx: StoryContext): ReturnType<typeof proxyOnce> {
  const stale = proxyOnce(ctx.launch, ctx.proxySpec('east', ctx.path('anchor-a', 'anchor.crt')));
  ctx.say(
    `a proxy started now with the old anchor A only: ${stale.ok ? 'ACCEPTED (serving chain and leaf verified through the cross certificate)' : `refused (${stale.failure?.code ?? stale.failure?.kind ?? '?'}), WRONG`}`,
    stale.failure?.error,
  );
  return stale;
}

function summarize(
  input: RotationInput,
  phases: Phases,
  started: number,
): Omit<StorySummary['rotation'], 'gate' | 'cleanupGate'> {
  const { records } = input.mesh;
  const failures = records.filter((r) => !r.ok);
  const end = systemClock.now().getTime();
  const onlyA = new Set(
    input.mesh.pods.filter((x) => x.trusts.every((t) => t.includes('root-a'))).map((x) => x.name),
  );
  return {
    phases: phases.report(end),
    handshakes: records.length,
    failed: failures.length,
    failures: failures.slice(0, 20),
    pairs: phases.pairs(),
    // a client whose proxy trusts only A, shown a chain above the leaf that names B: it got through the
    // cross certificate (B itself it does not trust)
    viaCross: records.filter(
      (r) => r.ok && onlyA.has(r.from) && (r.path ?? []).some((n) => n.includes('root-b')),
    ).length,
    listenerRefusals: 0,
    durationMs: end - started,
  };
}

export async function rotateUnderTraffic(ctx: StoryContext, input: RotationInput): Promise<RotationOutcome> {
  const { mesh } = input;
  const phases = createPhases(mesh);
  const rs = createRotationStatus(ctx, mesh.records, input.kubeconfigs);
  const step: Step = { ctx, input, rs, phases };
  const refusalsBefore = mesh.refusals.east.length + mesh.refusals.west.length;
  ctx.say(
    'Anchor rotation under traffic: every pod makes a handshake a second to every pod of the other cluster',
  );
  const started = systemClock.now().getTime();
  phases.begin(1, 'prepare B, the cross certificate and a B-issuer per cluster');
  mesh.startTraffic();
  prepareNewAnchor(ctx);
  phases.note(rs.note('prepared'));
  await phases.covered();
  await switchIssuers(step);
  rs.switched();
  phases.note(rs.note('issuers switched'));
  const stale = staleProxy(ctx);
  await phases.covered();
  await addNewAnchor(step);
  phases.note(rs.note('B in every bundle'));
  await phases.covered();
  const gate = await waitOldLeaves(step);
  phases.note(rs.note('old leaves gone'));
  await phases.covered();
  await removeOldAnchor(step);
  phases.note(rs.note('A removed'));
  await phases.covered();
  const { renewedAt, cleanupGate } = await dropCross(step);
  phases.note(rs.note('cross certificate dropped'));
  await phases.covered(renewedAt);
  const rotation = {
    ...summarize(input, phases, started),
    listenerRefusals: mesh.refusals.east.length + mesh.refusals.west.length - refusalsBefore,
    gate,
    cleanupGate,
  };
  ctx.say(
    `Rotation done: ${rotation.handshakes} cross-cluster handshakes between ${mesh.pods.length} pods, ${rotation.failed} failed, in ${(rotation.durationMs / 1000).toFixed(1)} s; no pod restarted`,
    rotation.phases
      .map(
        (x) =>
          `phase ${x.phase} (${x.title}): ${x.handshakes} handshakes, ${x.failed} failed, ${(x.durationMs / 1000).toFixed(1)} s, pods ${x.live.join(' ')}`,
      )
      .join('\n'),
  );
  return { rotation, stale };
}
