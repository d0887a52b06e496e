// The mesh as the dashboard draws it (GET /v1/mesh): pure, from the clusters' latest readings and now.
// Trust findings come from the mesh check (check.ts), the rotation from the rotation status (one
// adapter, rotationView), the timeline from the certificates and records the clusters reported.
import { unionBundle } from './bundle.js';
import { CHECK_DEFAULTS, checkMesh, trustPath, type Finding } from './check.js';
import type { ClusterReading, ClusterRead, MetricsSummary, ReadProblem } from './mesh-read.js';
import { rotationStatus } from './rotation.js';
import { meshTimeline, type TimelineItem } from './mesh-timeline.js';
import type { ClusterSnapshot } from './sources.js';

export type { TimelineItem } from './mesh-timeline.js';

export interface ClusterView {
  readonly name: string;
  /** pending: not read yet */
  readonly state: 'ok' | 'unreachable' | 'broken' | 'pending';
  readonly problem: ReadProblem | null;
  readonly reason: string | null;
  readonly readAt: string | null;
  readonly ready: boolean | null;
  readonly certificatesIssued: number | null;
  readonly issuer: { readonly subject: string; readonly serial: string; readonly notAfter: string } | null;
  readonly metrics: MetricsSummary | null;
  /** failed Certify calls / all Certify calls (null: no call yet, or no metrics) */
  readonly errorRatio: number | null;
}

export interface AnchorView {
  readonly fingerprint: string;
  readonly subject: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly warning: boolean;
  readonly expired: boolean;
}

/** One cell of the trust matrix: does `cluster`'s bundle hold `anchor`, does its issuer chain to it. */
export interface TrustCell {
  readonly cluster: string;
  readonly anchor: string;
  readonly inBundle: boolean;
  readonly issuerChains: boolean;
  /** what `lanyard check` would report about this pair (null: nothing) */
  readonly mismatch: string | null;
}

export interface RotationView {
  /** mesh-wide phase as the rotation status names it */
  readonly phase: string;
  readonly action: string;
  readonly reason: string;
  readonly waitUntil: string | null;
  /** the preconditions of the next step that do not hold (or cannot be established) now */
  readonly waitsFor: readonly string[];
  readonly clusters: readonly { readonly name: string; readonly summary: string }[];
  /** clusters left out because they could not be read */
  readonly unread: readonly string[];
}

export interface MeshView {
  readonly now: string;
  readonly warnings: { readonly issuerWarnMs: number; readonly anchorWarnMs: number };
  readonly clusters: readonly ClusterView[];
  readonly anchors: readonly AnchorView[];
  readonly matrix: readonly TrustCell[];
  /** the check's findings other than "ok" (read clusters only) */
  readonly findings: readonly Finding[];
  readonly rotation: RotationView | null;
  readonly timeline: readonly TimelineItem[];
}

export interface MeshViewOptions {
  readonly issuerWarnMs?: number;
  readonly anchorWarnMs?: number;
}

/** The mesh view of these clusters (in this order; undefined: not read yet) at `now`. */
export function buildMeshView(
  clusters: readonly { readonly name: string; readonly reading: ClusterReading | undefined }[],
  now: Date,
  options: MeshViewOptions = {},
): MeshView {
  const issuerWarnMs = options.issuerWarnMs ?? CHECK_DEFAULTS.issuerWarnMs;
  const anchorWarnMs = options.anchorWarnMs ?? Math.max(CHECK_DEFAULTS.anchorWarnMs, issuerWarnMs);
  const read = clusters.flatMap((c) => (c.reading?.state === 'ok' ? [c.reading] : []));
  const snapshots = read.map((r) => r.snapshot);
  const union = unionBundle(snapshots);
  const t = now.getTime();
  const anchors = union.anchors.map((a): AnchorView => ({
    fingerprint: a.fingerprint,
    subject: a.subject,
    notBefore: a.notBefore.toISOString(),
    notAfter: a.notAfter.toISOString(),
    warning: a.notAfter.getTime() - t < anchorWarnMs,
    expired: a.notAfter.getTime() <= t,
  }));
  const findings =
    snapshots.length === 0
      ? []
      : checkMesh(snapshots, now, { issuerWarnMs, anchorWarnMs }).findings.filter((f) => f.severity !== 'ok');
  return {
    now: now.toISOString(),
    warnings: { issuerWarnMs, anchorWarnMs },
    clusters: clusters.map((c) => clusterView(c.name, c.reading)),
    anchors,
    matrix: trustMatrix(snapshots, now),
    findings,
    rotation:
      snapshots.length === 0
        ? null
        : rotationView(
            snapshots,
            now,
            clusters.length - read.length === 0
              ? []
              : clusters.filter((c) => c.reading?.state !== 'ok').map((c) => c.name),
          ),
    timeline: meshTimeline(read, now, { issuerWarnMs, anchorWarnMs }),
  };
}

