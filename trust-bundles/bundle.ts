import { X509Certificate } from 'node:crypto';
import {
  CredentialError,
  decodePem,
  describeCertificate,
  encodePem,
  fingerprint,
  InvalidRequestError,
  parseCertificate,
  type CertificateInfo,
} from '../ca/index.js';

/** One trust anchor in a bundle. */
export interface BundleAnchor {
  readonly certificate: CertificateInfo;
  /** SHA-256 of the DER, upper-case hex pairs joined by ':' */
  readonly fingerprint: string;
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/**
 * An immutable set of trust anchors: CA certificates only, de-duplicated by SHA-256 of the DER, kept
 * in a deterministic order (notBefore, then fingerprint) so the same set always serialises to the same
 * bytes and a ConfigMap does not churn.
 */
export interface TrustBundle {
  readonly anchors: readonly BundleAnchor[];
  has(fingerprintOrPrefix: string): boolean;
  find(fingerprintOrPrefix: string): BundleAnchor | undefined;
  /** a bundle with these certificates added (duplicates are ignored) */
  add(certs: readonly CertificateInfo[]): TrustBundle;
  /** a bundle without the anchor with this fingerprint; ERR_USAGE-like error when absent */
  remove(fingerprintOrPrefix: string): TrustBundle;
  toPem(): string;
}

/** Every anchor of these clusters' bundles, as one bundle (de-duplicated, fixed order). */
export function unionBundle(clusters: readonly { readonly bundle: TrustBundle }[]): TrustBundle {
  return createTrustBundle(clusters.flatMap((c) => c.bundle.anchors.map((a) => a.certificate)));
}

export function createTrustBundle(certs: readonly CertificateInfo[]): TrustBundle {
  const byFp = new Map<string, BundleAnchor>();
  for (const c of certs) {
    if (!c.isCa) {
      throw new CredentialError(
        'ERR_NOT_CA',
        `${describeCertificate(c)} is not a CA certificate (basicConstraints CA:TRUE); only trust anchors belong in a bundle`,
      );
    }
    const fp = fingerprint(c.der);
    if (!byFp.has(fp)) {
      byFp.set(
        fp,
        Object.freeze({
          certificate: c,
          fingerprint: fp,
          subject: subjectOf(c),
          notBefore: c.notBefore,
          notAfter: c.notAfter,
        }),
      );
    }
  }
  const anchors = Object.freeze(
    [...byFp.values()].sort(
      (a, b) =>
        a.notBefore.getTime() - b.notBefore.getTime() ||
        (a.fingerprint < b.fingerprint ? -1 : a.fingerprint > b.fingerprint ? 1 : 0),
    ),
  );
  const find = (q: string): BundleAnchor | undefined => {
    const norm = normalizeFingerprint(q);
    // an empty or non-hex query names no anchor (an empty prefix would otherwise match every anchor)
    if (!/^[0-9A-F]{1,64}$/.test(norm)) return undefined;
    const matches = anchors.filter((a) => a.fingerprint.replaceAll(':', '').startsWith(norm));
    if (matches.length > 1)
      throw new InvalidRequestError(
        'ERR_INVALID_REQUEST',
        `fingerprint prefix "${q}" matches ${matches.length} anchors; give more of it`,
      );
    return matches[0];
  };
  return Object.freeze({
    anchors,
    has: (q: string) => find(q) !== undefined,
    find,
    add: (more: readonly CertificateInfo[]) =>
      createTrustBundle([...anchors.map((a) => a.certificate), ...more]),
    remove(q: string) {
      const hit = find(q);
      if (hit === undefined)
        throw new InvalidRequestError('ERR_INVALID_REQUEST', `no anchor with fingerprint ${q} in the bundle`);
      return createTrustBundle(anchors.filter((a) => a !== hit).map((a) => a.certificate));
    },
    toPem: () => anchors.map((a) => encodePem('CERTIFICATE', a.certificate.der)).join(''),
  });
}

/**
 * Strict bundle input: only CERTIFICATE blocks without PEM headers (a private key or any other block is
 * refused, never skipped), each a CA certificate; duplicates are folded. Empty input is refused.
 */
export function parseTrustBundle(text: string, what: string): TrustBundle {
  try {
    const blocks = decodePem(text);
    if (blocks.length === 0)
      throw new InvalidRequestError('ERR_PEM_MALFORMED', 'no PEM CERTIFICATE block found');
    const loadable = new Set<string>();
    const certs = blocks.map((b, i) => {
      if (b.label !== 'CERTIFICATE') {
        throw new InvalidRequestError(
          'ERR_PEM_UNEXPECTED_TYPE',
          `block ${i + 1} is "${b.label}"; a bundle holds only CERTIFICATE blocks`,
        );
      }
      const cert = parseCertificate(b.der);
      const key = b.der.toString('base64');
      if (!loadable.has(key)) checkLoadable(b.der, i);
      loadable.add(key);
      return cert;
    });
    return createTrustBundle(certs);
  } catch (err) {
    // Every refusal names the file (or endpoint) it came from, whichever layer raised it.
    if (err instanceof InvalidRequestError)
      throw new InvalidRequestError(err.code, `${what}: ${err.message}`, { cause: err });
    if (err instanceof CredentialError)
      throw new CredentialError(err.code, `${what}: ${err.message}`, { cause: err });
    throw err;
  }
}

/**
 * OpenSSL's full X.509 parser must load the certificate too. Our reader takes the fields it needs and
 * skips the rest (names, unknown extensions, the inner AlgorithmIdentifier), while a bundle goes to
 * consumers (OpenSSL, rustls, Go) that parse all of it: one anchor they cannot load would make them
 * refuse the whole ca.crt. (Found by `npm run fuzz -- --target bundle`.)
 */
function checkLoadable(der: Buffer, i: number): void {
  let loaded: X509Certificate | undefined;
  try {
    loaded = new X509Certificate(der);
  } catch {
    loaded = undefined;
  }
  // the same bytes: X509Certificate falls back to reading PEM text, which DER must not smuggle in
  if (loaded === undefined || !loaded.raw.equals(der))
    throw new CredentialError(
      'ERR_CERT_MALFORMED',
      `block ${i + 1} is not a certificate OpenSSL can load (malformed X.509 beyond the fields Lanyard reads)`,
    );
}

export function normalizeFingerprint(s: string): string {
  return s
    .replaceAll(':', '')
    .replace(/^sha256[:/=]?/i, '')
    .toUpperCase();
}

export function subjectOf(c: CertificateInfo): string {
  return c.subjectCommonName !== undefined ? `CN=${c.subjectCommonName}` : `serial ${c.serialHex}`;
}
