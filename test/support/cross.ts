// A rotation in progress, for tests: the old anchor A (testPki), a new anchor B with an issuer under
// it, and cross certificates of B signed by A, built with the DER writer (ca/certificate-builder.ts).
import { signCertificate } from '../../ca/certificate-builder.js';
import { OID, TRUE, implicitPrim, octetString, seq } from '../../ca/der/index.js';
import { encodePem, parseCertificate, type CertificateInfo } from '../../ca/index.js';
import {
  createAnchorCertificate,
  createIssuerCertificate,
  keyIdentifier,
  randomSerial,
  truncateToSeconds,
} from '../../ca/profiles.js';
import { extension } from '../../ca/certificate-builder.js';
import { testKey, testPki, type TestCa, type TestPki } from './pki.js';

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

export interface CrossPki {
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

const DAY = 86_400_000;

/** Anchor A (testPki), anchor B (its own subject) with an issuer, and cross certificates of B by A. */
export async function crossPki(now: Date): Promise<CrossPki> {
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
