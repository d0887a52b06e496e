import { createHash, randomBytes } from 'node:crypto';
import { describeCertificate, parseCertificate, type CertificateInfo } from './certificate.js';
import { signatureVerifies } from './chain.js';
import { OID } from './der/index.js';
import { TAG, children, expectTag, readBitStringBytes, readRoot } from './der/index.js';
import { implicitPrim, octetString, seq, smallInteger, tlv, TRUE } from './der/index.js';
import { CredentialError, UsageError } from './errors.js';
import { extension, nameDer, signCertificate } from './certificate-builder.js';
import { isDns1123Subdomain } from './identity.js';
import type { Signer } from './keys/index.js';

const HOUR = 3_600_000;

/** Profile defaults. Lifetimes in milliseconds. */
export const DEFAULTS = Object.freeze({
  anchorCommonName: 'root.linkerd.cluster.local',
  issuerCommonName: 'identity.linkerd.cluster.local',
  anchorLifetimeMs: 87_600 * HOUR,
  issuerLifetimeMs: 8_760 * HOUR,
  leafLifetimeMs: 24 * HOUR,
  /** notBefore is back-dated by this much so peers with slow clocks accept a new certificate */
  clockSkewMs: 20_000,
});

/** A random positive serial of 16 bytes (127 bits of entropy; top bit clear, first byte non-zero). */
let pool = Buffer.alloc(0);
let poolOffset = 0;

export function randomSerial(): Buffer {
  // One getrandom() per 256 serials instead of one per serial (≈ 6 µs saved per leaf).
  if (poolOffset + 16 > pool.length) {
    pool = randomBytes(4096);
    poolOffset = 0;
  }
  const b = Buffer.from(pool.subarray(poolOffset, poolOffset + 16));
  pool.fill(0, poolOffset, poolOffset + 16);
  poolOffset += 16;
  b[0] = (b[0] as number) & 0x7f || 0x40;
  return b;
}

/** Bytes of a keyIdentifier (a SHA-1). */
export const KEY_IDENTIFIER_BYTES = 20;

/** RFC 5280 method 1 key identifier: SHA-1 of the subjectPublicKey BIT STRING contents. */
export function keyIdentifier(spki: Buffer): Buffer {
  const bits = lastBitStringContent(spki);
  return createHash('sha1').update(bits).digest();
}

export interface AnchorProfile {
  readonly signer: Signer;
  readonly now: Date;
  readonly commonName?: string;
  readonly lifetimeMs?: number;
  readonly clockSkewMs?: number;
}

/**
 * Self-signed v3 trust anchor: BasicConstraints critical CA:TRUE (no pathLen), KeyUsage critical
 * keyCertSign + cRLSign, SubjectKeyIdentifier, AuthorityKeyIdentifier = its own SKI.
 */
export async function createAnchorCertificate(p: AnchorProfile): Promise<CertificateInfo> {
  const cn = p.commonName ?? DEFAULTS.anchorCommonName;
  checkCommonName(cn);
  const lifetimeMs = checkLifetime(p.now, p.lifetimeMs ?? DEFAULTS.anchorLifetimeMs, 'anchor lifetime');
  const notBefore = new Date(p.now.getTime() - (p.clockSkewMs ?? DEFAULTS.clockSkewMs));
  const ski = keyIdentifier(p.signer.publicKeyDer);
  // serialNumber (2.5.4.5) from the key: two anchors (two generations) never share a subject, so
  // verifiers that index roots by subject never confuse them
  const name = nameDer([
    ['CN', cn],
    ['serialNumber', anchorSerialNumber(ski)],
  ]);
  const der = await signCertificate(p.signer, {
    serial: randomSerial(),
    issuer: name,
    subject: name,
    notBefore: truncateToSeconds(notBefore),
    notAfter: truncateToSeconds(new Date(p.now.getTime() + lifetimeMs)),
    spki: p.signer.publicKeyDer,
    extensions: caExtensions(ski, ski, undefined),
  });
  return parseCertificate(der);
}

