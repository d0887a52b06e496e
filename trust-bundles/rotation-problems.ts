// What breaks trust now during a rotation: an issuer whose chain reaches no anchor a peer's bundle (or a
// running proxy) trusts, and an old anchor removed while an A-issuer's leaves may still be valid.
import { fingerprint, type CertificateInfo } from '../ca/index.js';
import { createTrustBundle, type BundleAnchor, type TrustBundle } from './bundle.js';
import { short } from './check.js';
import type { ClusterPods, PodRef, ProxyPod } from './pods.js';
import { bundleHoldsNew, chainReach, namesAnchor, type NewAnchorRef } from './rotation-anchors.js';
import type { OfflineAssumptions } from './rotation-bounds.js';
import type { ClusterView } from './rotation.js';
import type { EarlyRemoval, ProxyStanding } from './rotation-types.js';
import type { ClusterSnapshot } from './sources.js';

const ref = (p: ProxyPod): PodRef => ({ cluster: p.cluster, namespace: p.namespace, name: p.name });

export function proxyStanding(
  pods: ClusterPods | undefined,
  newAnchor: NewAnchorRef | undefined,
): ProxyStanding {
  if (pods === undefined) return { kind: 'not-given' };
  if (pods.kind === 'unavailable') return { kind: 'unavailable', code: pods.code };
  return {
    kind: 'listed',
    proxies: pods.pods.length,
    onlyOld:
      newAnchor === undefined
        ? []
        : pods.pods
            .filter((p) => p.anchors !== 'unknown' && !p.anchors.some((a) => namesAnchor(a, newAnchor)))
            .map(ref),
    unknown: pods.pods.filter((p) => p.anchors === 'unknown').map(ref),
  };
}

/** Whether `v`'s chain reaches an anchor among `anchors` (fingerprints) or B when `trustsNew`. */
function reachesAny(v: ClusterView, fps: ReadonlySet<string>, trustsNew: boolean): boolean {
  return v.reach.oldAnchors.some((fp) => fps.has(fp)) || (trustsNew && v.reach.reachesNew);
}

/** Trust must hold now: each issuer's chain reaches an anchor of every bundle and of every listed proxy. */
export function trustProblems(
  views: readonly ClusterView[],
  newAnchor: NewAnchorRef | undefined,
  pods: Readonly<Record<string, ClusterPods>> | undefined,
  now: Date,
): string[] {
  const problems: string[] = [];
  const memo = new Map<string, boolean>();
  for (const v of views) servingProblems(v, pods?.[v.snapshot.name], newAnchor, now, problems);
  for (const v of views) {
    const name = v.snapshot.name;
    if (!v.reach.reachesNew && v.reach.oldAnchors.length === 0) {
      problems.push(`${name}: the issuer chains to no anchor of any bundle`);
      continue;
    }
    const lacking = views
      .filter(
        (p) =>
          !reachesAny(v, new Set(p.snapshot.bundle.anchors.map((a) => a.fingerprint)), p.state.bundleHasNew),
      )
      .map((p) => p.snapshot.name);
    if (lacking.length > 0)
      problems.push(
        `${name}'s issuer chain reaches no anchor of the bundle of ${lacking.join(', ')}: those clusters refuse ${name}'s new leaves`,
      );
    for (const p of views) {
      const listed = pods?.[p.snapshot.name];
      if (listed?.kind !== 'listed') continue;
      const refusing = listed.pods.filter(
        (pod) =>
          pod.anchors !== 'unknown' &&
          !chainReachesOneOf(v.snapshot.issuerChain, pod.anchors, newAnchor, now, memo, name),
      );
      if (refusing.length > 0)
        problems.push(
          `${refusing.length} running proxies of ${p.snapshot.name} trust no anchor ${name}'s issuer chain reaches (e.g. ${refusing[0]?.namespace}/${refusing[0]?.name}): they refuse ${name}'s new leaves`,
        );
    }
  }
  return problems;
}

/**
 * The identity service's own serving chain (serve --tls-cert) is verified by the pods of its cluster: it
 * must reach an anchor of the cluster's bundle (pods started now) and of every listed running proxy.
 */
