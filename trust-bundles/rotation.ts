// Where a trust-anchor rotation by cross-signing stands, as data: pure in (cluster snapshots, pods, now).
import { unionBundle, type BundleAnchor } from './bundle.js';
import { RotationInputError } from './errors.js';
import type { ClusterPods } from './pods.js';
import type { CertificateInfo } from '../ca/index.js';
import {
  bundleHoldsNew,
  chainReach,
  crossCertificates,
  namesAnchor,
  recognizeNewAnchor,
  type ChainReach,
  type NewAnchorInput,
  type NewAnchorRef,
} from './rotation-anchors.js';
import {
  OFFLINE_DEFAULTS,
  combineBounds,
  oldLeafBound,
  recordBound,
  type OfflineAssumptions,
} from './rotation-bounds.js';
import { nextStep, type StepInputs } from './rotation-next.js';
import {
  proxyStanding,
  trustProblems,
  findEarlyRemovals,
  removedAnchorsWithValidLeaves,
} from './rotation-problems.js';
import type {
  ClusterPhase,
  ClusterRotationState,
  CrossExpiryWarning,
  IssuerStanding,
  RotationStatus,
  ServingStanding,
} from './rotation-types.js';
import type { ClusterSnapshot } from './sources.js';

export {
  OFFLINE_DEFAULTS,
  offlineWindowMs,
  type OfflineAssumptions,
  type OldLeafBasis,
} from './rotation-bounds.js';
export type {
  ClusterPhase,
  ClusterRotationState,
  CrossExpiryWarning,
  EarlyRemoval,
  IssuerStanding,
  NextStep,
  Precondition,
  ProxyStanding,
  RotationStatus,
  ServingStanding,
} from './rotation-types.js';

export interface RotationStatusOptions {
  /** the anchor being rolled in (default: the one the cross certificates name, else the newest anchor) */
  readonly newAnchor?: NewAnchorInput;
  readonly offline?: OfflineAssumptions;
  /** per cluster name, what its Kubernetes API said of its pods (absent: no --kubeconfig for it) */
  readonly pods?: Readonly<Record<string, ClusterPods>>;
  /** the files the next step's commands name (absent ones are reported as missing inputs) */
  readonly inputs?: StepInputs;
}

/** What rotationStatus derives per cluster before judging the mesh. */
export interface ClusterView {
  readonly snapshot: ClusterSnapshot;
  readonly reach: ChainReach;
  readonly state: ClusterRotationState;
  /** fingerprints of the anchors its chain reaches (old ones, and B's when its certificate is known) */
  readonly current: readonly string[];
}

/** Pure: the clusters' bundles, issuers, issuance records, file times and pods, at `now` → phases and the next step. */
export function rotationStatus(
  clusters: readonly ClusterSnapshot[],
  now: Date,
  options: RotationStatusOptions = {},
): RotationStatus {
  const offline = options.offline ?? OFFLINE_DEFAULTS;
  const union = unionBundle(clusters);
  const recognized = recognizeNewAnchor(
    union,
    clusters.map((c) => c.issuerChain),
    options.newAnchor,
  );
  if (recognized === 'unknown')
    throw new RotationInputError(
      'ERR_ROTATION_INPUT_INVALID',
      'the --new-anchor fingerprint names no anchor of any bundle (while B is in no bundle yet, give its directory or certificate file)',
      'new-anchor',
    );
  const newAnchor = typeof recognized === 'object' ? recognized : undefined;
  const oldAnchors = union.anchors.filter(
    (a) => newAnchor === undefined || !namesAnchor(a.certificate, newAnchor),
  );
  const t = now.getTime();
  const views = clusters.map((c) =>
    clusterView(c, { oldAnchors, newAnchor, now, offline, pods: options.pods }),
  );

  const problems = trustProblems(views, newAnchor, options.pods, now);
  if (recognized === 'ambiguous')
    problems.push('issuers serve cross certificates for different anchors: give --new-anchor');
  const allSwitched = views.every((v) => v.reach.reachesNew);
  const meshBound = combineBounds(
    views.map((v) => (v.state.oldLeavesValidUntil === null ? null : Date.parse(v.state.oldLeavesValidUntil))),
  );
  const meshUntil = allSwitched && newAnchor !== undefined ? meshBound : null;
  const removed = removedAnchorsWithValidLeaves(clusters, union, t, offline);
  const earlyRemovals = findEarlyRemovals(problems, {
    views,
    oldAnchors,
    removed,
    meshBound: allSwitched ? meshBound : null,
    t,
  });
  const recordGaps = clusters.flatMap((c) => {
    const r = recordBound(c, offline);
    return r !== undefined && r.until >= t
      ? [{ cluster: c.name, since: iso(r.since), until: iso(r.until) }]
      : [];
  });
  const steady =
    newAnchor === undefined || (oldAnchors.length === 0 && views.every((v) => !v.reach.servesCross));
  const next = nextStep({
    views,
    newAnchor,
    oldAnchors,
    meshUntil,
    t,
    problems,
    steady,
    offline,
    inputs: options.inputs ?? {},
  });
  return {
    now: now.toISOString(),
    phase: steady ? 'steady' : meshPhase(views, next.action),
    newAnchor:
      newAnchor === undefined
        ? null
        : { fingerprint: newAnchor.fingerprint, subject: newAnchor.subject, keyId: newAnchor.keyId },
    oldAnchors: oldAnchors.map((a) => ({ fingerprint: a.fingerprint, subject: a.subject })),
    clusters: views.map((v) => v.state),
    oldLeavesValidUntil: meshUntil === null ? null : iso(meshUntil),
    next,
    problems,
    earlyRemovals,
    warnings: crossExpiryWarnings(clusters, newAnchor, t),
    recordGaps,
  };
}