/** The serialNumber attribute of an anchor's subject: the first 16 hex digits (uppercase) of its SKI. */
export function anchorSerialNumber(ski: Buffer): string {
  return ski.subarray(0, 8).toString('hex').toUpperCase();
}

export interface CrossProfile {
  /** the anchor that signs (OLD) */
  readonly anchor: CertificateInfo;
  readonly anchorSigner: Signer;
  /** the anchor whose subject, key and SKI the cross certificate carries (NEW); its key is not needed */
  readonly subject: CertificateInfo;
  readonly now: Date;
  /** capped to the earlier of OLD's and NEW's notAfter (the default) */
  readonly lifetimeMs?: number;
  readonly clockSkewMs?: number;
}

/**
 * Cross certificate: NEW's subject (byte for byte), public key and SKI, issued by OLD (issuer = OLD's
 * subject, AKI = OLD's SKI): BasicConstraints critical CA:TRUE (no pathLen, so NEW's issuers stay
 * below it), KeyUsage critical keyCertSign + cRLSign, a random serial, validity inside OLD's.
 * Refuses NEW when it is not a self-signed CA (ERR_NOT_CA, ERR_ANCHOR_NOT_SELF_SIGNED), both with one
 * subject (ERR_CROSS_SAME_SUBJECT), an OLD or a NEW that has expired or is not yet valid
 * (ERR_CERT_EXPIRED, ERR_CERT_NOT_YET_VALID), an OLD whose pathLen leaves no room for the issuer and
 * the cross certificate below it (ERR_CROSS_PATHLEN), and a validity that would be empty (ERR_USAGE).
 * notAfter is the earliest of OLD's, NEW's and now + lifetimeMs.
 */
export async function createCrossCertificate(p: CrossProfile): Promise<CertificateInfo> {
  checkSigningAnchor(p.anchor, p.anchorSigner, p.now);
  const target = p.subject;
  if (!target.isCa)
    throw new CredentialError('ERR_NOT_CA', 'the anchor to cross-sign is not a CA certificate');
  if (!target.subjectDer.equals(target.issuerDer) || !signatureVerifies(target, target)) {
    throw new CredentialError(
      'ERR_ANCHOR_NOT_SELF_SIGNED',
      'the anchor to cross-sign is not self-signed, so it is not a trust anchor',
    );
  }
  if (target.subjectDer.equals(p.anchor.subjectDer)) {
    throw new CredentialError(
      'ERR_CROSS_SAME_SUBJECT',
      `both anchors have the subject ${describeCertificate(target)}; give the new anchor a subject of its own (lanyard anchor create)`,
    );
  }
  checkCrossTarget(target, p.now);
  checkCrossPathLen(p.anchor);
  const notAfter = truncateToSeconds(
    new Date(
      Math.min(
        p.anchor.notAfter.getTime(),
        target.notAfter.getTime(),
        p.lifetimeMs === undefined
          ? Infinity
          : p.now.getTime() + checkLifetime(p.now, p.lifetimeMs, 'cross certificate lifetime'),
      ),
    ),
  );
  const notBefore = truncateToSeconds(
    new Date(
      Math.max(p.now.getTime() - (p.clockSkewMs ?? DEFAULTS.clockSkewMs), p.anchor.notBefore.getTime()),
    ),
  );
  if (notAfter.getTime() <= notBefore.getTime())
    throw new UsageError('cross certificate lifetime is too short: it would end before it starts');
  const der = await signCertificate(p.anchorSigner, {
    serial: randomSerial(),
    issuer: p.anchor.subjectDer,
    subject: target.subjectDer,
    notBefore,
    notAfter,
    spki: target.spki,
    extensions: caExtensions(
      target.subjectKeyId ?? keyIdentifier(target.spki),
      p.anchor.subjectKeyId ?? keyIdentifier(p.anchor.spki),
      undefined,
    ),
  });
  return parseCertificate(der);
}

