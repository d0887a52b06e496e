// The next step of a rotation in progress, with the preconditions it was judged by, measured now.
import { createChainVerifier, formatDuration, isSelfIssued, type CertificateInfo } from '../ca/index.js';
import type { BundleAnchor } from './bundle.js';
import type { RotationInput } from './errors.js';
import {
  addAnchorCommands,
  removeAnchorCommands,
  stopCrossCommands,
  switchIssuerCommands,
  prepareIssuerCommands,
  type CommandFiles,
} from './rotation-commands.js';
import { crossCertificates, namesAnchor, type NewAnchorRef } from './rotation-anchors.js';
import type { OfflineAssumptions } from './rotation-bounds.js';
import type { ClusterView } from './rotation.js';
import type { NextStep, Precondition, StepCommands } from './rotation-types.js';

/** What the next step's commands and preconditions may use beyond the clusters. */
export interface StepInputs extends CommandFiles {
  /** the cross certificate given (`--cross-signed FILE`), parsed */
  readonly cross?: CertificateInfo;
}

export interface NextContext {
  readonly views: readonly ClusterView[];
  readonly newAnchor: NewAnchorRef | undefined;
  readonly oldAnchors: readonly BundleAnchor[];
  readonly meshUntil: number | null;
  readonly t: number;
  readonly problems: readonly string[];
  readonly steady: boolean;
  readonly offline: OfflineAssumptions;
  readonly inputs: StepInputs;
}

interface StepDraft extends Pick<NextStep, 'action' | 'phase' | 'clusters' | 'reason'> {
  readonly preconditions?: readonly Precondition[];
  readonly missing?: readonly RotationInput[];
  readonly commands?: readonly StepCommands[];
  readonly safe?: boolean;
  readonly waitUntil?: string;
}

function step(p: StepDraft): NextStep {
  const missing = p.missing ?? [];
  const preconditions = p.preconditions ?? [];
  return {
    action: p.action,
    phase: p.phase,
    clusters: p.clusters,
    safe: p.safe ?? (missing.length === 0 && preconditions.every((c) => c.holds === true)),
    preconditions,
    missing,
    commands: missing.length === 0 ? (p.commands ?? []) : [],
    reason: p.reason,
    ...(p.waitUntil !== undefined ? { waitUntil: p.waitUntil } : {}),
  };
}

/** The next step: repair first, then phases 2, 3, 4/5, 6 in order of what is still to do. */
export function nextStep(x: NextContext): NextStep {
  if (x.problems.length > 0)
    return step({
      action: 'repair',
      phase: null,
      clusters: [],
      safe: false,
      reason: `fix first: ${x.problems.join('; ')}`,
    });
  if (x.steady || x.newAnchor === undefined)
    return step({
      action: 'none',
      phase: null,
      clusters: [],
      reason: 'one anchor, trusted everywhere: no rotation in progress',
    });
  const names = (pred: (v: ClusterView) => boolean): string[] =>
    x.views.filter(pred).map((v) => v.snapshot.name);
  const unswitched = names((v) => !v.reach.reachesNew);
  if (unswitched.length > 0) return switchStep(x, unswitched);
  const lackingNew = names((v) => !v.state.bundleHasNew);
  if (lackingNew.length > 0) return addStep(x, lackingNew);
  const holdingOld = names((v) => v.state.oldAnchorsInBundle.length > 0);
  if (holdingOld.length > 0) return dropStep(x, holdingOld);
  const serving = names((v) => v.reach.servesCross);
  if (serving.length > 0) return stopCrossStep(x, serving);
  return step({ action: 'none', phase: null, clusters: [], reason: 'the rotation is complete' });
}

/**
 * Phase 2: safe when the cross certificate is for B, valid now, and the served chain [B-issuer, cross]
 * verifies now against an anchor of every bundle (pathLen of every certificate above counts).
 */
