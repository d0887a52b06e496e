// The mesh as read from its clusters (`--cluster NAME=ADMIN_URL|ISSUER_DIR` values), then judged by the
// pure functions: the trust check, the rotation status and the rotation plan. One function per command.
// `now` is read once, after the clusters are read (a fetch may take seconds), as the report's time.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ANCHOR_FILES, readPemFile } from '../ca/store/index.js';
import {
  FileError,
  parseCertificatesPem,
  UsageError,
  type CertificateInfo,
  type Clock,
} from '../ca/index.js';
import { parseTrustBundle } from './bundle.js';
import { RotationInputError } from './errors.js';
import { listClusterPods } from './pods-source.js';
import type { NewAnchorInput } from './rotation-anchors.js';
import { CHECK_DEFAULTS, checkMesh, type CheckReport } from './check.js';
import { planRotation, type RotationPlan, type RotationPlanInput } from './rotation-plan.js';
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

/** What `rotate status` is given besides the clusters. */
export interface RotationStatusRequest {
  /** a fingerprint (or prefix), an anchor directory, or a certificate file */
  readonly newAnchor?: string;
  /** the cross certificate file */
  readonly crossSigned?: string;
  readonly offline?: OfflineAssumptions;
  /** `NAME=KUBECONFIG` values: list that cluster's pods */
  readonly kubeconfigs?: readonly string[];
}

/** `rotate status`: where the rotation of these clusters stands now, and whether the next step is safe. */
export async function clusterRotationStatus(
  values: readonly string[] | undefined,
  clock: Clock,
  request: RotationStatusRequest = {},
): Promise<RotationStatus> {
  const targets = parseClusterTargets(values);
  const kube = parseKubeconfigs(
    request.kubeconfigs ?? [],
    targets.map((t) => t.name),
  );
  const [clusters, anchor, cross, pods] = await Promise.all([
    Promise.all(targets.map((t) => loadCluster(t))),
    request.newAnchor === undefined ? undefined : readNewAnchorOption(request.newAnchor),
    request.crossSigned === undefined ? undefined : readCertificate(request.crossSigned),
    Promise.all([...kube].map(async ([name, file]) => [name, await listClusterPods(name, file)] as const)),
  ]);
  return rotationStatus(clusters, clock.now(), {
    ...(anchor !== undefined ? { newAnchor: anchor.input } : {}),
    ...(request.offline !== undefined ? { offline: request.offline } : {}),
    pods: Object.fromEntries(pods),
    inputs: {
      ...(anchor?.dir !== undefined ? { newAnchorDir: anchor.dir } : {}),
      ...(anchor?.certPath !== undefined ? { newAnchorCert: anchor.certPath } : {}),
      ...(request.crossSigned !== undefined ? { crossSigned: request.crossSigned } : {}),
      ...(cross !== undefined ? { cross } : {}),
    },
  });
}

/** Parses repeated `--kubeconfig NAME=FILE` values; NAME must be a --cluster. */
function parseKubeconfigs(values: readonly string[], clusters: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of values) {
    const i = v.indexOf('=');
    const name = i > 0 ? v.slice(0, i) : '';
    if (!clusters.includes(name) || i === v.length - 1)
      throw new UsageError(`--kubeconfig "${v}" must be NAME=FILE for a cluster given with --cluster`);
    if (out.has(name)) throw new UsageError(`--kubeconfig for cluster "${name}" is given twice`);
    out.set(name, v.slice(i + 1));
  }
  return out;
}

/** `--new-anchor`: an anchor directory (DIR/anchor.crt), a certificate file, or else a fingerprint. */
async function readNewAnchorOption(
  value: string,
): Promise<{ input: NewAnchorInput; dir?: string; certPath?: string }> {
  let st;
  try {
    st = await stat(value);
  } catch {
    return { input: { kind: 'fingerprint', value } };
  }
  const certPath = st.isDirectory() ? join(value, ANCHOR_FILES.cert) : value;
  return {
    input: { kind: 'certificate', certificate: await readCertificate(certPath) },
    ...(st.isDirectory() ? { dir: value } : {}),
    certPath,
  };
}

/** The first certificate of a PEM file (ERR_FILE_INVALID when it holds none). */
async function readCertificate(path: string): Promise<CertificateInfo> {
  const cert = parseCertificatesPem(await readPemFile(path), path)[0];
  if (cert === undefined) throw new FileError('ERR_FILE_INVALID', `${path} holds no certificate`);
  return cert;
}

/** What `rotate plan` is given besides the clusters. */
export interface RotationPlanRequest {
  readonly newAnchorDir: string;
  readonly crossSigned?: string;
  readonly oldAnchorDir?: string;
  readonly renewAfter?: string;
  readonly renewSpread?: string;
  readonly offline?: OfflineAssumptions;
}

/**
 * `rotate plan`: the rotation of these clusters to the anchor in `newAnchorDir`. The cross certificate
 * file must exist, or `oldAnchorDir` be given to make it (ERR_ROTATION_INPUT_MISSING otherwise).
 */
export async function clusterRotationPlan(
  values: readonly string[] | undefined,
  clock: Clock,
  request: RotationPlanRequest,
): Promise<RotationPlan> {
  if (request.crossSigned === undefined)
    throw new RotationInputError(
      'ERR_ROTATION_INPUT_MISSING',
      'phase 2 needs the cross certificate: give --cross-signed FILE (made by lanyard anchor cross-sign)',
      'cross-signed',
    );
  const clusters = await loadClusters(values);
  const newAnchorCertPath = join(request.newAnchorDir, ANCHOR_FILES.cert);
  const anchor = parseTrustBundle(await readPemFile(newAnchorCertPath), newAnchorCertPath).anchors[0];
  if (anchor === undefined) throw new FileError('ERR_FILE_INVALID', `${newAnchorCertPath} holds no anchor`);
  const cross = await crossInput(request.crossSigned, request.oldAnchorDir);
  return planRotation(clusters, {
    newAnchorDir: request.newAnchorDir,
    newAnchorCertPath,
    newAnchor: { fingerprint: anchor.fingerprint, subject: anchor.subject, certificate: anchor.certificate },
    cross,
    now: clock.now(),
    ...(request.renewAfter !== undefined ? { renewAfter: request.renewAfter } : {}),
    ...(request.renewSpread !== undefined ? { renewSpread: request.renewSpread } : {}),
    ...(request.offline !== undefined ? { offline: request.offline } : {}),
  });
}

async function crossInput(
  path: string,
  oldAnchorDir: string | undefined,
): Promise<RotationPlanInput['cross']> {
  const exists = await stat(path).then(
    () => true,
    () => false,
  );
  if (exists) return { path, certificate: await readCertificate(path) };
  if (oldAnchorDir === undefined)
    throw new RotationInputError(
      'ERR_ROTATION_INPUT_MISSING',
      'the cross certificate file does not exist yet: make it with lanyard anchor cross-sign, or give --old-anchor DIR so that the plan prints that command',
      'old-anchor',
    );
  return { path, oldAnchorDir, oldAnchor: await readCertificate(join(oldAnchorDir, ANCHOR_FILES.cert)) };
}
