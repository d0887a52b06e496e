import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  DEFAULT_IDENTITY_DOMAIN,
  DEFAULT_LEAF_POLICY,
  createIssuerCredential,
  createLeafTemplate,
  encodePem,
  authorizeLeaf,
  issueLeaf,
  parseCertificate,
  requestLeaf,
  snapshotIssuer,
  workloadIdentity,
  type AuthorizedLeafRequest,
  type IssuerCredential,
  type LeafPolicy,
  type ParsedCsr,
} from '../../ca/index.js';
import { createKeyObjectSigner, generateKey } from '../../ca/keys/index.js';
import { issueForCsr } from '../../ca/credential.js';
import { judgeCsrKey } from '../../ca/policy.js';
import { parseCsr } from '../../ca/csr.js';
import { x509 } from '../../ca/x509.js';
import { DAY, FakeClock, HOUR } from '../support/clock.js';
import { opensslCsr, opensslVerify } from '../support/openssl.js';
import { createTestCertificate, makeCsr, testPki, type TestPki } from '../support/pki.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const WEB = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'web' });

function east(pki: TestPki): NonNullable<TestPki['issuers'][string]> {
  const issuer = pki.issuers.east;
  assert.ok(issuer);
  return issuer;
}

describe('createIssuerCredential', () => {
  let pki: TestPki;
  before(async () => {
    pki = await testPki({ now: NOW });
  });

  it('assembles the issuer certificate, chain, anchor, key and chain expiry', () => {
    const issuer = east(pki);
    const cred = createIssuerCredential({
      certificatePem: issuer.certPem,
      signer: issuer.signer,
      anchorsPem: pki.anchorsPem,
      now: NOW,
    });
    assert.ok(cred.certificate.der.equals(issuer.cert.der));
    assert.deepEqual(
      cred.chain.map((c) => c.der),
      [issuer.cert.der],
    );
    assert.ok(cred.anchor.der.equals(pki.anchor.cert.der));
    assert.equal(cred.anchors.length, 1);
    assert.equal(cred.signer, issuer.signer);
    assert.deepEqual(cred.chainNotAfter, issuer.cert.notAfter);
    assert.ok(Object.isFrozen(cred));
  });

  it('drops the anchor when the certificate file also carries it', () => {
    const issuer = east(pki);
    const cred = createIssuerCredential({
      certificatePem: issuer.certPem + pki.anchorsPem,
      signer: issuer.signer,
      anchorsPem: pki.anchorsPem,
      now: NOW,
    });
    assert.equal(cred.chain.length, 1);
    assert.ok(cred.certificate.der.equals(issuer.cert.der));
  });

  it('caps the chain expiry at the anchor when the anchor expires first', async () => {
    const short = await testPki({ now: NOW, anchorLifetimeMs: 2 * HOUR });
    const cred = east(short).credential;
    assert.deepEqual(cred.chainNotAfter, short.anchor.cert.notAfter);
  });

  it('picks the right anchor out of several', async () => {
    const other = await testPki({ now: NOW });
    const issuer = east(pki);
    const cred = createIssuerCredential({
      certificatePem: issuer.certPem,
      signer: issuer.signer,
      anchorsPem: other.anchorsPem + pki.anchorsPem,
      now: NOW,
    });
    assert.ok(cred.anchor.der.equals(pki.anchor.cert.der));
    assert.equal(cred.anchors.length, 2);
  });

  it('rejects a key that does not match the certificate with ERR_KEY_MISMATCH', async () => {
    const signer = createKeyObjectSigner(await generateKey('p256'));
    assert.throws(
      () =>
        createIssuerCredential({
          certificatePem: east(pki).certPem,
          signer,
          anchorsPem: pki.anchorsPem,
          now: NOW,
        }),
      { code: 'ERR_KEY_MISMATCH' },
    );
  });

  it('rejects an expired issuer with ERR_CERT_EXPIRED and a not-yet-valid one with ERR_CERT_NOT_YET_VALID', () => {
    const issuer = east(pki);
    const input = { certificatePem: issuer.certPem, signer: issuer.signer, anchorsPem: pki.anchorsPem };
    assert.throws(
      () => createIssuerCredential({ ...input, now: new Date(issuer.cert.notAfter.getTime() + 1000) }),
      {
        code: 'ERR_CERT_EXPIRED',
      },
    );
    assert.throws(
      () => createIssuerCredential({ ...input, now: new Date(issuer.cert.notBefore.getTime() - 1000) }),
      {
        code: 'ERR_CERT_NOT_YET_VALID',
      },
    );
  });

  it('rejects an issuer not signed by the anchors with ERR_CHAIN_UNTRUSTED', async () => {
    const other = await testPki({ now: NOW });
    const issuer = east(pki);
    assert.throws(
      () =>
        createIssuerCredential({
          certificatePem: issuer.certPem,
          signer: issuer.signer,
          anchorsPem: other.anchorsPem,
          now: NOW,
        }),
      { code: 'ERR_CHAIN_UNTRUSTED' },
    );
  });

  it('rejects a workload leaf as the issuer certificate with ERR_NOT_CA', async () => {
    const signer = createKeyObjectSigner(await generateKey('p256'));
    const issuer = east(pki);
    const leaf = createLeafTemplate(issuer.cert, issuer.signer).sign({
      spki: signer.publicKeyDer,
      dnsName: WEB.dns,
      uri: WEB.spiffeId,
      notBefore: NOW,
      notAfter: new Date(NOW.getTime() + HOUR),
    });
    assert.throws(
      () =>
        createIssuerCredential({
          certificatePem: encodePem('CERTIFICATE', leaf.der) + issuer.certPem,
          signer,
          anchorsPem: pki.anchorsPem,
          now: NOW,
        }),
      { code: 'ERR_NOT_CA' },
    );
  });

  it('rejects a CA certificate without keyCertSign with ERR_NOT_CA', async () => {
    const signer = createKeyObjectSigner(await generateKey('p256'));
    const cert = await createTestCertificate({
      issuer: pki.anchor,
      subjectSigner: signer,
      commonName: 'no-cert-sign.example',
      notBefore: new Date(NOW.getTime() - HOUR),
      notAfter: new Date(NOW.getTime() + DAY),
      isCa: true,
      keyUsage: x509.KeyUsageFlags.digitalSignature,
    });
    assert.throws(
      () =>
        createIssuerCredential({
          certificatePem: encodePem('CERTIFICATE', cert.der),
          signer,
          anchorsPem: pki.anchorsPem,
          now: NOW,
        }),
      { code: 'ERR_NOT_CA' },
    );
  });

  it('rejects a certificate file that holds only trust anchors with ERR_FILE_INVALID', () => {
    assert.throws(
      () =>
        createIssuerCredential({
          certificatePem: pki.anchorsPem,
          signer: pki.anchor.signer,
          anchorsPem: pki.anchorsPem,
          now: NOW,
        }),
      { code: 'ERR_FILE_INVALID' },
    );
  });

  it('rejects anchors mixed with a private key, and empty anchors, by their PEM codes', () => {
    const issuer = east(pki);
    const input = { certificatePem: issuer.certPem, signer: issuer.signer, now: NOW };
    assert.throws(() => createIssuerCredential({ ...input, anchorsPem: pki.anchorsPem + issuer.keyPem }), {
      code: 'ERR_PEM_UNEXPECTED_TYPE',
    });
    assert.throws(() => createIssuerCredential({ ...input, anchorsPem: '' }), { code: 'ERR_PEM_MALFORMED' });
  });
});

