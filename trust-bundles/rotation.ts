import { formatDuration } from '../ca/index.js';
import { createTrustBundle, normalizeFingerprint, type BundleAnchor } from './bundle.js';
import { short, trustPath } from './check.js';
import type { ClusterSnapshot } from './sources.js';

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
  /** the latest time a leaf this issuer signed under an old anchor can be valid; null = unknown */
  readonly oldLeavesValidUntil: string | null;
}

export interface RotationStatus {
  readonly now: string;
  readonly phase: RotationPhase;
  readonly newAnchor: { readonly fingerprint: string; readonly subject: string } | null;
  readonly oldAnchors: readonly { readonly fingerprint: string; readonly subject: string }[];
  readonly clusters: readonly ClusterRotationState[];
  /** mesh-wide: when the last leaf under an old anchor expires; null = unknown (offline sources) */
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
}

/** Pure: (clusters' bundles, issuers, issuance records, now) → phase and the next step. */
export function rotationStatus(
  clusters: readonly ClusterSnapshot[],
  now: Date,
  options: { newAnchor?: string } = {},
): RotationStatus {
  const union = createTrustBundle(clusters.flatMap((c) => c.bundle.anchors.map((a) => a.certificate)));
  const newAnchor = pickNewAnchor(union.anchors, options.newAnchor);
  const oldAnchors = union.anchors.filter((a) => a !== newAnchor);
  const problems: string[] = [];

  const states = clusters.map((c): ClusterRotationState => {
    const path = trustPath(c.issuerChain, union, now);
    const issuerAnchor = 'anchor' in path ? path.anchor.fingerprint : null;
    const issuerUnderNew = newAnchor !== undefined && issuerAnchor === newAnchor.fingerprint;
    return {
      name: c.name,
      bundleHasNew: newAnchor !== undefined && c.bundle.has(newAnchor.fingerprint),
      oldAnchorsInBundle: oldAnchors.filter((a) => c.bundle.has(a.fingerprint)).map((a) => a.fingerprint),
      issuerAnchor,
      issuerUnderNew,
      oldLeavesValidUntil: oldLeafBound(c, issuerUnderNew, oldAnchors),
    };
  });

  // Trust must hold now: every issuer's anchor in every bundle.
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
  const meshUntil = combineBounds(states.map((s) => s.oldLeavesValidUntil));
  // Removing an old anchor while leaves under it can still be valid breaks those handshakes.
  const removedEarly = oldAnchors.filter((a) => clusters.some((c) => !c.bundle.has(a.fingerprint)));
  if (removedEarly.length > 0 && (meshUntil === null || Date.parse(meshUntil) > now.getTime())) {
    const where = clusters
      .filter((c) => removedEarly.some((a) => !c.bundle.has(a.fingerprint)))
      .map((c) => c.name);
    problems.push(
      `old anchor ${removedEarly.map((a) => short(a.fingerprint)).join(', ')} was removed from the bundle of ${where.join(', ')} while leaves signed under it may be valid until ${meshUntil ?? 'an unknown time'}: those clusters refuse them`,
    );
  }
  for (const c of clusters) {
    for (const r of c.issuedByAnchor ?? []) {
      if (!union.has(r.anchorFingerprint) && Date.parse(r.latestNotAfter) > now.getTime()) {
        problems.push(
          `${c.name} issued leaves under anchor ${short(r.anchorFingerprint)}, valid until ${r.latestNotAfter}, but no bundle holds that anchor any more`,
        );
      }
    }
  }

  const base = {
    now: now.toISOString(),
    newAnchor:
      newAnchor === undefined ? null : { fingerprint: newAnchor.fingerprint, subject: newAnchor.subject },
    oldAnchors: oldAnchors.map((a) => ({ fingerprint: a.fingerprint, subject: a.subject })),
    clusters: states,
    oldLeavesValidUntil: oldAnchors.length === 0 ? null : meshUntil,
    problems,
  };
  const names = (pred: (s: ClusterRotationState) => boolean): string[] =>
    states.filter(pred).map((s) => s.name);

  if (oldAnchors.length === 0) {
    return {
      ...base,
      phase: 'steady',
      next: {
        action: problems.length > 0 ? 'repair' : 'none',
        clusters: [],
        safe: problems.length === 0,
        reason:
          problems.length > 0
            ? 'fix the problems listed'
            : 'one anchor, trusted everywhere: no rotation in progress',
      },
    };
  }
  const missingNew = names((s) => !s.bundleHasNew);
  const underOld = names((s) => !s.issuerUnderNew);
  const holdingOld = names((s) => s.oldAnchorsInBundle.length > 0);
  let phase: RotationPhase;
  let next: RotationStatus['next'];
  if (missingNew.length > 0) {
    phase = 0;
    next = {
      action: 'add-new-anchor',
      clusters: missingNew,
      safe: true,
      reason:
        'adding an anchor never breaks a handshake; every bundle must hold the new anchor before any issuer signs under it',
    };
  } else if (underOld.length > 0) {
    phase = 1;
    next = {
      action: 'reissue-issuers',
      clusters: underOld,
      safe: true,
      reason: 'every bundle holds the new anchor, so leaves from re-issued issuers are trusted everywhere',
    };
  } else if (meshUntil === null || Date.parse(meshUntil) > now.getTime()) {
    phase = 2;
    const waitUntil = meshUntil ?? undefined;
    next = {
      action: 'wait',
      clusters: holdingOld,
      safe: false,
      reason:
        meshUntil === null
          ? 'removing the old anchor is not safe: an offline source keeps no issuance record, so when the last leaf under the old anchor expires is unknown (point --cluster at the admin URLs)'
          : `removing the old anchor is not safe before ${meshUntil} (in ${formatDuration(Date.parse(meshUntil) - now.getTime())}): leaves signed under it are still valid`,
      ...(waitUntil !== undefined ? { waitUntil } : {}),
    };
  } else {
    phase = 3;
    next = {
      action: 'remove-old-anchors',
      clusters: holdingOld,
      safe: true,
      reason: `no leaf signed under the old anchor is valid any more (the last expired at ${meshUntil})`,
    };
  }
  if (problems.length > 0)
    next = { ...next, action: 'repair', safe: false, reason: `fix first: ${problems.join('; ')}` };
  return { ...base, phase, next };
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

/**
 * For an issuer already under the new anchor, when its last leaf under an old anchor expires (plus the
 * clock skew peers may have). When this process recorded such leaves, the latest of them: leaves of an
 * earlier process were issued earlier with the same lifetime. When it recorded none, it started after
 * the switch: every old leaf was issued before it loaded its credential, so none outlives
 * loadedAt + lifetime + skew. Unknown for offline sources. (Per process: point --cluster at each replica.)
 */
function oldLeafBound(
  c: ClusterSnapshot,
  issuerUnderNew: boolean,
  oldAnchors: readonly BundleAnchor[],
): string | null {
  if (!issuerUnderNew || c.issuance === undefined) return null;
  const skew = c.issuance.clockSkewMs;
  const recorded = (c.issuedByAnchor ?? [])
    .filter((r) => oldAnchors.some((a) => a.fingerprint === r.anchorFingerprint))
    .map((r) => Date.parse(r.latestNotAfter));
  const bound =
    recorded.length > 0
      ? Math.max(...recorded) + skew
      : c.issuance.credentialLoadedAt.getTime() + c.issuance.leafLifetimeMs + 2 * skew;
  return new Date(bound).toISOString();
}

function combineBounds(bounds: readonly (string | null)[]): string | null {
  if (bounds.some((b) => b === null)) return null;
  return bounds.length === 0
    ? null
    : new Date(Math.max(...bounds.map((b) => Date.parse(b as string)))).toISOString();
}
