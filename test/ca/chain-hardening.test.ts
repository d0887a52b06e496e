// Chains that other tools (cert-manager, openssl) can make and Lanyard's profiles never do:
// pathLen counted from an issuer, unknown critical extensions, excluded and foreign name constraints.
// Every certificate under test is made by the openssl binary; each case checks that Lanyard refuses
// (or accepts) exactly what `openssl verify -x509_strict` refuses (or accepts).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  DEFAULT_IDENTITY_DOMAIN,
  DEFAULT_LEAF_POLICY,
  createIssuerCredential,
  encodePem,
  workloadIdentity,
  systemClock,
  type CertificateInfo,
} from '../../ca/index.js';
import { createKeyObjectSigner, generateKey, type Signer } from '../../ca/keys/index.js';
import { issueForCsr } from '../../ca/credential.js';
import { parseCsr } from '../../ca/csr.js';
import { opensslIssuerFactory, templateLeaf } from '../support/openssl-ca.js';
import { opensslVerify } from '../support/openssl.js';
import { tempDir } from '../support/temp-dir.js';
import { createTestCertificate, makeCsr, testPki, type TestPki } from '../support/pki.js';

/** a little after the wall clock, so openssl's own notBefore (its "now") lies before it */
const NOW = new Date(systemClock.now().getTime() + 120_000);
const AT = Math.floor(NOW.getTime() / 1000);
const WEB = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'web' });

