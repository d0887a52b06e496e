// Shared fixtures for the trust-bundle tests: real anchors from testPki(), non-CA certificates and
// hand-made bad PEM. Not a test file itself (the runner only picks up *.test.ts).
import assert from 'node:assert/strict';
import {
  DEFAULT_IDENTITY_DOMAIN,
  DEFAULT_LEAF_POLICY,
  encodePem,
  workloadIdentity,
  type CertificateInfo,
} from '../../ca/index.js';
import { createKeyObjectSigner, generateKey } from '../../ca/keys/index.js';
import { issueForCsr } from '../../ca/credential.js';
import { parseCsr } from '../../ca/csr.js';
import { createTestCertificate, makeCsr, testPki, type TestPki } from '../support/pki.js';

export const NOW = new Date('2026-06-01T00:00:00Z');
export const DAY_MS = 86_400_000;

/** "AB:CD:…" with 32 upper-case hex pairs */
export const FINGERPRINT_FORMAT = /^[0-9A-F]{2}(?::[0-9A-F]{2}){31}$/;

export function certPem(c: CertificateInfo | Uint8Array): string {
  return encodePem('CERTIFICATE', c instanceof Uint8Array ? c : c.der);
}

export function eastIssuer(pki: TestPki): NonNullable<TestPki['issuers'][string]> {
  const issuer = pki.issuers.east;
  assert.ok(issuer);
  return issuer;
}

/** A workload leaf (CA:FALSE) issued the production way: CSR → issueForCsr. */
export async function issuedLeafDer(pki: TestPki): Promise<Buffer> {
  const identity = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'web' });
  const { der } = await makeCsr({ dns: [identity.dns] });
  const leaf = issueForCsr(eastIssuer(pki).credential, {
    csr: parseCsr(der),
    identity,
    policy: DEFAULT_LEAF_POLICY,
    // inside the issuer's validity whenever the test PKI was made
    now: new Date(eastIssuer(pki).cert.notBefore.getTime() + 60_000),
  });
  return leaf.der;
}

/** A certificate with BasicConstraints CA:FALSE signed by the anchor (built by @peculiar/x509). */
export async function nonCaCertificate(pki: TestPki): Promise<CertificateInfo> {
  return createTestCertificate({
    issuer: pki.anchor,
    subjectSigner: createKeyObjectSigner(await generateKey('p256')),
    commonName: 'not-a-ca',
    notBefore: NOW,
    notAfter: new Date(NOW.getTime() + DAY_MS),
    isCa: false,
  });
}

/** A CERTIFICATE block with RFC 1421 headers, as an encrypting tool would write it. */
export function withPemHeaders(pem: string): string {
  return pem.replace(
    '-----BEGIN CERTIFICATE-----\n',
    '-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n',
  );
}

/** The PEM of the issuer's private key (a real PKCS#8 PRIVATE KEY block). */
export function privateKeyPem(pki: TestPki): string {
  return eastIssuer(pki).keyPem;
}

/** Distinct anchors made at different times (notBefore differs) from independent test PKIs. */
export async function anchorsAt(offsetsDays: readonly number[]): Promise<TestPki[]> {
  return Promise.all(offsetsDays.map((d) => testPki({ now: new Date(NOW.getTime() + d * DAY_MS) })));
}

/** The code of a thrown LanyardError, for assert.throws(fn, hasCode('ERR_…')). */
export function hasCode(code: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.equal((err as { code?: unknown }).code, code);
    return true;
  };
}

/** The "(ERR_…)" suffix the CLI prints after an error message. */
export function cliCode(stderr: string): string | undefined {
  return /\((ERR_[A-Z_]+)\)\s*$/.exec(stderr)?.[1];
}

/** All permutations of a small array. */
export function permutations<T>(xs: readonly T[]): T[][] {
  if (xs.length <= 1) return [[...xs]];
  return xs.flatMap((x, i) =>
    permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((rest) => [x, ...rest]),
  );
}
