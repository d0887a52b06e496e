// Rotations in progress, for tests: anchors as `lanyard anchor create` makes them (and as Lanyard made
// them before #13), an old anchor A, a new anchor B with an issuer under it, and cross certificates of
// B signed by A (createCrossCertificate, or built by hand with the DER writer).
import {
  createAnchorCertificate,
  createCrossCertificate,
  createIssuerCertificate,
  keyIdentifier,
  randomSerial,
  truncateToSeconds,
} from '../../ca/profiles.js';
import { extension, nameDer, signCertificate } from '../../ca/certificate-builder.js';
import { OID, implicitPrim, octetString, seq, TRUE } from '../../ca/der/index.js';
import { encodePem, parseCertificate, type CertificateInfo } from '../../ca/index.js';
import type { KeyAlgorithm, Signer } from '../../ca/keys/index.js';
import { DAY } from './clock.js';
import { testKey, testPki, type TestCa, type TestPki } from './pki.js';

export interface TestAnchor {
  readonly signer: Signer;
  readonly keyPem: string;
  readonly cert: CertificateInfo;
  readonly pem: string;
}

/** A new anchor as `lanyard anchor create` makes it. */
export async function testAnchor(o: {
  now: Date;
  lifetimeMs?: number;
  commonName?: string;
  key?: KeyAlgorithm;
}): Promise<TestAnchor> {
  const { signer, keyPem } = await testKey(o.key ?? 'p256');
  const cert = await createAnchorCertificate({
    signer,
    now: o.now,
    ...(o.lifetimeMs !== undefined ? { lifetimeMs: o.lifetimeMs } : {}),
    ...(o.commonName !== undefined ? { commonName: o.commonName } : {}),
  });
  return { signer, keyPem, cert, pem: encodePem('CERTIFICATE', cert.der) };
}

/**
 * An anchor as Lanyard made them before #13: subject CN only, so two of them share one subject (or
 * any subject given, to make an anchor that shares its name with another).
 * Self-signed, CA:TRUE, keyCertSign + cRLSign, SKI and AKI.
 */
export async function legacyAnchor(o: {
  now: Date;
  lifetimeMs: number;
  commonName?: string;
  /** this exact subject (a twin of another anchor: same name, another key) instead of the CN */
  subjectDer?: Buffer;
}): Promise<TestAnchor> {
  const { signer, keyPem } = await testKey('p256');
  const name = o.subjectDer ?? nameDer([['CN', o.commonName ?? 'root.linkerd.cluster.local']]);
  const ski = keyIdentifier(Buffer.from(signer.publicKeyDer));
  const der = await signCertificate(signer, {
    serial: randomSerial(),
    issuer: name,
    subject: name,
    notBefore: truncateToSeconds(new Date(o.now.getTime() - 20_000)),
    notAfter: truncateToSeconds(new Date(o.now.getTime() + o.lifetimeMs)),
    spki: Buffer.from(signer.publicKeyDer),
    extensions: [
      extension(OID.basicConstraints, true, seq(TRUE)),
      extension(OID.keyUsage, true, Buffer.from([0x03, 0x02, 0x01, 0x06])),
      extension(OID.subjectKeyIdentifier, false, octetString(ski)),
      extension(OID.authorityKeyIdentifier, false, seq(implicitPrim(0, ski))),
    ],
  });
  const cert = parseCertificate(der);
  return { signer, keyPem, cert, pem: encodePem('CERTIFICATE', der) };
}

export interface CrossPki {
  /** the old anchor */
  readonly a: TestAnchor;
  /** the new anchor */
  readonly b: TestAnchor;
  /** B's subject and key, issued by A */
  readonly cross: CertificateInfo;
  readonly crossPem: string;
  /** an issuer under B */
  readonly issuer: {
    readonly signer: Signer;
    readonly keyPem: string;
    readonly cert: CertificateInfo;
    readonly pem: string;
  };
}

/** Old anchor A, new anchor B, cross(B by A) and one issuer under B, valid at `now`. */
export async function crossPki(o: {
  now: Date;
  aLifetimeMs?: number;
  bLifetimeMs?: number;
  crossLifetimeMs?: number;
  issuerLifetimeMs?: number;
  cluster?: string;
}): Promise<CrossPki> {
  const a = await testAnchor({
    now: o.now,
    ...(o.aLifetimeMs !== undefined ? { lifetimeMs: o.aLifetimeMs } : {}),
  });
  const b = await testAnchor({
    now: o.now,
    ...(o.bLifetimeMs !== undefined ? { lifetimeMs: o.bLifetimeMs } : {}),
  });
  const cross = await createCrossCertificate({
    anchor: a.cert,
    anchorSigner: a.signer,
    subject: b.cert,
    now: o.now,
    ...(o.crossLifetimeMs !== undefined ? { lifetimeMs: o.crossLifetimeMs } : {}),
  });
  const { signer, keyPem } = await testKey('p256');
  const cert = await createIssuerCertificate({
    anchor: b.cert,
    anchorSigner: b.signer,
    issuerPublicKeyDer: Buffer.from(signer.publicKeyDer),
    now: o.now,
    cluster: o.cluster ?? 'east',
    ...(o.issuerLifetimeMs !== undefined ? { lifetimeMs: o.issuerLifetimeMs } : {}),
  });
  return {
    a,
    b,
    cross,
    crossPem: encodePem('CERTIFICATE', cross.der),
    issuer: { signer, keyPem, cert, pem: encodePem('CERTIFICATE', cert.der) },
  };
}