/** The anchor to cross-sign (NEW) is valid at `now`: a cross certificate for it would be dead. */
function checkCrossTarget(target: CertificateInfo, now: Date): void {
  if (now.getTime() >= target.notAfter.getTime()) {
    throw new CredentialError(
      'ERR_CERT_EXPIRED',
      `the anchor to cross-sign expired at ${target.notAfter.toISOString()}; create a new anchor`,
    );
  }
  if (now.getTime() < target.notBefore.getTime()) {
    throw new CredentialError(
      'ERR_CERT_NOT_YET_VALID',
      `the anchor to cross-sign is not valid before ${target.notBefore.toISOString()}`,
    );
  }
}

/**
 * A workload that trusts only OLD verifies [issuer, cross, OLD]: two CA certificates below OLD, so an
 * OLD with a pathLen below 2 (e.g. `step --profile root-ca`: pathlen 1) can never serve that path.
 */
export function checkCrossPathLen(anchor: CertificateInfo, below = 2): void {
  if (anchor.pathLen !== undefined && anchor.pathLen < below) {
    throw new CredentialError(
      'ERR_CROSS_PATHLEN',
      `${describeCertificate(anchor)} has pathLen ${anchor.pathLen}: the issuer and the cross certificate (${below} CA certificates) cannot sit below it`,
    );
  }
}

/** The anchor about to sign: a CA, keyed to `signer`, valid at `now`. */
function checkSigningAnchor(anchor: CertificateInfo, signer: Signer, now: Date): void {
  if (!anchor.isCa) throw new CredentialError('ERR_NOT_CA', 'the anchor certificate is not a CA');
  if (!anchor.spki.equals(signer.publicKeyDer)) {
    throw new CredentialError('ERR_KEY_MISMATCH', 'the anchor key does not match the anchor certificate');
  }
  if (now.getTime() > anchor.notAfter.getTime()) {
    throw new CredentialError(
      'ERR_CERT_EXPIRED',
      `the anchor expired at ${anchor.notAfter.toISOString()}; create a new anchor`,
    );
  }
  if (now.getTime() < anchor.notBefore.getTime()) {
    throw new CredentialError(
      'ERR_CERT_NOT_YET_VALID',
      `the anchor is not valid before ${anchor.notBefore.toISOString()}`,
    );
  }
}

export interface IssuerProfile {
  readonly anchor: CertificateInfo;
  readonly anchorSigner: Signer;
  /** the issuer's own public key (SPKI DER) */
  readonly issuerPublicKeyDer: Buffer;
  readonly now: Date;
  readonly cluster: string;
  readonly commonName?: string;
  /** capped to the anchor's notAfter */
  readonly lifetimeMs?: number;
  readonly clockSkewMs?: number;
  /** DNS suffixes for permitted dNSName subtrees */
  readonly permitDns?: readonly string[];
  /** a trust domain for a permitted URI subtree (spiffe://<td>/…) */
  readonly permitSpiffe?: string;
}

/**
 * Per-cluster intermediate: BasicConstraints critical CA:TRUE pathLen 0, KeyUsage critical
 * keyCertSign + cRLSign, SKI, AKI = the anchor's SKI, optional critical NameConstraints.
 */
export async function createIssuerCertificate(p: IssuerProfile): Promise<CertificateInfo> {
  const cn = p.commonName ?? DEFAULTS.issuerCommonName;
  checkCommonName(cn);
  checkSigningAnchor(p.anchor, p.anchorSigner, p.now);
  const lifetimeMs = checkLifetime(p.now, p.lifetimeMs ?? DEFAULTS.issuerLifetimeMs, 'issuer lifetime');
  const notAfter = new Date(Math.min(p.now.getTime() + lifetimeMs, p.anchor.notAfter.getTime()));
  const notBefore = new Date(
    Math.max(p.now.getTime() - (p.clockSkewMs ?? DEFAULTS.clockSkewMs), p.anchor.notBefore.getTime()),
  );
  const constraints = nameConstraintsDer(p.permitDns ?? [], p.permitSpiffe);
  const anchorSki = p.anchor.subjectKeyId ?? keyIdentifier(p.anchor.spki);
  const der = await signCertificate(p.anchorSigner, {
    serial: randomSerial(),
    // the anchor's subject exactly as it is encoded, so the issuer name matches it byte for byte
    issuer: p.anchor.subjectDer,
    subject: nameDer([
      ['CN', cn],
      ['OU', p.cluster],
    ]),
    notBefore: truncateToSeconds(notBefore),
    notAfter: truncateToSeconds(notAfter),
    spki: p.issuerPublicKeyDer,
    extensions: caExtensions(keyIdentifier(p.issuerPublicKeyDer), anchorSki, 0, constraints),
  });
  return parseCertificate(der);
}

