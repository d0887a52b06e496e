import { formatDuration } from '../ca/index.js';
import { createTrustBundle, normalizeFingerprint, type BundleAnchor, type TrustBundle } from './bundle.js';
import { short, trustPath } from './check.js';
import {
  OFFLINE_DEFAULTS,
  combineBounds,
  oldLeafBound,
  recordBound,
  type OfflineAssumptions,
  type OldLeafBasis,
} from './rotation-bounds.js';
import type { ClusterSnapshot } from './sources.js';

export {
  OFFLINE_DEFAULTS,
  offlineWindowMs,
  type OfflineAssumptions,
  type OldLeafBasis,
} from './rotation-bounds.js';

/**
 * Where a trust-anchor rotation stands:
 * - `steady`: one anchor, every bundle holds it, every issuer chains to it (also: rotation complete);
 * - 0: a new anchor exists but not every bundle holds it yet;
 * - 1: every bundle holds the old and the new anchor;
 * - 2: every issuer has been re-issued under the new anchor; leaves signed under the old one may still be valid;
 * - 3: no leaf signed under an old anchor can still be valid anywhere: the old anchor may leave the bundles.
 */
export type RotationPhase = 'steady' | 0 | 1 | 2 | 3;

export type StepAction =
  'none' | 'add-new-anchor' | 'reissue-issuers' | 'wait' | 'remove-old-anchors' | 'repair';

export interface ClusterRotationState {
  readonly name: string;
  readonly bundleHasNew: boolean;
  /** fingerprints of old anchors still in this cluster's bundle */
  readonly oldAnchorsInBundle: readonly string[];
  /** the anchor this cluster's issuer chains to, or null when it chains to none known */
  readonly issuerAnchor: string | null;
  readonly issuerUnderNew: boolean;
  /**
   * the latest time a leaf this issuer signed under an anchor other than its current one can be valid
   * (skew included); null = unknown, or nothing old to bound (steady state)
   */
  readonly oldLeavesValidUntil: string | null;
  /** where oldLeavesValidUntil comes from; null when it is null */
  readonly oldLeavesBasis: OldLeafBasis | null;
}

/** An anchor that left some bundle while leaves signed under it may still be valid. */
export interface EarlyRemoval {
  readonly anchorFingerprint: string;
  /** clusters whose bundle lacks it */
  readonly clusters: readonly string[];
  /** when removing it would have been safe (no leaf under it valid any more); null = unknown */
  readonly safeAfter: string | null;
}

export interface RotationStatus {
  readonly now: string;
  readonly phase: RotationPhase;
  readonly newAnchor: { readonly fingerprint: string; readonly subject: string } | null;
  readonly oldAnchors: readonly { readonly fingerprint: string; readonly subject: string }[];
  readonly clusters: readonly ClusterRotationState[];
  /** mesh-wide: when the last leaf under an old anchor expires; null = unknown or no old anchor */
  readonly oldLeavesValidUntil: string | null;
  readonly next: {
    readonly action: StepAction;
    readonly clusters: readonly string[];
    readonly safe: boolean;
    readonly reason: string;
    readonly waitUntil?: string;
  };
  /** states that break trust somewhere now: rotate status exits 1 when there is any */
  readonly problems: readonly string[];
  /** the anchors behind the "removed too early" problems, with when their removal would have been safe */
  readonly earlyRemovals: readonly EarlyRemoval[];
  /**
   * Clusters whose issuance record does not reach back a whole leaf lifetime (an issuer that restarted
   * or re-loaded its credential recently, or an issuer directory changed recently): leaves signed before
   * `since` under an anchor that no bundle and no record names any more are invisible to this status,
   * and may be valid until `until`. Informational: the planner cannot know that such an anchor existed.
   */
  readonly recordGaps: readonly {
    readonly cluster: string;
    readonly since: string;
    readonly until: string;
  }[];
}

