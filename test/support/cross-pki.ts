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
import { testKey } from './pki.js';

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
