import assert from 'node:assert/strict';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { before, describe, it } from 'node:test';
import {
  DEFAULT_IDENTITY_DOMAIN,
  DEFAULT_LEAF_POLICY,
  ISTIO_KEY_POLICY,
  authorizeIstioLeaf,
  authorizeLeaf,
  createIssuerCredential,
  isLanyardError,
  issueLeaf,
  parseCsrLenient,
  requestIstioLeaf,
  requestLeaf,
  snapshotIssuer,
  workloadIdentity,
  type IssuerCredential,
} from '../../ca/index.js';
import { x509 } from '../../ca/x509.js';
import { extensionBlock, opensslCsr, opensslText, opensslVerify } from '../support/openssl.js';
import { istioCsr, istioCsrWithSpki, rsaKey, syntheticRsaSpki } from '../support/istio-csr.js';
import { csrKey, testPki } from '../support/pki.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const WEB = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'web' });
const OTHER = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'other' });
const POLICY = DEFAULT_LEAF_POLICY;

function istioIssue(cred: IssuerCredential, csrPem: Buffer, caller = WEB) {
  const parsed = parseCsrLenient(csrPem, ISTIO_KEY_POLICY);
  const request = requestIstioLeaf(parsed);
  return issueLeaf(snapshotIssuer(cred, NOW), authorizeIstioLeaf(request, caller, POLICY));
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (isLanyardError(err)) return err.code;
    throw err;
  }
  return undefined;
}