/** The rotation most tests share: A for 400 days, B for 800, an issuer under B for 90 (all from `now`). */
export function defaultCrossPki(now: Date): Promise<CrossPki> {
  return crossPki({ now, aLifetimeMs: 400 * DAY, bLifetimeMs: 800 * DAY, issuerLifetimeMs: 90 * DAY });
}

/**
 * A further cross certificate by createCrossCertificate: of `subject` (default: pki's B) signed by
 * `by` (default: pki's A) with `signer` (default: by's own key), at `now`.
 */
export function crossOf(
  pki: Pick<CrossPki, 'a' | 'b'>,
  o: {
    readonly now: Date;
    readonly by?: TestAnchor;
    readonly subject?: CertificateInfo;
    readonly signer?: Signer;
    readonly lifetimeMs?: number;
  },
): Promise<CertificateInfo> {
  const by = o.by ?? pki.a;
  return createCrossCertificate({
    anchor: by.cert,
    anchorSigner: o.signer ?? by.signer,
    subject: o.subject ?? pki.b.cert,
    now: o.now,
    ...(o.lifetimeMs !== undefined ? { lifetimeMs: o.lifetimeMs } : {}),
  });
}

/** keyCertSign + cRLSign */
const KEY_USAGE_CA = Buffer.from([0x03, 0x02, 0x01, 0x06]);

/**
 * A cross certificate: B's subject, key and SKI, issued and signed by `by` (AKI = its SKI), CA:TRUE
 * with no path length, keyUsage keyCertSign + cRLSign, valid from notBefore to notAfter.
 */
export async function crossCertificate(o: {
  readonly by: TestCa;
  readonly subject: CertificateInfo;
  readonly notBefore: Date;
  readonly notAfter: Date;
}): Promise<CertificateInfo> {
  const ski = o.subject.subjectKeyId ?? keyIdentifier(o.subject.spki);
  const aki = o.by.cert.subjectKeyId ?? keyIdentifier(o.by.cert.spki);
  const der = await signCertificate(o.by.signer, {
    serial: randomSerial(),
    issuer: o.by.cert.subjectDer,
    subject: o.subject.subjectDer,
    notBefore: truncateToSeconds(o.notBefore),
    notAfter: truncateToSeconds(o.notAfter),
    spki: o.subject.spki,
    extensions: [
      extension(OID.basicConstraints, true, seq(TRUE)),
      extension(OID.keyUsage, true, KEY_USAGE_CA),
      extension(OID.subjectKeyIdentifier, false, octetString(ski)),
      extension(OID.authorityKeyIdentifier, false, seq(implicitPrim(0, aki))),
    ],
  });
  return parseCertificate(der);
}

export interface TestPkiCross {
  /** the old generation: anchor A and its issuers */
  readonly old: TestPki;
  /** the new anchor B */
  readonly anchorB: TestCa;
  readonly anchorBPem: string;
  /** the issuer under B, as an issuer directory holds it */
  readonly issuerB: TestCa & { readonly certPem: string; readonly keyPem: string };
  /** B signed by A, PEM (a fresh one per call: each has its own serial) */
  cross(): Promise<{ readonly cert: CertificateInfo; readonly pem: string }>;
}

/** Anchor A (testPki), anchor B (its own subject) with an issuer, and cross certificates of B by A. */
export async function testPkiCross(now: Date): Promise<TestPkiCross> {
  const old = await testPki({ now });
  const b = await testKey();
  const anchorBCert = await createAnchorCertificate({ signer: b.signer, now, commonName: 'anchor-b' });
  const i = await testKey();
  const issuerCert = await createIssuerCertificate({
    anchor: anchorBCert,
    anchorSigner: b.signer,
    issuerPublicKeyDer: i.signer.publicKeyDer,
    now,
    cluster: 'east',
    lifetimeMs: 30 * DAY,
  });
  return {
    old,
    anchorB: { signer: b.signer, cert: anchorBCert },
    anchorBPem: encodePem('CERTIFICATE', anchorBCert.der),
    issuerB: {
      signer: i.signer,
      cert: issuerCert,
      certPem: encodePem('CERTIFICATE', issuerCert.der),
      keyPem: i.keyPem,
    },
    async cross() {
      const cert = await crossCertificate({
        by: old.anchor,
        subject: anchorBCert,
        notBefore: new Date(now.getTime() - 60_000),
        notAfter: new Date(Math.min(old.anchor.cert.notAfter.getTime(), anchorBCert.notAfter.getTime())),
      });
      return { cert, pem: encodePem('CERTIFICATE', cert.der) };
    },
  };
}