/** Warn this long before a cross certificate ends (and before a renewed issuer would outlive it). */
export const CROSS_WARN_MS = 30 * 24 * 3600_000;

function crossOf(c: ClusterSnapshot, newAnchor: NewAnchorRef | undefined): CertificateInfo | undefined {
  return newAnchor === undefined
    ? undefined
    : crossCertificates(c.issuerChain).find((x) => namesAnchor(x, newAnchor));
}

function crossExpiryWarnings(
  clusters: readonly ClusterSnapshot[],
  newAnchor: NewAnchorRef | undefined,
  t: number,
): CrossExpiryWarning[] {
  return clusters.flatMap((c) => {
    const cross = crossOf(c, newAnchor);
    const issuer = c.issuerChain[0];
    if (cross === undefined || issuer === undefined) return [];
    const lifetime = issuer.notAfter.getTime() - issuer.notBefore.getTime();
    const renewed = issuer.notAfter.getTime() + (2 * lifetime) / 3;
    const end = cross.notAfter.getTime();
    return end < renewed || end - t < CROSS_WARN_MS
      ? [
          {
            kind: 'cross-expires-soon' as const,
            cluster: c.name,
            crossNotAfter: iso(end),
            renewedIssuerNotAfter: iso(renewed),
          },
        ]
      : [];
  });
}

function clusterView(
  c: ClusterSnapshot,
  m: {
    oldAnchors: readonly BundleAnchor[];
    newAnchor: NewAnchorRef | undefined;
    now: Date;
    offline: OfflineAssumptions;
    pods: Readonly<Record<string, ClusterPods>> | undefined;
  },
): ClusterView {
  const reach = chainReach(c.issuerChain, m.oldAnchors, m.newAnchor, m.now);
  const newFp = reach.reachesNew ? (m.newAnchor?.fingerprint ?? m.newAnchor?.keyId) : undefined;
  const current = [...reach.oldAnchors, ...(newFp !== undefined ? [newFp] : [])];
  const issuer = issuerStanding(reach);
  const serving = servingStanding(c, m.oldAnchors, m.newAnchor, m.now);
  // Only a B-issuer has leaves of an earlier (A-) issuer to bound.
  const bound =
    reach.reachesNew && (m.oldAnchors.length > 0 || reach.servesCross)
      ? oldLeafBound(c, current, m.offline)
      : null;
  const bundleHasNew = m.newAnchor !== undefined && bundleHoldsNew(c.bundle, m.newAnchor);
  const oldAnchorsInBundle = m.oldAnchors
    .filter((a) => c.bundle.has(a.fingerprint))
    .map((a) => a.fingerprint);
  return {
    snapshot: c,
    reach,
    current,
    state: {
      name: c.name,
      kind: c.kind,
      phase: clusterPhase(issuer, bundleHasNew, oldAnchorsInBundle.length > 0),
      bundleHasNew,
      oldAnchorsInBundle,
      issuer,
      oldLeavesValidUntil: bound === null ? null : iso(bound.until),
      oldLeavesBasis: bound?.basis ?? null,
      crossNotAfter: crossOf(c, m.newAnchor)?.notAfter.toISOString() ?? null,
      oldLeavesPropagationMarginMs: bound !== null && c.kind === 'admin' ? m.offline.propagationMarginMs : 0,
      proxies: proxyStanding(m.pods?.[c.name], m.newAnchor),
      serving,
    },
  };
}

/** What the serving chain reaches, by the same per-anchor verifier as the issuer chain. */
function servingStanding(
  c: ClusterSnapshot,
  oldAnchors: readonly BundleAnchor[],
  newAnchor: NewAnchorRef | undefined,
  now: Date,
): ServingStanding {
  if (c.servingChain === null) return { kind: 'plaintext' };
  if (c.servingChain === undefined) return { kind: 'unknown' };
  const r = chainReach(c.servingChain, oldAnchors, newAnchor, now);
  return { kind: 'tls', oldAnchorsReached: r.oldAnchors, reachesNew: r.reachesNew };
}

function issuerStanding(reach: ChainReach): IssuerStanding {
  if (!reach.reachesNew)
    return reach.oldAnchors.length > 0
      ? { kind: 'old', oldAnchorsReached: reach.oldAnchors }
      : { kind: 'none', oldAnchorsReached: [] };
  return reach.servesCross
    ? { kind: 'new-with-cross', oldAnchorsReached: reach.oldAnchors }
    : { kind: 'new', oldAnchorsReached: [] };
}

function clusterPhase(issuer: IssuerStanding, hasNew: boolean, hasOld: boolean): ClusterPhase {
  if (issuer.kind === 'old' || issuer.kind === 'none') return { phase: 1, name: 'prepare' };
  if (!hasNew) return { phase: 2, name: 'switched' };
  if (hasOld) return { phase: 3, name: 'trusts-both' };
  return issuer.kind === 'new-with-cross' ? { phase: 5, name: 'old-dropped' } : { phase: 6, name: 'done' };
}

/** The mesh's phase: its least advanced cluster's, 4 while every cluster trusts both and the wait runs. */
function meshPhase(
  views: readonly ClusterView[],
  action: RotationStatus['next']['action'],
): RotationStatus['phase'] {
  const least = Math.min(...views.map((v) => v.state.phase.phase)) as 1 | 2 | 3 | 5 | 6;
  if (least === 3 && (action === 'wait-old-leaves' || action === 'drop-old-anchors')) return 4;
  return least;
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