/** keyCertSign + cRLSign: bits 5 and 6 of the KeyUsage BIT STRING (one unused bit) */
const KEY_USAGE_CA = Buffer.from([0x03, 0x02, 0x01, 0x06]);

/**
 * BasicConstraints critical CA:TRUE (pathLen when given), KeyUsage critical keyCertSign + cRLSign,
 * SKI, AKI (keyIdentifier only), then NameConstraints (critical) when given.
 */
function caExtensions(ski: Buffer, aki: Buffer, pathLen: number | undefined, constraints?: Buffer): Buffer[] {
  const basic = pathLen === undefined ? seq(TRUE) : seq(TRUE, smallInteger(pathLen));
  const exts = [
    extension(OID.basicConstraints, true, basic),
    extension(OID.keyUsage, true, KEY_USAGE_CA),
    extension(OID.subjectKeyIdentifier, false, octetString(ski)),
    extension(OID.authorityKeyIdentifier, false, seq(implicitPrim(0, aki))),
  ];
  if (constraints !== undefined) exts.push(extension(OID.nameConstraints, true, constraints));
  return exts;
}

/** NameConstraints with permitted subtrees only; undefined when nothing is constrained. */
export function nameConstraintsDer(
  permitDns: readonly string[],
  permitSpiffe: string | undefined,
): Buffer | undefined {
  const subtrees: Buffer[] = [];
  for (const d of permitDns) {
    const base = d.replace(/^\./, '');
    if (!isDns1123Subdomain(base)) throw UsageError.forOption('permitDns', `"${d}" is not a DNS name`);
    subtrees.push(seq(implicitPrim(2, Buffer.from(base, 'latin1'))));
  }
  if (permitSpiffe !== undefined) {
    if (!isDns1123Subdomain(permitSpiffe))
      throw UsageError.forOption('permitSpiffe', `"${permitSpiffe}" is not a trust domain name`);
    subtrees.push(seq(implicitPrim(6, Buffer.from(permitSpiffe, 'latin1'))));
  }
  if (subtrees.length === 0) return undefined;
  return seq(tlv(0xa0, ...subtrees));
}

function checkCommonName(cn: string): void {
  if (cn.length === 0 || cn.length > 64 || /\p{Cc}/u.test(cn)) {
    throw new UsageError('common name must be 1 to 64 printable characters');
  }
}

/** The last instant an X.509 time can express (GeneralizedTime 99991231235959Z). */
const MAX_NOT_AFTER_MS = Date.UTC(9999, 11, 31, 23, 59, 59);

function checkLifetime(now: Date, ms: number, what: string): number {
  if (!Number.isFinite(ms) || ms <= 0) throw new UsageError(`${what} must be positive`);
  if (now.getTime() + ms > MAX_NOT_AFTER_MS)
    throw new UsageError(`${what} ends after 9999-12-31, the last date a certificate can hold`);
  return ms;
}

/** X.509 times have whole seconds; rounding down keeps notAfter ≤ every cap computed in milliseconds. */
export function truncateToSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

function lastBitStringContent(spki: Buffer): Buffer {
  const [, bits] = children(readRoot(spki));
  return readBitStringBytes(expectTag(bits, TAG.BIT_STRING, 'subjectPublicKey'), 'subjectPublicKey');
}
