import type { AnchorIssuance, IssuedByApi } from '../trust-bundles/index.js';
import { type CertificateInfo, type IssuedLeaf } from '../ca/index.js';
import { fingerprint } from '../ca/index.js';

/** Per trust anchor: how many leaves were issued under it and the latest notAfter among them. */
export type { AnchorIssuance, IssuedByApi } from '../trust-bundles/index.js';

/** The API a leaf was issued by (the `api` label of the metrics). */
export type IssuanceApi = keyof IssuedByApi;

/**
 * What this issuer has handed out, per anchor. Rotation uses `latestNotAfter`: an old anchor may
 * leave the bundles only once no leaf signed under it can still be valid.
 */
export interface IssuanceLedger {
  /** one leaf signed under `anchor` by `api` (default Certify) */
  record(anchor: CertificateInfo, notAfter: Date, api?: IssuanceApi): void;
  readonly total: number;
  /** `total` split by API (a new object per read: read it to report, not per call) */
  byApi(): IssuedByApi;
  snapshot(): AnchorIssuance[];
}

/**
 * The issuance record as an observer of a use case (Certify, or CreateCertificate with `api`): the
 * composition root (main.ts) passes this as the certifier's onIssued, so the use case itself knows
 * nothing of the ledger.
 */
export function issuanceObserver(
  ledger: IssuanceLedger,
  api: IssuanceApi = 'Certify',
): (issued: { readonly leaf: Pick<IssuedLeaf, 'anchor' | 'notAfter'> }) => void {
  return ({ leaf }) => {
    ledger.record(leaf.anchor, leaf.notAfter, api);
  };
}

/** A ledger this process keeps itself: how many anchors it has seen, without building a snapshot. */
export interface LocalIssuanceLedger extends IssuanceLedger {
  /** the number of anchors with at least one leaf (only grows) */
  readonly anchors: number;
}

export function createIssuanceLedger(initial: readonly AnchorIssuance[] = []): LocalIssuanceLedger {
  const byAnchor = new Map<string, { issued: number; latest: number }>();
  const fpCache = new WeakMap<CertificateInfo, string>();
  for (const a of initial)
    byAnchor.set(a.anchorFingerprint, { issued: a.issued, latest: Date.parse(a.latestNotAfter) });
  let total = initial.reduce((n, a) => n + a.issued, 0);
  // the per-API split: one more counter bump per leaf, nothing allocated (`initial` counts as Certify)
  let istio = 0;
  return {
    record(anchor, notAfter, api) {
      let fp = fpCache.get(anchor);
      if (fp === undefined) fpCache.set(anchor, (fp = fingerprint(anchor.der)));
      const entry = byAnchor.get(fp);
      if (entry === undefined) byAnchor.set(fp, { issued: 1, latest: notAfter.getTime() });
      else {
        entry.issued++;
        entry.latest = Math.max(entry.latest, notAfter.getTime());
      }
      total++;
      if (api === 'CreateCertificate') istio++;
    },
    get total() {
      return total;
    },
    get anchors() {
      return byAnchor.size;
    },
    byApi: () => ({ Certify: total - istio, CreateCertificate: istio }),
    snapshot() {
      return [...byAnchor].map(([anchorFingerprint, e]) => ({
        anchorFingerprint,
        issued: e.issued,
        latestNotAfter: new Date(e.latest).toISOString(),
      }));
    },
  };
}
