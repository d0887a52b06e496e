// The flat-network story: two clusters, each with its own issuer under one shared anchor, pods that
// verify each other directly across clusters, and a full anchor rotation by cross-signing under
// continuous traffic between three generations of pods, with no pod restarted.
// Shared by `npm run demo` (narrated) and test/e2e/flat-network.test.ts (asserted).
//
// This file is the driver: it builds the topology, lists the steps in order and assembles the summary.
// The steps live next to it: story-setup.ts (topology, PKI, issuers), story-pods.ts (the pods: proxies
// and mTLS agents), story-kube.ts (the clusters' pods as a Kubernetes API stand-in lists them),
// story-cross-cluster.ts, story-negatives.ts, story-rotation.ts (with story-prepare.ts, story-phases.ts
// and story-rotate-status.ts), story-leaf-checks.ts and story-identity-report.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLUSTERS, createStoryContext, HOST_NAMES, type Say } from './story-context.js';
import { crossClusterMtls } from './story-cross-cluster.js';
import { finalCheck, identityReport } from './story-identity-report.js';
import { negativeCases } from './story-negatives.js';
import { startKubeStandIn } from './story-kube.js';
import { checkLeaves } from './story-leaf-checks.js';
import { createMesh, sayPodCertificate } from './story-pods.js';
import { rotateUnderTraffic } from './story-rotation.js';
import { createPki, describeTopology, startIssuers } from './story-setup.js';
import type { StoryOptions, StorySummary } from './story-summary.js';
import { createTopology, registerCleanup, type Topology } from './topology.js';

export { identity, spiffe, type Outcome } from './mtls-checks.js';
export { REPO } from './story-context.js';
export { renewalLagMs, renewalMarginMs } from './story-identity-report.js';
export type { HandshakeRecord, StoryOptions, StorySummary } from './story-summary.js';

/** Runs the whole story and always tears the topology and its processes down. */
export async function runFlatNetworkStory(o: StoryOptions = {}): Promise<StorySummary> {
  const say = o.say ?? (() => undefined);
  const started = performance.now();
  const work = mkdtempSync(join(tmpdir(), 'lanyard-flatnet-'));
  const removeWork = (): void => {
    rmSync(work, { recursive: true, force: true });
  };
  // Registered before anything else exists: SIGINT/SIGTERM/SIGHUP or the parent going away removes it.
  const unregister = registerCleanup(removeWork);
  let topo: Topology;
  try {
    const forced = process.env.LANYARD_FLATNET_MODE;
    const mode = o.mode ?? (forced === 'loopback' || forced === 'netns' ? forced : undefined);
    topo = createTopology(HOST_NAMES, mode !== undefined ? { mode } : {});
  } catch (err) {
    removeWork();
    unregister();
    throw err;
  }
  // idempotent: topo.destroy() and rmSync(force) may run twice (here and from a signal handler)
  const teardown = (): void => {
    topo.destroy();
    removeWork();
    unregister();
  };
  o.onTopology?.(teardown, topo, work);
  try {
    return await story(topo, work, o, say, started);
  } finally {
    teardown();
  }
}

/** The story's steps, in order; each says what it did. */
async function story(
  topo: Topology,
  work: string,
  o: StoryOptions,
  say: Say,
  started: number,
): Promise<StorySummary> {
  const ctx = createStoryContext({ topo, work, say });
  describeTopology(ctx);
  const serving = await createPki(ctx);
  const serves = await startIssuers(ctx, serving, o.leafLifetime ?? '15s');
  const kube = await startKubeStandIn(ctx);
  const mesh = createMesh(ctx, o.rate ?? 1, kube.writePods);
  // the first generation of pods: one per cluster, its proxy trusting {A}
  for (const c of CLUSTERS) sayPodCertificate(ctx, await mesh.start(c, 'A'));
  if (o.holdAfterSetup !== undefined) await o.holdAfterSetup();
  const crossCluster = await crossClusterMtls(ctx);
  const negatives = await negativeCases(ctx, mesh.refusals);
  const { rotation, stale } = await rotateUnderTraffic(ctx, { serving, mesh, kubeconfigs: kube.args });
  await mesh.stopAll();
  const leafChecks = checkLeaves(ctx, mesh.pods);
  const finalCheckExit = finalCheck(ctx);
  const identity = identityReport(ctx, mesh.pods, stale);
  for (const s of serves) s.kill('SIGTERM');
  return {
    mode: topo.mode,
    crossCluster,
    negatives,
    rotation,
    leafChecks,
    identity,
    finalCheckExit,
    durationMs: performance.now() - started,
  };
}