describe('the Istio leaf profile', () => {
  let cred: IssuerCredential;
  before(async () => {
    const pki = await testPki({ now: NOW, clusters: ['east'] });
    const east = pki.issuers.east;
    assert.ok(east);
    cred = createIssuerCredential({
      certificatePem: east.certPem,
      signer: east.signer,
      anchorsPem: pki.anchorsPem,
      now: NOW,
    });
  });

  const keys: [string, () => KeyObject, boolean][] = [
    ['ECDSA P-256 (ztunnel, empty subject)', () => csrKey('p256'), false],
    ['ECDSA P-384', () => csrKey('p384'), false],
    ['RSA-2048 (istio-agent, subject O=)', () => rsaKey(2048), true],
    ['RSA-4096', () => rsaKey(4096), true],
  ];
  for (const [what, makeKey, rsa] of keys) {
    it(`issues a URI-only leaf for ${what} that openssl verifies for sslclient and sslserver`, async () => {
      const subject: x509.JsonName = rsa ? [{ O: [''] }] : [];
      const leaf = istioIssue(cred, await istioCsr({ key: makeKey(), uris: [WEB.spiffeId], subject }));
      for (const purpose of ['sslclient', 'sslserver'] as const) {
        const r = opensslVerify({
          leaf: leaf.der,
          intermediates: leaf.intermediates,
          anchors: leaf.anchorsReached.map((a) => a.der),
          purpose,
          atSeconds: NOW.getTime() / 1000 + 60,
        });
        assert.ok(r.ok, `${purpose}: ${r.stderr}${r.stdout}`);
      }
      const text = opensslText(leaf.der);
      const san = extensionBlock(text, 'X509v3 Subject Alternative Name');
      assert.deepEqual(san, { critical: true, value: `URI:${WEB.spiffeId}` });
      const ku = extensionBlock(text, 'X509v3 Key Usage');
      assert.deepEqual(ku, {
        critical: true,
        value: rsa ? 'Digital Signature, Key Encipherment' : 'Digital Signature',
      });
      assert.equal(extensionBlock(text, 'X509v3 Basic Constraints')?.value, 'CA:FALSE');
      assert.equal(
        extensionBlock(text, 'X509v3 Extended Key Usage')?.value,
        'TLS Web Server Authentication, TLS Web Client Authentication',
      );
      const cert = new x509.X509Certificate(new Uint8Array(leaf.der));
      assert.equal(cert.subject, '');
    });
  }

  it('keeps the Linkerd profile for Linkerd requests: DNS name then URI, digitalSignature alone', async () => {
    const csr = await istioCsr({ key: csrKey('p256'), dns: [WEB.dns] });
    const parsed = parseCsrLenient(csr, POLICY);
    const leaf = issueLeaf(
      snapshotIssuer(cred, NOW),
      authorizeLeaf(requestLeaf(parsed, WEB.dns), WEB, POLICY),
    );
    const san = extensionBlock(opensslText(leaf.der), 'X509v3 Subject Alternative Name');
    assert.equal(san?.value, `DNS:${WEB.dns}, URI:${WEB.spiffeId}`);
  });

  it('refuses a CSR for another identity than the caller (ERR_CSR_IDENTITY), after the token', async () => {
    const csr = await istioCsr({ key: csrKey('p256'), uris: [OTHER.spiffeId] });
    const request = requestIstioLeaf(parseCsrLenient(csr, ISTIO_KEY_POLICY));
    assert.equal(
      codeOf(() => authorizeIstioLeaf(request, WEB, POLICY)),
      'ERR_CSR_IDENTITY',
    );
  });

  const badNames: [
    string,
    Parameters<typeof istioCsr>[0] extends infer O ? Omit<O & object, 'key'> : never,
  ][] = [
    ['no SAN', {}],
    ['two URIs', { uris: [WEB.spiffeId, OTHER.spiffeId] }],
    ['a DNS name', { uris: [WEB.spiffeId], dns: ['web.default.svc'] }],
    ['an IP address', { uris: [WEB.spiffeId], ips: ['10.0.0.1'] }],
    ['an email address', { uris: [WEB.spiffeId], emails: ['web@example.com'] }],
    ['a CN', { uris: [WEB.spiffeId], subject: [{ CN: ['web'] }] }],
    ['an O with a value', { uris: [WEB.spiffeId], subject: [{ O: ['acme'] }] }],
    ['an OU', { uris: [WEB.spiffeId], subject: [{ OU: [''] }] }],
  ];
  for (const [what, names] of badNames) {
    it(`refuses a CSR with ${what} before the token (ERR_CSR_IDENTITY)`, async () => {
      const csr = await istioCsr({ key: csrKey('p256'), ...names });
      const parsed = parseCsrLenient(csr, ISTIO_KEY_POLICY);
      assert.equal(
        codeOf(() => requestIstioLeaf(parsed)),
        'ERR_CSR_IDENTITY',
      );
    });
  }

  it('accepts an empty CN, as well as an empty subject and O=', async () => {
    const csr = await istioCsr({ key: csrKey('p256'), uris: [WEB.spiffeId], subject: [{ CN: [''] }] });
    assert.equal(istioIssue(cred, csr).anchorsReached.length, 1);
  });

  // Keys refused from their DER: RSA ones are synthetic (no key is generated: RSA-4104 takes seconds)
  // inside a CSR whose signature does not verify, so the expected code also shows nothing was verified.
  const rsa = (bits: number, exponent: number) => async () => {
    const spki = syntheticRsaSpki(bits, exponent);
    const details = createPublicKey({ key: spki, format: 'der', type: 'spki' }).asymmetricKeyDetails;
    assert.deepEqual(details, { modulusLength: bits, publicExponent: BigInt(exponent) });
    return istioCsrWithSpki(spki, { uris: [WEB.spiffeId] });
  };
  const badKeys: [string, () => Promise<Buffer>, string][] = [
    ['RSA-1024', rsa(1024, 65537), 'ERR_CSR_WEAK_KEY'],
    ['RSA-2048 with exponent 3', rsa(2048, 3), 'ERR_KEY_NOT_ALLOWED'],
    ['RSA-4104', rsa(4104, 65537), 'ERR_KEY_NOT_ALLOWED'],
    ['ECDSA P-521', () => istioCsr({ key: csrKey('p521'), uris: [WEB.spiffeId] }), 'ERR_CSR_UNSUPPORTED_KEY'],
    [
      'Ed25519',
      // @peculiar/x509 cannot sign with Ed25519 through node's webcrypto here: openssl makes it
      () =>
        Promise.resolve(
          Buffer.from(
            opensslCsr({ keyArgs: ['-newkey', 'ed25519'], san: `critical,URI:${WEB.spiffeId}` }).csrDer,
          ),
        ),
      'ERR_CSR_UNSUPPORTED_KEY',
    ],
  ];
  for (const [what, makeCsr, code] of badKeys) {
    it(`refuses a ${what} key once the caller is known (${code}), nothing verified before`, async () => {
      const parsed = parseCsrLenient(await makeCsr(), ISTIO_KEY_POLICY);
      assert.equal(parsed.keyType, 'unsupported');
      const request = requestIstioLeaf(parsed);
      assert.equal(
        codeOf(() => authorizeIstioLeaf(request, WEB, POLICY)),
        code,
      );
    });
  }

  it('keeps the Linkerd API to its own key policy: an RSA-2048 key is ERR_KEY_NOT_ALLOWED there', async () => {
    const csr = await istioCsr({ key: rsaKey(2048), dns: [WEB.dns] });
    const request = requestLeaf(parseCsrLenient(csr, POLICY), WEB.dns);
    assert.equal(
      codeOf(() => authorizeLeaf(request, WEB, POLICY)),
      'ERR_KEY_NOT_ALLOWED',
    );
  });

  it('does not mix the two hand-offs: an Istio request is not authorized as a Linkerd one', async () => {
    const csr = await istioCsr({ key: csrKey('p256'), uris: [WEB.spiffeId] });
    const request = requestIstioLeaf(parseCsrLenient(csr, ISTIO_KEY_POLICY));
    assert.throws(() => authorizeLeaf(request, WEB, POLICY), TypeError);
  });
});