function switchStep(x: NextContext, clusters: string[]): NextStep {
  const served = x.views.flatMap((v) => crossCertificates(v.snapshot.issuerChain));
  const cross =
    x.inputs.cross ?? served.find((c) => x.newAnchor !== undefined && namesAnchor(c, x.newAnchor));
  const missing: RotationInput[] = [];
  if (x.inputs.crossSigned === undefined) missing.push('cross-signed');
  if (x.inputs.newAnchorDir === undefined) missing.push('new-anchor');
  // the chains already served with this cross certificate (switched clusters): verified whole too
  const chains =
    cross === undefined
      ? []
      : x.views
          .map((v) => v.snapshot.issuerChain)
          .filter((ch) => ch.slice(1).some((c) => c.der.equals(cross.der)));
  const lacking =
    cross === undefined
      ? []
      : x.views
          .filter(
            (v) =>
              !v.snapshot.bundle.anchors.some((a) => servedChainVerifies(a.certificate, cross, chains, x.t)),
          )
          .map((v) => v.snapshot.name);
  const forB = cross !== undefined && x.newAnchor !== undefined && namesAnchor(cross, x.newAnchor);
  const pre: Precondition = {
    kind: 'cross-reaches-every-bundle',
    holds: cross === undefined ? 'unknown' : forB && lacking.length === 0,
    lacking,
  };
  const valid = crossValidity(cross, x);
  const { newAnchorDir, crossSigned } = x.inputs;
  return step({
    action: 'switch-issuers',
    phase: 2,
    clusters,
    preconditions: [pre, valid],
    missing,
    commands: x.views
      .filter((v) => clusters.includes(v.snapshot.name))
      .map((v) => ({
        cluster: v.snapshot.name,
        commands: [
          ...prepareIssuerCommands(v.snapshot, newAnchorDir ?? '', crossSigned ?? ''),
          ...switchIssuerCommands(v.snapshot),
        ],
      })),
    reason:
      pre.holds === 'unknown'
        ? 'the cross certificate is unknown: give --cross-signed FILE (lanyard anchor cross-sign)'
        : valid.holds === false
          ? `the cross certificate or the anchor that signed it is not valid now (cross notAfter ${valid.notAfter ?? 'unknown'}): make a new one (lanyard anchor cross-sign)`
          : pre.holds
            ? 'the B-issuers serve the cross certificate; the chain [B-issuer, cross] verifies now against an anchor of every bundle: every proxy verifies their leaves'
            : `the cross certificate is ${forB ? '' : 'not for the new anchor, or '}not a path that an anchor of the bundle of ${lacking.join(', ') || 'every cluster'} accepts now (signature, validity, pathLen): those clusters would refuse the new leaves`,
  });
}

/** The cross certificate, and the old anchors of the bundles that name its issuer, are valid at now. */
function crossValidity(
  cross: CertificateInfo | undefined,
  x: NextContext,
): Extract<Precondition, { kind: 'cross-not-expired' }> {
  if (cross === undefined) return { kind: 'cross-not-expired', holds: 'unknown', notAfter: null };
  const within = (c: CertificateInfo): boolean => c.notBefore.getTime() <= x.t && x.t <= c.notAfter.getTime();
  const signers = x.oldAnchors.filter((a) => a.certificate.subjectDer.equals(cross.issuerDer));
  return {
    kind: 'cross-not-expired',
    holds: within(cross) && signers.every((a) => within(a.certificate)),
    notAfter: cross.notAfter.toISOString(),
  };
}

/**
 * Whether the chain a B-issuer serves, [issuer_B, cross], verifies against `anchor` at `t` (not moved
 * into any validity: an expired cross certificate or anchor fails): the cross certificate with one CA
 * below it (the B-issuer to come, counted toward every pathLen above), and each chain already served.
 */
export function servedChainVerifies(
  anchor: CertificateInfo,
  cross: CertificateInfo,
  served: readonly (readonly CertificateInfo[])[],
  t: number,
): boolean {
  const at = new Date(t);
  try {
    const path = createChainVerifier({ anchors: [anchor] }).verify(cross, at);
    let below = 1; // the B-issuer under the cross certificate
    for (const c of path) {
      if (c.pathLen !== undefined && below > c.pathLen) return false;
      if (c.isCa && !isSelfIssued(c)) below += 1;
    }
    for (const chain of served) {
      const [issuer, ...rest] = chain;
      if (issuer === undefined) continue;
      createChainVerifier({ anchors: [anchor], intermediates: rest }).verify(issuer, at);
    }
    return true;
  } catch {
    return false;
  }
}

/** Phase 3: adding an anchor never breaks a handshake; the command needs B's certificate file. */
function addStep(x: NextContext, clusters: string[]): NextStep {
  const cert = x.inputs.newAnchorCert;
  return step({
    action: 'add-new-anchor',
    phase: 3,
    clusters,
    missing: cert === undefined ? ['new-anchor'] : [],
    commands: x.views
      .filter((v) => clusters.includes(v.snapshot.name))
      .map((v) => ({ cluster: v.snapshot.name, commands: addAnchorCommands(v.snapshot, cert ?? '') })),
    reason: 'adding an anchor never breaks a handshake: pods started from now on trust both anchors',
  });
}