/** Pure: (clusters' bundles, issuers, issuance records, file times, now) → phase and the next step. */
export function rotationStatus(
  clusters: readonly ClusterSnapshot[],
  now: Date,
  options: { newAnchor?: string; offline?: OfflineAssumptions } = {},
): RotationStatus {
  const offline = options.offline ?? OFFLINE_DEFAULTS;
  const union = createTrustBundle(clusters.flatMap((c) => c.bundle.anchors.map((a) => a.certificate)));
  const newAnchor = pickNewAnchor(union.anchors, options.newAnchor);
  const oldAnchors = union.anchors.filter((a) => a !== newAnchor);
  const t = now.getTime();

  const paths = clusters.map((c) => {
    const path = trustPath(c.issuerChain, union, now);
    return 'anchor' in path ? path.anchor.fingerprint : null;
  });
  const bounds = clusters.map((c, i) => oldLeafBound(c, paths[i] ?? null, offline));
  const removedAnchors = removedAnchorsWithValidLeaves(clusters, union, t, offline);
  // Something old to bound: an old anchor in some bundle, or a removed one with leaves still valid.
  const anyOld = oldAnchors.length > 0 || removedAnchors.length > 0;

  const states = clusters.map((c, i): ClusterRotationState => {
    const issuerAnchor = paths[i] ?? null;
    const issuerUnderNew = newAnchor !== undefined && issuerAnchor === newAnchor.fingerprint;
    const bound = anyOld && issuerUnderNew ? (bounds[i] ?? null) : null;
    return {
      name: c.name,
      bundleHasNew: newAnchor !== undefined && c.bundle.has(newAnchor.fingerprint),
      oldAnchorsInBundle: oldAnchors.filter((a) => c.bundle.has(a.fingerprint)).map((a) => a.fingerprint),
      issuerAnchor,
      issuerUnderNew,
      oldLeavesValidUntil: bound === null ? null : new Date(bound.until).toISOString(),
      oldLeavesBasis: bound?.basis ?? null,
    };
  });

  const problems = trustProblems(states, clusters);
  // When the last leaf under any anchor other than an issuer's current one expires, mesh-wide: each
  // issuer's bound, whatever its current anchor (null, unknown, when any issuer's bound is unknown).
  const meshBound = combineBounds(bounds.map((b) => b?.until ?? null));
  const meshUntil = anyOld && states.every((s) => s.issuerUnderNew) ? meshBound : null;
  const earlyRemovals = findEarlyRemovals(problems, {
    clusters,
    oldAnchors,
    removedAnchors,
    paths,
    meshBound,
    t,
  });
  const recordGaps = clusters.flatMap((c) => {
    const r = recordBound(c, offline);
    return r !== undefined && r.until >= t
      ? [{ cluster: c.name, since: iso(r.since), until: iso(r.until) }]
      : [];
  });

  const base = {
    now: now.toISOString(),
    newAnchor:
      newAnchor === undefined ? null : { fingerprint: newAnchor.fingerprint, subject: newAnchor.subject },
    oldAnchors: oldAnchors.map((a) => ({ fingerprint: a.fingerprint, subject: a.subject })),
    clusters: states,
    oldLeavesValidUntil: oldAnchors.length === 0 ? null : meshUntil === null ? null : iso(meshUntil),
    problems,
    earlyRemovals,
    recordGaps,
  };
  if (oldAnchors.length === 0)
    return { ...base, phase: 'steady', next: steadyNext(problems, earlyRemovals, recordGaps) };
  const step = rotationStep(states, meshUntil, t);
  const next: RotationStatus['next'] =
    problems.length > 0
      ? { ...step.next, action: 'repair', safe: false, reason: `fix first: ${problems.join('; ')}` }
      : step.next;
  return { ...base, phase: step.phase, next };
}

/** Anchors no bundle holds any more but that an issuer's record shows leaves under, still valid. */
function removedAnchorsWithValidLeaves(
  clusters: readonly ClusterSnapshot[],
  union: TrustBundle,
  t: number,
  offline: OfflineAssumptions,
): string[] {
  return [
    ...new Set(
      clusters.flatMap((c) =>
        (c.issuedByAnchor ?? [])
          .filter(
            (r) =>
              !union.has(r.anchorFingerprint) &&
              Date.parse(r.latestNotAfter) + (c.issuance?.clockSkewMs ?? offline.clockSkewMs) >= t,
          )
          .map((r) => r.anchorFingerprint),
      ),
    ),
  ];
}

/** Trust must hold now: every issuer's anchor in every bundle. What breaks it, per cluster. */
function trustProblems(
  states: readonly ClusterRotationState[],
  clusters: readonly ClusterSnapshot[],
): string[] {
  const problems: string[] = [];
  for (const s of states) {
    if (s.issuerAnchor === null) {
      problems.push(`${s.name}: the issuer chains to no anchor of any bundle`);
      continue;
    }
    const lacking = clusters.filter((c) => !c.bundle.has(s.issuerAnchor as string)).map((c) => c.name);
    if (lacking.length > 0) {
      problems.push(
        `${s.name}'s issuer signs under anchor ${short(s.issuerAnchor)}, which the bundle of ${lacking.join(', ')} lacks: those clusters refuse ${s.name}'s new leaves`,
      );
    }
  }
  return problems;
}

/**
 * Removing an anchor while leaves under it can still be valid breaks those handshakes. This holds
 * for an old anchor some bundle still holds and for one that every bundle has dropped: an issuer's
 * record names it (a restarted issuer's record is empty, so every issuer's bound counts). Each such
 * removal is also added to `problems`.
 */