describe('chain checks match openssl on CA certificates Lanyard does not make', () => {
  let pki: TestPki;
  let dir: string;
  let cleanup: () => void;
  let opensslIssuer: ReturnType<typeof opensslIssuerFactory>;

  before(async () => {
    ({ dir, cleanup } = tempDir('lanyard-chain-hard-'));
    pki = await testPki({ now: new Date(NOW.getTime() - 3_600_000) });
    opensslIssuer = opensslIssuerFactory(pki, dir);
  });
  after(() => {
    cleanup();
  });

  /** A pathlen:0 CA named `commonName` under `issuer`, and a WEB leaf it signs through the raw template. */
  async function subCaWithLeaf(
    issuer: Parameters<typeof createTestCertificate>[0]['issuer'],
    commonName: string,
  ): Promise<{ signer: Signer; sub: CertificateInfo; leaf: Buffer }> {
    const signer = createKeyObjectSigner(await generateKey('p256'));
    const sub = await createTestCertificate({
      issuer,
      subjectSigner: signer,
      commonName,
      notBefore: new Date(NOW.getTime() - 60_000),
      notAfter: new Date(NOW.getTime() + 86_400_000),
      isCa: true,
      pathLen: 0,
    });
    const leaf = templateLeaf({ cert: sub, signer }, NOW, { dnsName: WEB.dns, uri: WEB.spiffeId });
    return { signer, sub, leaf };
  }

  /** openssl's verdict on a leaf for WEB (or `names`) signed by `issuer` through the raw template. */
  function opensslAccepts(
    issuer: { cert: CertificateInfo; signer: Signer },
    names: { dnsName?: string; uri?: string } = {},
  ): boolean {
    const leaf = templateLeaf(issuer, NOW, {
      dnsName: names.dnsName ?? WEB.dns,
      uri: names.uri ?? WEB.spiffeId,
    });
    const verdicts = (['sslclient', 'sslserver'] as const).map(
      (purpose) =>
        opensslVerify({
          leaf,
          intermediates: [issuer.cert.der],
          anchors: [pki.anchor.cert.der],
          purpose,
          atSeconds: AT,
        }).ok,
    );
    assert.equal(verdicts[0], verdicts[1]);
    return verdicts[0] as boolean;
  }

  /** Lanyard's verdict: load the issuer as a credential and issue a leaf for `identity`. */
  async function lanyardIssues(
    issuer: { cert: CertificateInfo; signer: Signer },
    identity = WEB,
  ): Promise<void> {
    const cred = createIssuerCredential({
      certificatePem: encodePem('CERTIFICATE', issuer.cert.der),
      signer: issuer.signer,
      anchorsPem: pki.anchorsPem,
      now: NOW,
    });
    const csr = parseCsr((await makeCsr({ dns: [identity.dns] })).der);
    issueForCsr(cred, { csr, identity, policy: DEFAULT_LEAF_POLICY, now: NOW });
  }

  it('accepts a plain openssl-made issuer (control: the harness itself works)', async () => {
    const issuer = await opensslIssuer([]);
    assert.equal(opensslAccepts(issuer), true);
    await lanyardIssues(issuer);
  });

  it('refuses an issuer with an unknown critical extension (ERR_CERT_UNSUPPORTED_CRITICAL_EXTENSION)', async () => {
    const issuer = await opensslIssuer(['1.3.6.1.4.1.55555.1 = critical,ASN1:NULL']);
    assert.equal(opensslAccepts(issuer), false);
    await assert.rejects(lanyardIssues(issuer), { code: 'ERR_CERT_UNSUPPORTED_CRITICAL_EXTENSION' });
  });

  it('accepts an issuer with the same unknown extension when it is not critical', async () => {
    const issuer = await opensslIssuer(['1.3.6.1.4.1.55555.1 = ASN1:NULL']);
    assert.equal(opensslAccepts(issuer), true);
    await lanyardIssues(issuer);
  });

  it('refuses identities in an excluded DNS subtree (ERR_NAME_CONSTRAINTS)', async () => {
    const issuer = await opensslIssuer(['nameConstraints = critical,excluded;DNS:cluster.local']);
    assert.equal(opensslAccepts(issuer), false);
    await assert.rejects(lanyardIssues(issuer), { code: 'ERR_NAME_CONSTRAINTS' });
  });

  it('issues identities outside an excluded DNS subtree', async () => {
    const issuer = await opensslIssuer(['nameConstraints = critical,excluded;DNS:evil.example']);
    assert.equal(opensslAccepts(issuer), true);
    await lanyardIssues(issuer);
  });

  it('refuses SPIFFE IDs in an excluded URI subtree (ERR_NAME_CONSTRAINTS)', async () => {
    const issuer = await opensslIssuer(['nameConstraints = critical,excluded;URI:cluster.local']);
    assert.equal(opensslAccepts(issuer), false);
    await assert.rejects(lanyardIssues(issuer), { code: 'ERR_NAME_CONSTRAINTS' });
  });

  it('lets permitted subtrees of forms the leaf does not carry (IP, email, directoryName) constrain nothing, as openssl does', async () => {
    const issuer = await opensslIssuer([
      'nameConstraints = critical,permitted;IP:10.0.0.0/255.0.0.0,permitted;email:.example.com,permitted;dirName:dir_sect',
      '[dir_sect]',
      'O = Example',
    ]);
    assert.equal(opensslAccepts(issuer), true);
    await lanyardIssues(issuer);
  });

  it('refuses an intermediate whose own names fall under a directoryName constraint it cannot evaluate (ERR_NAME_CONSTRAINTS_UNSUPPORTED)', async () => {
    // a CA under the constrained issuer has a subject; openssl checks it against the dirName subtree
    const issuer = await opensslIssuer(
      ['nameConstraints = critical,excluded;dirName:dir_sect', '[dir_sect]', 'CN = blocked.example'],
      null,
    );
    const { signer, sub, leaf } = await subCaWithLeaf(issuer, 'blocked.example');
    const r = opensslVerify({
      leaf,
      intermediates: [sub.der, issuer.cert.der],
      anchors: [pki.anchor.cert.der],
      purpose: 'sslserver',
      atSeconds: AT,
    });
    assert.equal(r.ok, false);
    assert.match(r.stdout + r.stderr, /error 48 at/); // X509_V_ERR_EXCLUDED_VIOLATION
    assert.throws(
      () =>
        createIssuerCredential({
          certificatePem: [sub, issuer.cert].map((c) => encodePem('CERTIFICATE', c.der)).join(''),
          signer,
          anchorsPem: pki.anchorsPem,
          now: NOW,
        }),
      { code: 'ERR_NAME_CONSTRAINTS_UNSUPPORTED' },
    );
  });

  it('counts the issuer itself against its parent pathLen: a CA below a pathlen:0 issuer cannot be loaded (ERR_CHAIN_UNTRUSTED)', async () => {
    const parent = await opensslIssuer([]);
    const { signer, sub, leaf } = await subCaWithLeaf(parent, 'sub.example');
    const r = opensslVerify({
      leaf,
      intermediates: [sub.der, parent.cert.der],
      anchors: [pki.anchor.cert.der],
      purpose: 'sslclient',
      atSeconds: AT,
    });
    assert.equal(r.ok, false);
    assert.match(r.stdout + r.stderr, /error 25 at/); // X509_V_ERR_PATH_LENGTH_EXCEEDED
    assert.throws(
      () =>
        createIssuerCredential({
          certificatePem: [sub, parent.cert].map((c) => encodePem('CERTIFICATE', c.der)).join(''),
          signer,
          anchorsPem: pki.anchorsPem,
          now: NOW,
        }),
      { code: 'ERR_CHAIN_UNTRUSTED' },
    );
  });
});