/** Phase 4 (wait) or 5 (drop A): no leaf of an A-issuer may be alive when A leaves a bundle. */
function dropStep(x: NextContext, clusters: string[]): NextStep {
  const until = x.meshUntil;
  const expired: Precondition = {
    kind: 'old-leaves-expired',
    holds: until === null ? 'unknown' : until < x.t,
    until: until === null ? null : new Date(until).toISOString(),
  };
  const serving = servingReachesNew(x.views);
  const preconditions: Precondition[] = [...switchedAndTrusted(x.views), serving, expired];
  if (preconditions.some((c) => c.holds !== true)) {
    const unknownFor = x.views
      .filter((v) => v.state.oldLeavesValidUntil === null)
      .map((v) => v.snapshot.name);
    return step({
      action: 'wait-old-leaves',
      phase: 4,
      clusters,
      preconditions,
      reason:
        serving.holds !== true && expired.holds === true
          ? `dropping the old anchor is not safe: the identity service's serving chain of ${[...serving.lacking, ...serving.unknown].join(', ')} ${serving.holds === false ? 'does not reach' : 'is not known to reach (no servingTls.chainPem in /v1/status)'} the new anchor: pods started after the drop could not get a certificate (issue the serving certificate under the B-issuer and append the cross certificate)`
          : until === null
            ? `dropping the old anchor is not safe: when the last leaf of an old issuer expires is unknown for ${unknownFor.join(', ')}`
            : `dropping the old anchor is not safe before ${new Date(until).toISOString()} (in ${formatDuration(until - x.t)}): leaves of an old issuer may still be valid`,
      ...(until !== null && expired.holds !== true ? { waitUntil: new Date(until).toISOString() } : {}),
    });
  }
  return step({
    action: 'drop-old-anchors',
    phase: 5,
    clusters,
    preconditions,
    commands: x.views.flatMap((v) =>
      v.state.oldAnchorsInBundle.map((fp) => ({
        cluster: v.snapshot.name,
        commands: removeAnchorCommands(v.snapshot, fp),
      })),
    ),
    reason: `no leaf of an old issuer is valid any more (the last expired by ${new Date(until as number).toISOString()}); proxies that trust only the old anchor keep verifying through the cross certificate${serving.unchecked.length > 0 ? `; not checked (directory sources): that the identity service of ${serving.unchecked.join(', ')}, if it serves TLS, serves a chain reaching the new anchor` : ''}`,
  });
}

/** Drop A's first two preconditions, measured on the views: every issuer reaches B; every bundle holds B. */
export function switchedAndTrusted(views: readonly ClusterView[]): Precondition[] {
  const pending = views.filter((v) => !v.reach.reachesNew).map((v) => v.snapshot.name);
  const lacking = views.filter((v) => !v.state.bundleHasNew).map((v) => v.snapshot.name);
  return [
    { kind: 'every-issuer-switched', holds: pending.length === 0, pending },
    { kind: 'new-anchor-in-every-bundle', holds: lacking.length === 0, lacking },
  ];
}

/**
 * Drop A: every serving chain (TLS served) reaches B. Plaintext listeners impose nothing; directory
 * sources carry no serving information: not applicable, listed in `unchecked` (check them yourself).
 */
export function servingReachesNew(
  views: readonly ClusterView[],
): Extract<Precondition, { kind: 'serving-chain-reaches-new' }> {
  const names = (pred: (v: ClusterView) => boolean): string[] =>
    views.filter(pred).map((v) => v.snapshot.name);
  const lacking = names((v) => v.state.serving.kind === 'tls' && !v.state.serving.reachesNew);
  const unknown = names((v) => v.state.serving.kind === 'unknown' && v.snapshot.kind === 'admin');
  const unchecked = names((v) => v.state.serving.kind === 'unknown' && v.snapshot.kind === 'dir');
  return {
    kind: 'serving-chain-reaches-new',
    holds: lacking.length > 0 ? false : unknown.length > 0 ? 'unknown' : true,
    lacking,
    unknown,
    unchecked,
  };
}

/** Phase 6 (optional): stop serving the cross certificate once no running proxy trusts only old anchors. */
function stopCrossStep(x: NextContext, clusters: string[]): NextStep {
  const unknownClusters = x.views
    .filter((v) => v.state.proxies.kind !== 'listed')
    .map((v) => v.snapshot.name);
  const onlyOld = x.views.flatMap((v) => (v.state.proxies.kind === 'listed' ? v.state.proxies.onlyOld : []));
  const unknownPods = x.views.flatMap((v) =>
    v.state.proxies.kind === 'listed' ? v.state.proxies.unknown : [],
  );
  const holds =
    onlyOld.length > 0 ? false : unknownClusters.length > 0 || unknownPods.length > 0 ? 'unknown' : true;
  const pre: Precondition = {
    kind: 'no-proxy-trusts-only-old',
    holds,
    unknownClusters,
    pods: [...onlyOld, ...unknownPods],
  };
  if (holds !== true)
    return step({
      action: 'wait-old-proxies',
      phase: 6,
      clusters,
      preconditions: [pre],
      missing: x.views.some((v) => v.state.proxies.kind === 'not-given') ? ['kubeconfig'] : [],
      reason:
        holds === false
          ? `${onlyOld.length} running proxies trust only the old anchor: they verify new leaves only through the cross certificate (optional step: keep serving it until they are replaced)`
          : `whether a running proxy trusts only the old anchor cannot be known for ${[...unknownClusters, ...unknownPods.map((p) => `${p.cluster}:${p.namespace}/${p.name}`)].join(', ')} (give --kubeconfig NAME=FILE; optional step)`,
    });
  const dir = x.inputs.newAnchorDir;
  return step({
    action: 'stop-serving-cross',
    phase: 6,
    clusters,
    preconditions: [pre],
    missing: dir === undefined ? ['new-anchor'] : [],
    commands: x.views
      .filter((v) => clusters.includes(v.snapshot.name))
      .map((v) => ({ cluster: v.snapshot.name, commands: stopCrossCommands(v.snapshot, dir ?? '') })),
    reason:
      'every running proxy trusts the new anchor: the cross certificate is no longer needed (optional); drop it from the serving chain (--tls-cert) now too, never before this point',
  });
}