function servingProblems(
  v: ClusterView,
  listed: ClusterPods | undefined,
  newAnchor: NewAnchorRef | undefined,
  now: Date,
  problems: string[],
): void {
  const s = v.state.serving;
  const chain = v.snapshot.servingChain;
  if (s.kind !== 'tls' || chain == null) return;
  const name = v.snapshot.name;
  const reachesBundle =
    s.oldAnchorsReached.some((fp) => v.snapshot.bundle.has(fp)) || (s.reachesNew && v.state.bundleHasNew);
  if (!reachesBundle)
    problems.push(
      `${name}: the identity service's serving chain reaches no anchor of its bundle: pods started now cannot get a certificate`,
    );
  if (listed?.kind !== 'listed') return;
  const memo = new Map<string, boolean>();
  const refusing = listed.pods.filter(
    (pod) =>
      pod.anchors !== 'unknown' &&
      !chainReachesOneOf(chain, pod.anchors, newAnchor, now, memo, `${name}/serving`),
  );
  if (refusing.length > 0)
    problems.push(
      `${refusing.length} running proxies of ${name} trust no anchor its identity service's serving chain reaches (e.g. ${refusing[0]?.namespace}/${refusing[0]?.name}): they cannot renew their certificate`,
    );
}

/** Whether `chain` reaches one of a proxy's anchors (memoized per chain name and anchor set). */
function chainReachesOneOf(
  chain: readonly CertificateInfo[],
  anchors: readonly CertificateInfo[],
  newAnchor: NewAnchorRef | undefined,
  now: Date,
  memo: Map<string, boolean>,
  chainName: string,
): boolean {
  const key = `${chainName}|${anchors.map((a) => fingerprint(a.der)).join(',')}`;
  const known = memo.get(key);
  if (known !== undefined) return known;
  let ok = false;
  try {
    const bundle = createTrustBundle(anchors);
    const reach = chainReach(chain, bundle.anchors, newAnchor, now);
    ok =
      reach.oldAnchors.length > 0 ||
      (reach.reachesNew && newAnchor !== undefined && bundleHoldsNew(bundle, newAnchor));
  } catch {
    ok = false;
  }
  memo.set(key, ok);
  return ok;
}

/** Anchors no bundle holds any more but under which an issuer's record shows leaves still valid. */
export function removedAnchorsWithValidLeaves(
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

/**
 * Removing an old anchor while an A-issuer's leaves can still be valid breaks those handshakes: an old
 * anchor some bundle lacks before the mesh bound has passed (or while some issuer is not switched, or
 * the bound is unknown), and one every bundle dropped that an issuer's record still names. Each is added
 * to `problems`.
 */
export function findEarlyRemovals(
  problems: string[],
  m: {
    readonly views: readonly ClusterView[];
    readonly oldAnchors: readonly BundleAnchor[];
    readonly removed: readonly string[];
    /** null: unknown, or not every issuer switched */
    readonly meshBound: number | null;
    readonly t: number;
  },
): EarlyRemoval[] {
  const { views, meshBound } = m;
  const early =
    meshBound === null || meshBound >= m.t
      ? m.oldAnchors
          .filter((a) => views.some((v) => !v.snapshot.bundle.has(a.fingerprint)))
          .map((a) => a.fingerprint)
      : [];
  const removals: EarlyRemoval[] = [];
  for (const fp of [...early, ...m.removed]) {
    const stillSigning = views.some((v) => v.state.issuer.kind === 'old' && v.reach.oldAnchors.includes(fp));
    const safeAfter = meshBound === null || stillSigning ? null : new Date(meshBound).toISOString();
    const where = views.filter((v) => !v.snapshot.bundle.has(fp)).map((v) => v.snapshot.name);
    removals.push({ anchorFingerprint: fp, clusters: where, safeAfter });
    problems.push(
      `anchor ${short(fp)} was removed from the bundle of ${where.join(', ')} while leaves of an issuer under it may be valid until ${safeAfter ?? 'an unknown time'}: those clusters refuse them (put it back with "lanyard bundle add" until then)`,
    );
  }
  // A left every bundle (it is known only as the cross certificates' issuer). Admin sources are judged by
  // their records above (a restart moves their loaded-at bound, not their leaves); directories by when
  // their issuer files changed, which a restart does not move.
  const dirsStillBound = views.filter((v) => {
    const until = v.state.oldLeavesValidUntil;
    return v.snapshot.kind === 'dir' && v.reach.servesCross && (until === null || Date.parse(until) >= m.t);
  });
  const crossIssuerGone = m.oldAnchors.length === 0 && m.removed.length === 0 && dirsStillBound.length > 0;
  if (crossIssuerGone) {
    const safeAfter = meshBound === null ? null : new Date(meshBound).toISOString();
    const where = views.map((v) => v.snapshot.name);
    removals.push({ anchorFingerprint: null, clusters: where, safeAfter });
    problems.push(
      `the old anchor (the issuer of the cross certificates) left every bundle while leaves of an issuer under it may be valid until ${safeAfter ?? 'an unknown time'}: put it back with "lanyard bundle add" until then`,
    );
  }
  return removals;
}
