// How long leaves signed under an anchor other than an issuer's current one can stay valid: from an
// issuer's issuance record, from when it loaded its credential, or from when its files last changed.
import { DEFAULTS } from '../ca/index.js';
import type { ClusterSnapshot } from './sources.js';

/** How a cluster's bound on its old leaves was obtained (see `oldLeafBound`). */
export type OldLeafBasis = 'issuance-record' | 'credential-loaded' | 'issuer-files-changed';

/**
 * What `rotate status` assumes of issuers read from a directory (they keep no issuance record): they
 * re-read their files every `pollIntervalMs`, sign leaves of at most `maxLeafLifetimeMs`, and
 * verifiers' clocks are within `clockSkewMs`. The defaults are `lanyard serve`'s.
 */
export interface OfflineAssumptions {
  readonly pollIntervalMs: number;
  readonly maxLeafLifetimeMs: number;
  readonly clockSkewMs: number;
  /**
   * admin sources (`--propagation-margin`): how much later than the replica read another replica of the
   * same cluster may have picked up the switched credential (kubelet Secret propagation is about a
   * minute), added to their bound. Point `--cluster` at each replica for a tight bound.
   */
  readonly propagationMarginMs: number;
}

export const OFFLINE_DEFAULTS: OfflineAssumptions = Object.freeze({
  /** `lanyard serve --poll-interval`'s default (issuer/config.ts SERVE_DEFAULTS) */
  pollIntervalMs: 2000,
  maxLeafLifetimeMs: DEFAULTS.leafLifetimeMs,
  clockSkewMs: DEFAULTS.clockSkewMs,
  /** kubelet's Secret sync period (1 min) + its cache TTL, rounded up */
  propagationMarginMs: 120_000,
});

/**
 * When the last leaf signed by an earlier issuer of this cluster (one under other anchors than the
 * current chain reaches: an A-issuer once the cluster switched to the B-issuer) stops being valid, skew
 * included; null = unknown. `current` lists the anchors the current chain reaches (null: none).
 * Online bounds read one replica: each adds `offline.propagationMarginMs` for the replicas that picked
 * up the switched credential (a Secret) later than it did.
 * - online, the chain reaching one anchor, with a record of leaves under others: the latest of them.
 *   Leaves of an earlier process were issued earlier with the same lifetime, so they expire earlier.
 * - online otherwise (nothing recorded under other anchors, or a chain that serves a cross certificate
 *   and so reaches the old anchor too, under which the record mixes old and new leaves): the process
 *   signed its old leaves before it loaded its current credential (the switch), and earlier processes
 *   stopped before that, so none outlives loadedAt + lifetime + 2 × skew. A restart or a replica that
 *   loaded later only moves the bound later, never earlier: nothing kept in memory is trusted beyond it.
 * - directory: the issuer picked up its current files at most one poll interval after they were last
 *   written (the later of the certificate's and the key's mtime and ctime), so no earlier leaf outlives
 *   that + poll + the longest leaf lifetime + 2 × skew. This assumes the running issuer accepted those
 *   files (its log and lanyard_credential_reloads_total{result="rejected"} say so).
 */
export function oldLeafBound(
  c: ClusterSnapshot,
  current: readonly string[] | null,
  offline: OfflineAssumptions,
): { until: number; basis: OldLeafBasis } | null {
  if (current === null || current.length === 0) return null;
  if (c.kind === 'admin' && c.issuance !== undefined && current.length === 1) {
    const recorded = (c.issuedByAnchor ?? [])
      .filter((r) => !current.includes(r.anchorFingerprint))
      .map((r) => Date.parse(r.latestNotAfter));
    if (recorded.length > 0)
      return {
        until: Math.max(...recorded) + c.issuance.clockSkewMs + offline.propagationMarginMs,
        basis: 'issuance-record',
      };
  }
  const r = recordBound(c, offline);
  return r === undefined ? null : { until: r.until, basis: r.basis };
}

/**
 * Where what a cluster's issuer can tell of its leaves starts, and how long a leaf signed just before
 * then can be valid: from when the issuer loaded its current credential (+ leaf lifetime + 2 × skew +
 * the propagation margin),
 * or for a directory from when its files last changed (+ poll + the longest leaf lifetime + 2 × skew).
 * undefined when neither time is known.
 */
export function recordBound(
  c: ClusterSnapshot,
  offline: OfflineAssumptions,
): { since: number; until: number; basis: 'credential-loaded' | 'issuer-files-changed' } | undefined {
  if (c.kind === 'dir') {
    if (c.issuerFilesChangedAt === undefined) return undefined;
    const since = c.issuerFilesChangedAt.getTime();
    return { since, until: since + offlineWindowMs(offline), basis: 'issuer-files-changed' };
  }
  if (c.issuance === undefined) return undefined;
  const since = c.issuance.credentialLoadedAt.getTime();
  return {
    since,
    until: since + c.issuance.leafLifetimeMs + 2 * c.issuance.clockSkewMs + offline.propagationMarginMs,
    basis: 'credential-loaded',
  };
}

/** How long after a directory issuer's files change a leaf it signed before then can be valid. */
export function offlineWindowMs(offline: OfflineAssumptions): number {
  return offline.pollIntervalMs + offline.maxLeafLifetimeMs + 2 * offline.clockSkewMs;
}

export function combineBounds(bounds: readonly (number | null)[]): number | null {
  if (bounds.length === 0 || bounds.some((b) => b === null)) return null;
  return Math.max(...(bounds as number[]));
}
