// Which anchors an issuer chain reaches, and which anchor is being rolled in. The new anchor B may be in
// no bundle yet (phase 2): it is then known by the cross certificate the issuers serve (B's subject and
// key, signed by the old anchor A) or by `--new-anchor`.
import { createHash } from 'node:crypto';
import { createChainVerifier, fingerprint, isSelfIssued, type CertificateInfo } from '../ca/index.js';
import { normalizeFingerprint, subjectOf, type BundleAnchor, type TrustBundle } from './bundle.js';

/** The anchor being rolled in, as far as it is known. */
export interface NewAnchorRef {
  /** its subject, as bundles print it */
  readonly subject: string;
  readonly subjectDer: Buffer;
  readonly spki: Buffer;
  /** SHA-256 of its public key (hex), which names it when its certificate is unknown */
  readonly keyId: string;
  /** its self-signed certificate, when a bundle or `--new-anchor` holds it; null when only a cross certificate names it */
  readonly certificate: CertificateInfo | null;
  /** the fingerprint of `certificate` (null with it) */
  readonly fingerprint: string | null;
  /** how it was recognised */
  readonly from: 'option' | 'cross-certificate' | 'newest-anchor';
}

/** What `--new-anchor` gave: a fingerprint (or a prefix of one), or the anchor's certificate. */
export type NewAnchorInput =
  | { readonly kind: 'fingerprint'; readonly value: string }
  | { readonly kind: 'certificate'; readonly certificate: CertificateInfo };

export function keyIdOf(spki: Buffer): string {
  return createHash('sha256').update(spki).digest('hex');
}

/** Whether `c` carries the subject and key of `ref` (B's own certificate or a cross certificate for B). */
export function namesAnchor(c: CertificateInfo, ref: Pick<NewAnchorRef, 'subjectDer' | 'spki'>): boolean {
  return c.subjectDer.equals(ref.subjectDer) && c.spki.equals(ref.spki);
}

/** The certificates above the issuer in a served chain that are CA certificates issued by another CA. */
export function crossCertificates(chain: readonly CertificateInfo[]): CertificateInfo[] {
  return chain.slice(1).filter((c) => c.isCa && !isSelfIssued(c));
}

function refOf(c: CertificateInfo, from: NewAnchorRef['from'], fp: string | null): NewAnchorRef {
  return {
    subject: subjectOf(c),
    subjectDer: c.subjectDer,
    spki: c.spki,
    keyId: keyIdOf(c.spki),
    certificate: isSelfIssued(c) ? c : null,
    fingerprint: isSelfIssued(c) ? fp : null,
    from,
  };
}

/**
 * The anchor being rolled in: the one `--new-anchor` names; else the anchor the issuers' cross
 * certificates name (its certificate taken from a bundle when one holds it); else, with several anchors
 * in the bundles, the newest. undefined: none (one anchor, no cross certificate: steady), or
 * `ambiguous` when issuers serve cross certificates for different anchors, or `unknown` when
 * `--new-anchor` names nothing known.
 */
export function recognizeNewAnchor(
  union: TrustBundle,
  chains: readonly (readonly CertificateInfo[])[],
  wanted: NewAnchorInput | undefined,
): NewAnchorRef | 'ambiguous' | 'unknown' | undefined {
  const inBundle = (ref: NewAnchorRef): NewAnchorRef => {
    const a = union.anchors.find((x) => namesAnchor(x.certificate, ref) && isSelfIssued(x.certificate));
    return a === undefined ? ref : { ...refOf(a.certificate, ref.from, a.fingerprint) };
  };
  if (wanted?.kind === 'certificate') {
    const c = wanted.certificate;
    return inBundle(refOf(c, 'option', isSelfIssued(c) ? fingerprint(c.der) : null));
  }
  if (wanted?.kind === 'fingerprint') {
    const norm = normalizeFingerprint(wanted.value);
    const a = union.anchors.find((x) => x.fingerprint.replaceAll(':', '').startsWith(norm));
    return a === undefined ? 'unknown' : refOf(a.certificate, 'option', a.fingerprint);
  }
  const crosses = chains.flatMap((ch) => crossCertificates(ch));
  const first = crosses[0];
  if (first !== undefined) {
    if (crosses.some((c) => !namesAnchor(c, first))) return 'ambiguous';
    return inBundle(refOf(first, 'cross-certificate', null));
  }
  if (union.anchors.length < 2) return undefined;
  const newest = union.anchors.reduce<BundleAnchor | undefined>(
    (best, a) => (best === undefined || a.notBefore.getTime() > best.notBefore.getTime() ? a : best),
    undefined,
  );
  return newest === undefined ? undefined : refOf(newest.certificate, 'newest-anchor', newest.fingerprint);
}

/** What an issuer chain reaches: the old anchors (by fingerprint) and whether it reaches B. */
export interface ChainReach {
  readonly oldAnchors: readonly string[];
  readonly reachesNew: boolean;
  /** the chain serves a cross certificate for B */
  readonly servesCross: boolean;
}

/**
 * The anchors `chain` reaches, each tried alone with ca's chain verifier (which backtracks, so
 * [issuer_B, cross(B by A)] reaches A through the cross certificate and B directly). B counts as
 * reached when the chain verifies with B's certificate as the root, or, when B's certificate is unknown,
 * with a cross certificate for B taken as the root (B by subject and key). Judged at `now` moved into the
 * issuer's validity (expiry is reported apart).
 */
export function chainReach(
  chain: readonly CertificateInfo[],
  oldAnchors: readonly BundleAnchor[],
  newAnchor: NewAnchorRef | undefined,
  now: Date,
): ChainReach {
  const issuer = chain[0];
  const crosses =
    newAnchor === undefined ? [] : crossCertificates(chain).filter((c) => namesAnchor(c, newAnchor));
  if (issuer === undefined) return { oldAnchors: [], reachesNew: false, servesCross: false };
  const at = new Date(
    Math.min(Math.max(now.getTime(), issuer.notBefore.getTime()), issuer.notAfter.getTime()),
  );
  const reaches = (root: CertificateInfo): boolean => {
    try {
      createChainVerifier({ anchors: [root], intermediates: chain.slice(1) }).verify(issuer, at);
      return true;
    } catch {
      return false;
    }
  };
  const newRoots = newAnchor?.certificate != null ? [newAnchor.certificate] : crosses;
  return {
    oldAnchors: oldAnchors.filter((a) => reaches(a.certificate)).map((a) => a.fingerprint),
    reachesNew: newRoots.some((r) => reaches(r)),
    servesCross: crosses.length > 0,
  };
}

/** Whether a bundle holds B (its self-signed certificate, by subject and key). */
export function bundleHoldsNew(bundle: TrustBundle, ref: NewAnchorRef): boolean {
  return bundle.anchors.some((a) => isSelfIssued(a.certificate) && namesAnchor(a.certificate, ref));
}
