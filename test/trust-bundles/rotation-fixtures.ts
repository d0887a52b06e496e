// Two anchors A and B with subjects of their own, a cross certificate (B by A) and issuers under each,
// as cluster snapshots. Not a test file itself.
import { OID, TRUE, implicitPrim, octetString, seq } from '../../ca/der/index.js';
import { extension, signCertificate } from '../../ca/certificate-builder.js';
import { encodePem, parseCertificate, type CertificateInfo } from '../../ca/index.js';
import {
  createAnchorCertificate,
  createIssuerCertificate,
  keyIdentifier,
  randomSerial,
} from '../../ca/profiles.js';
import { createTrustBundle } from '../../trust-bundles/bundle.js';
import type { ClusterSnapshot } from '../../trust-bundles/sources.js';
import { HOUR } from '../support/clock.js';
import { testKey, type TestCa } from '../support/pki.js';

export const START = Date.parse('2030-01-01T00:00:00Z');
export const SKEW = 20_000;
export const LIFETIME = 24 * HOUR;

export async function anchor(cn: string, now: number): Promise<TestCa & { keyPem: string }> {
  const { signer, keyPem } = await testKey();
  return {
    signer,
    keyPem,
    cert: await createAnchorCertificate({ signer, now: new Date(now), commonName: cn }),
  };
}

export async function issuer(a: TestCa, cluster: string, now: number): Promise<TestCa & { keyPem: string }> {
  const { signer, keyPem } = await testKey();
  const cert = await createIssuerCertificate({
    anchor: a.cert,
    anchorSigner: a.signer,
    issuerPublicKeyDer: signer.publicKeyDer,
    now: new Date(now),
    cluster,
  });
  return { signer, keyPem, cert };
}

/** cross(B by A): B's subject, key and SKI; issuer A; CA:TRUE without pathLen; validity inside A's. */
export async function crossSign(a: TestCa, b: TestCa, notAfter?: Date): Promise<CertificateInfo> {
  const ski = keyIdentifier(b.cert.spki);
  const der = await signCertificate(a.signer, {
    serial: randomSerial(),
    issuer: a.cert.subjectDer,
    subject: b.cert.subjectDer,
    notBefore: b.cert.notBefore,
    notAfter: notAfter ?? new Date(Math.min(a.cert.notAfter.getTime(), b.cert.notAfter.getTime())),
    spki: b.cert.spki,
    extensions: [
      extension(OID.basicConstraints, true, seq(TRUE)),
      extension(OID.keyUsage, true, Buffer.from([0x03, 0x02, 0x01, 0x06])),
      extension(OID.subjectKeyIdentifier, false, octetString(ski)),
      extension(OID.authorityKeyIdentifier, false, seq(implicitPrim(0, keyIdentifier(a.cert.spki)))),
    ],
  });
  return parseCertificate(der);
}

export const pem = (...certs: CertificateInfo[]): string =>
  certs.map((c) => encodePem('CERTIFICATE', c.der)).join('');

export function adminCluster(
  name: string,
  o: {
    bundle: readonly CertificateInfo[];
    chain: readonly CertificateInfo[];
    loadedAt: number;
    /** the serving chain of serve --tls-cert (default null: plaintext; undefined: not reported) */
    serving?: readonly CertificateInfo[] | null | undefined;
  },
): ClusterSnapshot {
  const serving = 'serving' in o ? o.serving : null;
  return {
    name,
    source: `http://${name}:9990`,
    kind: 'admin',
    bundle: createTrustBundle(o.bundle),
    issuerChain: o.chain,
    issuedByAnchor: [],
    issuance: { credentialLoadedAt: new Date(o.loadedAt), leafLifetimeMs: LIFETIME, clockSkewMs: SKEW },
    ...(serving !== undefined ? { servingChain: serving } : {}),
  };
}

export function dirCluster(
  name: string,
  o: { bundle: readonly CertificateInfo[]; chain: readonly CertificateInfo[]; changedAt: number },
): ClusterSnapshot {
  return {
    name,
    source: `/srv/${name}`,
    kind: 'dir',
    bundle: createTrustBundle(o.bundle),
    issuerChain: o.chain,
    issuedByAnchor: undefined,
    issuance: undefined,
    bundlePath: `/srv/${name}/ca.crt`,
    issuerFilesChangedAt: new Date(o.changedAt),
  };
}

export interface RotationPki {
  A: TestCa & { keyPem: string };
  B: TestCa & { keyPem: string };
  cross: CertificateInfo;
  /** per cluster: its A-issuer and its B-issuer */
  oldIssuer: Record<string, TestCa & { keyPem: string }>;
  newIssuer: Record<string, TestCa & { keyPem: string }>;
}

export async function rotationPki(clusters: readonly string[] = ['east', 'west']): Promise<RotationPki> {
  const A = await anchor('anchor A', START - 100 * 24 * HOUR);
  const B = await anchor('anchor B', START - 2 * HOUR);
  const cross = await crossSign(A, B);
  const oldIssuer: RotationPki['oldIssuer'] = {};
  const newIssuer: RotationPki['newIssuer'] = {};
  for (const c of clusters) {
    oldIssuer[c] = await issuer(A, c, START - 48 * HOUR);
    newIssuer[c] = await issuer(B, c, START - HOUR);
  }
  return { A, B, cross, oldIssuer, newIssuer };
}