describe('issueForCsr', () => {
  let pki: TestPki;
  let cred: IssuerCredential;
  let csr: ParsedCsr;
  before(async () => {
    pki = await testPki({ now: NOW });
    cred = east(pki).credential;
    csr = parseCsr((await makeCsr({ dns: [WEB.dns] })).der);
  });

  const issue = (
    overrides: Partial<{ csr: ParsedCsr; identity: typeof WEB; policy: LeafPolicy; now: Date }> = {},
    credential: IssuerCredential = cred,
  ): ReturnType<typeof issueForCsr> =>
    issueForCsr(credential, { csr, identity: WEB, policy: DEFAULT_LEAF_POLICY, now: NOW, ...overrides });
  /** the authorize stage for an identity the CSR names, under the default policy */
  const authorized = (parsed: ParsedCsr, identity: typeof WEB): AuthorizedLeafRequest =>
    authorizeLeaf(
      requestLeaf(judgeCsrKey(parsed, DEFAULT_LEAF_POLICY), identity.dns),
      identity,
      DEFAULT_LEAF_POLICY,
    );

  it('issues a leaf for the identity that openssl verifies as server and client', () => {
    const leaf = issue();
    for (const purpose of ['sslserver', 'sslclient'] as const) {
      const r = opensslVerify({
        leaf: leaf.der,
        intermediates: leaf.intermediates,
        anchors: [leaf.anchor.der],
        purpose,
        atSeconds: NOW.getTime() / 1000,
      });
      assert.ok(r.ok, r.stdout + r.stderr);
    }
    assert.deepEqual(leaf.intermediates, [east(pki).cert.der]);
    assert.ok(leaf.anchor.der.equals(pki.anchor.cert.der));
    const parsed = parseCertificate(leaf.der);
    assert.deepEqual(parsed.dnsNames, [WEB.dns]);
    assert.deepEqual(parsed.uris, [WEB.spiffeId]);
    assert.ok(parsed.spki.equals(csr.spki));
    assert.equal(parsed.serialHex, leaf.serialHex);
    assert.deepEqual(parsed.notBefore, leaf.notBefore);
    assert.deepEqual(parsed.notAfter, leaf.notAfter);
    assert.equal(leaf.notBefore.getTime(), NOW.getTime() - 20_000);
    assert.equal(leaf.notAfter.getTime(), NOW.getTime() + DAY + 20_000);
  });

  it('takes nothing from the CSR but its public key', () => {
    const { csrDer } = opensslCsr({
      subj: `/CN=${WEB.dns}`,
      keyArgs: [
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign',
      ],
      san: `DNS:${WEB.dns}`,
    });
    const fromOpenssl = parseCsr(csrDer);
    const leaf = parseCertificate(issue({ csr: fromOpenssl }).der);
    assert.equal(leaf.isCa, false);
    assert.equal(leaf.subjectCommonName, undefined);
    assert.ok(leaf.subjectDer.equals(Buffer.from([0x30, 0x00])), 'empty subject');
    assert.equal(leaf.keyUsage, 1, 'digitalSignature only');
    assert.ok(leaf.spki.equals(fromOpenssl.spki));
  });

  it('issues for identities in another trust domain when the issuer is unconstrained', () => {
    const identity = workloadIdentity(
      { trustDomain: 'example.org', controlNamespace: 'mesh' },
      { namespace: 'payments', name: 'api' },
    );
    const leaf = parseCertificate(
      issueForCsr(cred, {
        csr: { ...csr, dnsNames: [identity.dns] },
        identity,
        policy: DEFAULT_LEAF_POLICY,
        now: NOW,
      }).der,
    );
    assert.deepEqual(leaf.dnsNames, ['api.payments.serviceaccount.identity.mesh.example.org']);
    assert.deepEqual(leaf.uris, ['spiffe://example.org/ns/payments/sa/api']);
  });

  it('rejects a CSR for another identity with ERR_CSR_NAMES', async () => {
    const other = parseCsr((await makeCsr({ dns: [WEB.dns.replace('web.', 'db.')] })).der);
    assert.throws(() => issue({ csr: other }), { code: 'ERR_CSR_NAMES' });
  });

  it('rejects a P-384 CSR by default with ERR_KEY_NOT_ALLOWED and issues it when the policy allows', async () => {
    const p384 = parseCsr((await makeCsr({ keySpec: 'p384', dns: [WEB.dns] })).der);
    assert.throws(() => issue({ csr: p384 }), { code: 'ERR_KEY_NOT_ALLOWED' });
    const leaf = issue({ csr: p384, policy: { ...DEFAULT_LEAF_POLICY, allowedKeyTypes: ['p256', 'p384'] } });
    assert.ok(parseCertificate(leaf.der).spki.equals(p384.spki));
  });

  it('rejects an RSA CSR with ERR_KEY_NOT_ALLOWED', async () => {
    const rsa = parseCsr((await makeCsr({ keySpec: 'rsa2048', dns: [WEB.dns] })).der);
    assert.throws(() => issue({ csr: rsa }), { code: 'ERR_KEY_NOT_ALLOWED' });
  });

  it('caps the leaf at the chain expiry and refuses with ERR_ISSUER_UNAVAILABLE once the chain has expired', async () => {
    const short = await testPki({ now: NOW, issuerLifetimeMs: HOUR });
    const shortCred = east(short).credential;
    const clock = new FakeClock(NOW);
    clock.advance(HOUR - 1000);
    const last = issue({ now: clock.now() }, shortCred);
    assert.deepEqual(last.notAfter, shortCred.chainNotAfter);
    clock.advance(1000);
    assert.throws(() => issue({ now: clock.now() }, shortCred), { code: 'ERR_ISSUER_UNAVAILABLE' });
    clock.advance(DAY);
    assert.throws(() => issueLeaf(snapshotIssuer(shortCred, clock.now()), authorized(csr, WEB)), {
      code: 'ERR_ISSUER_UNAVAILABLE',
    });
  });

  it('rejects an identity outside the issuer name constraints with ERR_NAME_CONSTRAINTS', async () => {
    const constrained = await testPki({
      now: NOW,
      permitDns: ['cluster.local'],
      permitSpiffe: 'cluster.local',
    });
    const c = east(constrained).credential;
    assert.ok(issue({}, c).der.length > 0, 'an identity inside the subtrees is issued');
    const evil = workloadIdentity({ trustDomain: 'evil.example', controlNamespace: 'linkerd' }, WEB);
    const evilCsr = { ...csr, dnsNames: [evil.dns] };
    assert.throws(() => issue({ csr: evilCsr, identity: evil }, c), { code: 'ERR_NAME_CONSTRAINTS' });
    assert.throws(() => issueLeaf(snapshotIssuer(c, NOW), authorized(evilCsr, evil)), {
      code: 'ERR_NAME_CONSTRAINTS',
    });
  });

  it('rejects a SPIFFE ID outside the URI subtree even when the DNS name is inside', async () => {
    const constrained = await testPki({
      now: NOW,
      permitDns: ['cluster.local'],
      permitSpiffe: 'other.example',
    });
    assert.throws(() => issue({}, east(constrained).credential), { code: 'ERR_NAME_CONSTRAINTS' });
  });

  it('returns nothing when the signed leaf fails the post-sign check against the anchors', async () => {
    // a signature that does not verify with the issuer's key
    const badSignature: IssuerCredential = {
      ...cred,
      template: {
        sign: (req) => {
          const leaf = cred.template.sign(req);
          const signature = Buffer.from(leaf.signature);
          signature[signature.length - 1] = (signature[signature.length - 1] as number) ^ 1;
          return { ...leaf, signature };
        },
      },
    };
    assert.throws(() => issue({}, badSignature), { code: 'ERR_INTERNAL' });
    // a path to a root that is not valid at the instant of issuance
    const later = await testPki({ now: new Date(NOW.getTime() + DAY) });
    const notYetValid: IssuerCredential = {
      ...cred,
      leafPaths: [...cred.leafPaths, [cred.certificate, later.anchor.cert]],
    };
    assert.throws(() => issue({}, notYetValid), { code: 'ERR_INTERNAL' });
    assert.doesNotThrow(() => issue({}, cred));
  });
});
