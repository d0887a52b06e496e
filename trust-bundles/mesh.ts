// The mesh as read from its clusters (`--cluster NAME=ADMIN_URL|ISSUER_DIR` values), then judged by the
// pure functions: the trust check, the rotation status and the rotation plan. One function per command.
// `now` is read once, after the clusters are read (a fetch may take seconds), as the report's time.
import { join } from 'node:path';
import { ANCHOR_FILES, readPemFile } from '../ca/store/index.js';
import { FileError, type Clock } from '../ca/index.js';
import { parseTrustBundle, type BundleAnchor } from './bundle.js';
import { CHECK_DEFAULTS, checkMesh, type CheckReport } from './check.js';
import { planRotation, type RotationPlan } from './rotation-plan.js';
import { rotationStatus, type OfflineAssumptions, type RotationStatus } from './rotation.js';
import { loadCluster, parseClusterTargets, type ClusterSnapshot } from './sources.js';

/** Every cluster named by these `--cluster` values, read at once (UsageError on a malformed value). */
export async function loadClusters(values: readonly string[] | undefined): Promise<ClusterSnapshot[]> {
  return Promise.all(parseClusterTargets(values).map((t) => loadCluster(t)));
}

/**
 * `check`: the mesh-wide trust check of these clusters, now. Issuers warn within `issuerWarnMs`;
 * anchors within 60 days or `issuerWarnMs`, whichever is longer.
 */
export async function checkClusters(
  values: readonly string[] | undefined,
  clock: Clock,
  options: { issuerWarnMs?: number } = {},
): Promise<CheckReport> {
  const clusters = await loadClusters(values);
  const issuerWarnMs = options.issuerWarnMs ?? CHECK_DEFAULTS.issuerWarnMs;
  return checkMesh(clusters, clock.now(), {
    issuerWarnMs,
    anchorWarnMs: Math.max(CHECK_DEFAULTS.anchorWarnMs, issuerWarnMs),
  });
}

/** `rotate status`: where the rotation of these clusters stands now, and whether the next step is safe. */
export async function clusterRotationStatus(
  values: readonly string[] | undefined,
  clock: Clock,
  options: { newAnchor?: string; offline?: OfflineAssumptions } = {},
): Promise<RotationStatus> {
  const clusters = await loadClusters(values);
  return rotationStatus(clusters, clock.now(), options);
}

/** `rotate plan`: the rotation of these clusters to the anchor in `newAnchorDir` (DIR/anchor.crt). */
export async function clusterRotationPlan(
  values: readonly string[] | undefined,
  options: { newAnchorDir: string; offline?: OfflineAssumptions },
): Promise<RotationPlan> {
  const clusters = await loadClusters(values);
  const newAnchor = await readAnchorCertificate(options.newAnchorDir);
  return planRotation(clusters, {
    newAnchorDir: options.newAnchorDir,
    newAnchor,
    ...(options.offline !== undefined ? { offline: options.offline } : {}),
  });
}

/** The first anchor of DIR/anchor.crt (ERR_FILE_INVALID when it holds none). */
async function readAnchorCertificate(dir: string): Promise<BundleAnchor> {
  const path = join(dir, ANCHOR_FILES.cert);
  const anchor = parseTrustBundle(await readPemFile(path), path).anchors[0];
  if (anchor === undefined) throw new FileError('ERR_FILE_INVALID', `${path} holds no anchor`);
  return anchor;
}