function findEarlyRemovals(
  problems: string[],
  m: {
    readonly clusters: readonly ClusterSnapshot[];
    readonly oldAnchors: readonly BundleAnchor[];
    readonly removedAnchors: readonly string[];
    /** each cluster's issuer anchor (null: none) */
    readonly paths: readonly (string | null)[];
    readonly meshBound: number | null;
    readonly t: number;
  },
): EarlyRemoval[] {
  const { clusters, meshBound } = m;
  const earlyRemovals: EarlyRemoval[] = [];
  const removedEarly: string[] = [];
  if (meshBound === null || meshBound >= m.t)
    removedEarly.push(
      ...m.oldAnchors
        .filter((a) => clusters.some((c) => !c.bundle.has(a.fingerprint)))
        .map((a) => a.fingerprint),
    );
  removedEarly.push(...m.removedAnchors);
  for (const fp of removedEarly) {
    // Issuers still signing under it are reported above; their bound is unknown (null).
    const safeAfter =
      meshBound === null || m.paths.some((p) => p === fp) ? null : new Date(meshBound).toISOString();
    const where = clusters.filter((c) => !c.bundle.has(fp)).map((c) => c.name);
    earlyRemovals.push({ anchorFingerprint: fp, clusters: where, safeAfter });
    problems.push(
      `anchor ${short(fp)} was removed from the bundle of ${where.join(', ')} while leaves signed under it may be valid until ${safeAfter ?? 'an unknown time'}: those clusters refuse them (put it back with "lanyard bundle add" until then)`,
    );
  }
  return earlyRemovals;
}

/** The next step with one anchor only: none, or repair what breaks trust. */
function steadyNext(
  problems: readonly string[],
  earlyRemovals: readonly EarlyRemoval[],
  recordGaps: RotationStatus['recordGaps'],
): RotationStatus['next'] {
  return {
    action: problems.length > 0 ? 'repair' : 'none',
    clusters: problems.length > 0 ? [...new Set(earlyRemovals.flatMap((r) => r.clusters))] : [],
    safe: problems.length === 0,
    reason:
      problems.length > 0
        ? `fix first: ${problems.join('; ')}`
        : recordGaps.length === 0
          ? 'one anchor, trusted everywhere: no rotation in progress'
          : `one anchor, trusted everywhere: no rotation in progress as far as the issuers' records go; ${recordGaps
              .map((g) => `${g.cluster}'s record starts at ${g.since}`)
              .join(
                ', ',
              )}, so if an anchor left the bundles recently, leaves signed under it before then may be valid until ${recordGaps
              .map((g) => g.until)
              .reduce((a, b) => (a > b ? a : b))} without showing here`,
  };
}

/** Phase 0 to 3 of a rotation in progress and its next step (before any repair comes first). */
function rotationStep(
  states: readonly ClusterRotationState[],
  meshUntil: number | null,
  t: number,
): { phase: RotationPhase; next: RotationStatus['next'] } {
  const names = (pred: (s: ClusterRotationState) => boolean): string[] =>
    states.filter(pred).map((s) => s.name);
  const missingNew = names((s) => !s.bundleHasNew);
  const underOld = names((s) => !s.issuerUnderNew);
  const holdingOld = names((s) => s.oldAnchorsInBundle.length > 0);
  if (missingNew.length > 0) {
    return {
      phase: 0,
      next: {
        action: 'add-new-anchor',
        clusters: missingNew,
        safe: true,
        reason:
          'adding an anchor never breaks a handshake; every bundle must hold the new anchor before any issuer signs under it',
      },
    };
  }
  if (underOld.length > 0) {
    return {
      phase: 1,
      next: {
        action: 'reissue-issuers',
        clusters: underOld,
        safe: true,
        reason: 'every bundle holds the new anchor, so leaves from re-issued issuers are trusted everywhere',
      },
    };
  }
  if (meshUntil === null || meshUntil >= t) {
    return {
      phase: 2,
      next: {
        action: 'wait',
        clusters: holdingOld,
        safe: false,
        reason:
          meshUntil === null
            ? `removing the old anchor is not safe: when the last leaf under it expires is unknown for ${names((s) => s.oldLeavesValidUntil === null).join(', ')}`
            : `removing the old anchor is not safe before ${iso(meshUntil)} (in ${formatDuration(meshUntil - t)}): leaves signed under it may still be valid`,
        ...(meshUntil !== null ? { waitUntil: iso(meshUntil) } : {}),
      },
    };
  }
  return {
    phase: 3,
    next: {
      action: 'remove-old-anchors',
      clusters: holdingOld,
      safe: true,
      reason: `no leaf signed under the old anchor is valid any more (the last expired by ${iso(meshUntil)})`,
    },
  };
}

function pickNewAnchor(
  anchors: readonly BundleAnchor[],
  wanted: string | undefined,
): BundleAnchor | undefined {
  if (wanted !== undefined) {
    const norm = normalizeFingerprint(wanted);
    return anchors.find((a) => a.fingerprint.replaceAll(':', '').startsWith(norm));
  }
  // The newest anchor (latest notBefore) is the one being rolled in.
  return anchors.reduce<BundleAnchor | undefined>(
    (best, a) => (best === undefined || a.notBefore.getTime() > best.notBefore.getTime() ? a : best),
    undefined,
  );
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
