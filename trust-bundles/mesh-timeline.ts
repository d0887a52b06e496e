// The moments the dashboard's timeline shows, from now to the furthest expiry: each anchor, each
// cluster's issuer and further served certificates (a cross certificate), the horizon of the leaves
// issued, and the renewal-hint moment. Pure.
import { unionBundle } from './bundle.js';
import type { ClusterRead } from './mesh-read.js';

export type TimelineKind = 'anchor' | 'issuer' | 'intermediate' | 'leaf-horizon' | 'renewal-hint';

export interface TimelineItem {
  /** stable within one view: "anchor:<fingerprint>", "issuer:<cluster>", … */
  readonly id: string;
  readonly kind: TimelineKind;
  /** null for anchors (shared by the clusters whose bundles hold them) */
  readonly cluster: string | null;
  readonly label: string;
  /** the moment (ISO) */
  readonly at: string;
  /** an expiry inside the warning window (not yet passed) */
  readonly warning: boolean;
  readonly expired: boolean;
  /** the cluster whose /v1/status this moment was read from (for an anchor: the first that holds it) */
  readonly source: string;
}

/** The timeline items of these read clusters, earliest first. */
export function meshTimeline(
  read: readonly ClusterRead[],
  now: Date,
  o: { readonly issuerWarnMs: number; readonly anchorWarnMs: number },
): TimelineItem[] {
  const t = now.getTime();
  const expiry = (at: Date, warnMs: number): Pick<TimelineItem, 'at' | 'warning' | 'expired'> => ({
    at: at.toISOString(),
    warning: at.getTime() > t && at.getTime() - t < warnMs,
    expired: at.getTime() <= t,
  });
  const items: TimelineItem[] = [];
  const union = unionBundle(read.map((r) => r.snapshot));
  for (const a of union.anchors) {
    const holders = read.filter((r) => r.snapshot.bundle.has(a.fingerprint)).map((r) => r.name);
    items.push({
      id: `anchor:${a.fingerprint}`,
      kind: 'anchor',
      cluster: null,
      label: `anchor ${a.subject} (${a.fingerprint.slice(0, 11)})`,
      ...expiry(a.notAfter, o.anchorWarnMs),
      source: holders[0] ?? '',
    });
  }
  for (const r of read) items.push(...clusterItems(r, t, expiry, o.issuerWarnMs));
  return items.sort((a, b) => Date.parse(a.at) - Date.parse(b.at) || a.id.localeCompare(b.id));
}

function clusterItems(
  r: ClusterRead,
  t: number,
  expiry: (at: Date, warnMs: number) => Pick<TimelineItem, 'at' | 'warning' | 'expired'>,
  issuerWarnMs: number,
): TimelineItem[] {
  const items: TimelineItem[] = [];
  const [issuer, ...rest] = r.snapshot.issuerChain;
  if (issuer !== undefined)
    items.push({
      id: `issuer:${r.name}`,
      kind: 'issuer',
      cluster: r.name,
      label: `issuer of ${r.name} (serial ${issuer.serialHex.slice(0, 12)})`,
      ...expiry(issuer.notAfter, issuerWarnMs),
      source: r.name,
    });
  for (const [i, c] of rest.entries())
    items.push({
      id: `intermediate:${r.name}:${i}`,
      kind: 'intermediate',
      cluster: r.name,
      label: `certificate served after ${r.name}'s issuer (cross certificate, serial ${c.serialHex.slice(0, 12)})`,
      ...expiry(c.notAfter, issuerWarnMs),
      source: r.name,
    });
  const horizon = leafHorizon(r, t);
  if (horizon !== undefined)
    items.push({
      id: `leaf-horizon:${r.name}`,
      kind: 'leaf-horizon',
      cluster: r.name,
      label: horizon.label,
      at: new Date(horizon.at).toISOString(),
      warning: false,
      expired: false,
      source: r.name,
    });
  const hint = r.status.renewalHint as { after?: unknown } | null | undefined;
  const after = typeof hint?.after === 'string' ? Date.parse(hint.after) : NaN;
  if (!Number.isNaN(after))
    items.push({
      id: `renewal-hint:${r.name}`,
      kind: 'renewal-hint',
      cluster: r.name,
      label: `renewal hint of ${r.name}: proxies renew from then on`,
      at: new Date(after).toISOString(),
      warning: false,
      expired: false,
      source: r.name,
    });
  return items;
}

/**
 * The latest moment a leaf of this cluster can be valid: the latest notAfter it signed, or (nothing
 * signed yet) the notAfter of a leaf signed now, capped at the issuer's.
 */
function leafHorizon(r: ClusterRead, t: number): { at: number; label: string } | undefined {
  const latest = (r.snapshot.issuedByAnchor ?? [])
    .map((x) => Date.parse(x.latestNotAfter))
    .filter((x) => !Number.isNaN(x));
  if (latest.length > 0)
    return { at: Math.max(...latest), label: `latest expiry of the leaves ${r.name} issued` };
  const lifetime = r.status.leafLifetimeMs;
  const issuer = r.snapshot.issuerChain[0];
  if (typeof lifetime !== 'number' || issuer === undefined) return undefined;
  return {
    at: Math.min(t + lifetime, issuer.notAfter.getTime()),
    label: `expiry of a leaf ${r.name} would issue now (none issued yet)`,
  };
}