function clusterView(name: string, r: ClusterReading | undefined): ClusterView {
  const none = { ready: null, certificatesIssued: null, issuer: null, metrics: null, errorRatio: null };
  if (r === undefined)
    return { name, state: 'pending', problem: null, reason: 'not read yet', readAt: null, ...none };
  if (r.state !== 'ok')
    return { name, state: r.state, problem: r.problem, reason: r.reason, readAt: r.readAt, ...none };
  return {
    name,
    state: 'ok',
    problem: null,
    reason: null,
    readAt: r.readAt,
    ready: r.status.ready === true,
    certificatesIssued: typeof r.status.certificatesIssued === 'number' ? r.status.certificatesIssued : null,
    issuer: issuerOf(r),
    metrics: r.metrics,
    errorRatio:
      r.metrics === null || r.metrics.certifyCalls === 0
        ? null
        : r.metrics.certifyErrors / r.metrics.certifyCalls,
  };
}

function issuerOf(r: ClusterRead): ClusterView['issuer'] {
  const i = r.status.issuer;
  const cert = r.snapshot.issuerChain[0];
  if (i === null || i === undefined || cert === undefined) return null;
  return {
    subject: typeof i.subject === 'string' ? i.subject : '',
    serial: cert.serialHex,
    notAfter: cert.notAfter.toISOString(),
  };
}

/** Clusters × anchors of the union of their bundles, with what the check would report per pair. */
function trustMatrix(snapshots: readonly ClusterSnapshot[], now: Date): TrustCell[] {
  const union = unionBundle(snapshots);
  const issuerAnchors = snapshots.map((s) => {
    const p = trustPath(s.issuerChain, union, now);
    return 'anchor' in p ? p.anchor.fingerprint : null;
  });
  return snapshots.flatMap((s, i) =>
    union.anchors.map((a): TrustCell => {
      const inBundle = s.bundle.has(a.fingerprint);
      const issuerChains = issuerAnchors[i] === a.fingerprint;
      const refusedBy = snapshots.filter((p) => !p.bundle.has(a.fingerprint)).map((p) => p.name);
      const mismatch = !inBundle
        ? `missing from ${s.name}'s bundle while another cluster's bundle holds it`
        : issuerChains && refusedBy.length > 0
          ? `${s.name}'s issuer chains to it, but ${refusedBy.join(', ')} does not trust it`
          : null;
      return { cluster: s.name, anchor: a.fingerprint, inBundle, issuerChains, mismatch };
    }),
  );
}

const ISSUER_STANDING = {
  old: 'issuer under an old anchor',
  'new-with-cross': 'issuer under the new anchor, serving the cross certificate',
  new: 'issuer under the new anchor',
  none: 'issuer chains to no known anchor',
} as const;

/**
 * The one adapter to the rotation model: its status reduced to a phase, the next step, the
 * preconditions it waits for and one line per cluster. Only this function reads the model's shape.
 */
export function rotationView(
  snapshots: readonly ClusterSnapshot[],
  now: Date,
  unread: readonly string[],
): RotationView {
  const s = rotationStatus(snapshots, now);
  return {
    phase: s.phase === 'steady' ? 'steady' : `phase ${s.phase} of 6`,
    action: s.next.action,
    reason: s.next.reason,
    waitUntil: s.next.waitUntil ?? null,
    waitsFor: s.next.preconditions
      .filter((p) => p.holds !== true)
      .map((p) => `${p.kind}${p.holds === 'unknown' ? ' (cannot be established)' : ''}`),
    clusters: s.clusters.map((c) => ({
      name: c.name,
      summary:
        s.phase === 'steady'
          ? c.issuer.kind === 'none'
            ? ISSUER_STANDING.none
            : 'issuer chains to the one anchor'
          : `phase ${c.phase.phase} (${c.phase.name}): ${ISSUER_STANDING[c.issuer.kind]}; bundle ${c.bundleHasNew ? 'holds' : 'lacks'} the new anchor${c.oldAnchorsInBundle.length > 0 ? ` and holds ${c.oldAnchorsInBundle.length} old` : ''}`,
    })),
    unread,
  };
}
