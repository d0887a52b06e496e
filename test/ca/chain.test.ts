import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  DEFAULT_IDENTITY_DOMAIN,
  DEFAULT_LEAF_POLICY,
  checkValidity,
  createChainVerifier,
  createLeafTemplate,
  parseCertificate,
  workloadIdentity,
  type CertificateInfo,
} from '../../ca/index.js';
import { createKeyObjectSigner, generateKey, type Signer } from '../../ca/keys/index.js';
import { issueForCsr } from '../../ca/credential.js';
import { parseCsr } from '../../ca/csr.js';
import { verifyChain } from '../../ca/chain.js';
import { dnsWithin, uriHostWithin } from '../../ca/chain.js';
import { x509 } from '../../ca/x509.js';
import { DAY, FakeClock, HOUR } from '../support/clock.js';
import { legacyAnchor } from '../support/cross-pki.js';
import { opensslVerify } from '../support/openssl.js';
import {
  createTestCertificate,
  makeCsr,
  spkiOf,
  testPki,
  type TestCa,
  type TestPki,
} from '../support/pki.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const WEB = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'web' });

/** A leaf built directly from a template, with whatever names and validity a test needs. */
function directLeaf(
  issuer: TestCa,
  options: { notBefore?: Date; notAfter?: Date; dnsName?: string; uri?: string; spki?: Buffer } = {},
): Buffer {
  return createLeafTemplate(issuer.cert, issuer.signer).sign({
    spki: options.spki ?? spkiOf(),
    dnsName: options.dnsName ?? WEB.dns,
    uri: options.uri ?? WEB.spiffeId,
    notBefore: options.notBefore ?? new Date(NOW.getTime() - 20_000),
    notAfter: options.notAfter ?? new Date(NOW.getTime() + DAY),
  }).der;
}

function issuerOf(pki: TestPki, cluster = 'east'): TestCa {
  const issuer = pki.issuers[cluster];
  assert.ok(issuer);
  return issuer;
}

async function newSigner(): Promise<Signer> {
  return createKeyObjectSigner(await generateKey('p256'));
}

describe('verifyChain', () => {
  let pki: TestPki;
  let issuer: TestCa;
  let leaf: Buffer;

  before(async () => {
    pki = await testPki({ now: NOW });
    issuer = issuerOf(pki);
    const { der } = await makeCsr({ dns: [WEB.dns] });
    const credential = pki.issuers.east?.credential;
    assert.ok(credential);
    leaf = issueForCsr(credential, {
      csr: parseCsr(der),
      identity: WEB,
      policy: DEFAULT_LEAF_POLICY,
      now: NOW,
    }).der;
  });

  it('returns the path leaf → issuer → anchor for a good chain', () => {
    const path = verifyChain({
      cert: leaf,
      intermediates: [issuer.cert.der],
      anchors: [pki.anchor.cert.der],
      at: NOW,
    });
    assert.equal(path.length, 3);
    assert.ok((path[0] as CertificateInfo).der.equals(leaf));
    assert.ok((path[1] as CertificateInfo).der.equals(issuer.cert.der));
    assert.ok((path[2] as CertificateInfo).der.equals(pki.anchor.cert.der));
  });

  it('accepts parsed certificates as well as DER, and verifies repeatedly with one verifier', () => {
    const verifier = createChainVerifier({ anchors: [pki.anchor.cert], intermediates: [issuer.cert] });
    for (let i = 0; i < 3; i++) {
      const path = verifier.verify(parseCertificate(leaf), NOW);
      assert.equal(path[2], pki.anchor.cert);
    }
    assert.deepEqual(verifier.anchors, [pki.anchor.cert]);
    assert.deepEqual(verifier.intermediates, [issuer.cert]);
  });

  it('accepts a leaf signed directly by an anchor', () => {
    const path = verifyChain({ cert: directLeaf(pki.anchor), anchors: [pki.anchor.cert], at: NOW });
    assert.equal(path.length, 2);
  });

  it('accepts the leaf at exactly notBefore and exactly notAfter', () => {
    const cert = parseCertificate(leaf);
    const verifier = createChainVerifier({ anchors: [pki.anchor.cert], intermediates: [issuer.cert] });
    assert.equal(verifier.verify(cert, cert.notBefore).length, 3);
    assert.equal(verifier.verify(cert, cert.notAfter).length, 3);
  });

  it('rejects an expired leaf with ERR_CERT_EXPIRED', () => {
    const clock = new FakeClock(NOW);
    const verifier = createChainVerifier({ anchors: [pki.anchor.cert], intermediates: [issuer.cert] });
    clock.advance(DAY);
    assert.equal(verifier.verify(leaf, clock.now()).length, 3, 'still valid inside the 20 s of slack');
    clock.advance(21_000);
    assert.throws(() => verifier.verify(leaf, clock.now()), { code: 'ERR_CERT_EXPIRED' });
    const notAfter = parseCertificate(leaf).notAfter;
    assert.throws(() => verifier.verify(leaf, new Date(notAfter.getTime() + 1)), {
      code: 'ERR_CERT_EXPIRED',
    });
  });

  it('rejects a leaf that is not yet valid with ERR_CERT_NOT_YET_VALID', () => {
    const notBefore = parseCertificate(leaf).notBefore;
    assert.throws(
      () =>
        verifyChain({
          cert: leaf,
          intermediates: [issuer.cert],
          anchors: [pki.anchor.cert],
          at: new Date(notBefore.getTime() - 1),
        }),
      { code: 'ERR_CERT_NOT_YET_VALID' },
    );
  });

  it('rejects a chain to another anchor with ERR_CHAIN_UNTRUSTED, even one with the same subject', async () => {
    const other = await testPki({ now: NOW });
    const twin = await legacyAnchor({ now: NOW, lifetimeMs: DAY, subjectDer: pki.anchor.cert.subjectDer });
    assert.ok(twin.cert.subjectDer.equals(pki.anchor.cert.subjectDer));
    assert.throws(
      () => verifyChain({ cert: leaf, intermediates: [issuer.cert], anchors: [twin.cert], at: NOW }),
      {
        code: 'ERR_CHAIN_UNTRUSTED',
      },
    );
    assert.throws(
      () =>
        verifyChain({
          cert: leaf,
          intermediates: [issuerOf(other).cert],
          anchors: [pki.anchor.cert],
          at: NOW,
        }),
      { code: 'ERR_CHAIN_UNTRUSTED' },
    );
  });

  it('picks the anchor that signed the issuer when two anchors share a subject (pre-#13 anchors)', async () => {
    const twin = await legacyAnchor({ now: NOW, lifetimeMs: DAY, subjectDer: pki.anchor.cert.subjectDer });
    const path = verifyChain({
      cert: leaf,
      intermediates: [issuer.cert],
      anchors: [twin.cert, pki.anchor.cert],
      at: NOW,
    });
    assert.equal(
      path[2],
      path.find((c) => c.der.equals(pki.anchor.cert.der)),
    );
  });

  it('rejects a chain with a missing intermediate with ERR_CHAIN_UNTRUSTED', () => {
    assert.throws(() => verifyChain({ cert: leaf, anchors: [pki.anchor.cert], at: NOW }), {
      code: 'ERR_CHAIN_UNTRUSTED',
    });
  });

  it('rejects a leaf whose signature was altered with ERR_CHAIN_UNTRUSTED', () => {
    const altered = Buffer.from(leaf);
    altered[altered.length - 1] = (altered[altered.length - 1] as number) ^ 0x01;
    assert.throws(
      () => verifyChain({ cert: altered, intermediates: [issuer.cert], anchors: [pki.anchor.cert], at: NOW }),
      {
        code: 'ERR_CHAIN_UNTRUSTED',
      },
    );
  });

  it('refuses to build a verifier without anchors with ERR_CHAIN_UNTRUSTED', () => {
    assert.throws(() => createChainVerifier({ anchors: [] }), { code: 'ERR_CHAIN_UNTRUSTED' });
  });

  it('rejects a malformed certificate with ERR_CERT_MALFORMED', () => {
    assert.throws(
      () => verifyChain({ cert: Buffer.from([0x30, 0x00]), anchors: [pki.anchor.cert], at: NOW }),
      {
        code: 'ERR_CERT_MALFORMED',
      },
    );
  });

  describe('CA certificates on the path', () => {
    it('rejects a leaf whose issuer has expired with ERR_CERT_EXPIRED', async () => {
      const shortLived = await testPki({ now: NOW, issuerLifetimeMs: HOUR });
      const east = issuerOf(shortLived);
      const longLeaf = directLeaf(east, { notAfter: new Date(NOW.getTime() + DAY) });
      const clock = new FakeClock(NOW);
      const verifier = createChainVerifier({ anchors: [shortLived.anchor.cert], intermediates: [east.cert] });
      assert.equal(verifier.verify(longLeaf, clock.now()).length, 3);
      clock.advance(2 * HOUR);
      assert.throws(() => verifier.verify(longLeaf, clock.now()), { code: 'ERR_CERT_EXPIRED' });
    });

    it('rejects a leaf whose anchor has expired with ERR_CERT_EXPIRED', async () => {
      const shortAnchor = await testPki({ now: NOW, anchorLifetimeMs: 2 * HOUR });
      const east = issuerOf(shortAnchor);
      const longLeaf = directLeaf(east, { notAfter: new Date(NOW.getTime() + DAY) });
      assert.throws(
        () =>
          verifyChain({
            cert: longLeaf,
            intermediates: [east.cert],
            anchors: [shortAnchor.anchor.cert],
            at: new Date(NOW.getTime() + 3 * HOUR),
          }),
        { code: 'ERR_CERT_EXPIRED' },
      );
    });

    it('rejects a leaf whose issuer is not yet valid with ERR_CERT_NOT_YET_VALID', () => {
      const early = directLeaf(issuer, { notBefore: new Date(NOW.getTime() - DAY) });
      assert.throws(
        () =>
          verifyChain({
            cert: early,
            intermediates: [issuer.cert],
            anchors: [pki.anchor.cert],
            at: new Date(NOW.getTime() - HOUR),
          }),
        { code: 'ERR_CERT_NOT_YET_VALID' },
      );
    });

    it('rejects a non-CA certificate in the middle with ERR_NOT_CA, as openssl does', async () => {
      const signer = await newSigner();
      const middle: TestCa = {
        signer,
        cert: await createTestCertificate({
          issuer: pki.anchor,
          subjectSigner: signer,
          commonName: 'not-a-ca.example',
          notBefore: new Date(NOW.getTime() - HOUR),
          notAfter: new Date(NOW.getTime() + DAY),
          isCa: false,
          keyUsage: x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature,
        }),
      };
      const below = directLeaf(middle);
      assert.throws(
        () => verifyChain({ cert: below, intermediates: [middle.cert], anchors: [pki.anchor.cert], at: NOW }),
        {
          code: 'ERR_NOT_CA',
        },
      );
      const r = opensslVerify({
        leaf: below,
        intermediates: [middle.cert.der],
        anchors: [pki.anchor.cert.der],
        purpose: 'sslserver',
        atSeconds: NOW.getTime() / 1000,
      });
      assert.equal(r.ok, false);
    });

    it('rejects a certificate signed by a workload leaf with ERR_NOT_CA', async () => {
      const signer = await newSigner();
      const workload: TestCa = {
        signer,
        cert: parseCertificate(directLeaf(issuer, { spki: signer.publicKeyDer })),
      };
      const below = directLeaf(workload);
      assert.throws(
        () =>
          verifyChain({
            cert: below,
            intermediates: [workload.cert, issuer.cert],
            anchors: [pki.anchor.cert],
            at: NOW,
          }),
        { code: 'ERR_NOT_CA' },
      );
    });

    it('rejects a CA certificate without keyCertSign with ERR_NOT_CA', async () => {
      const signer = await newSigner();
      const middle: TestCa = {
        signer,
        cert: await createTestCertificate({
          issuer: pki.anchor,
          subjectSigner: signer,
          commonName: 'no-cert-sign.example',
          notBefore: new Date(NOW.getTime() - HOUR),
          notAfter: new Date(NOW.getTime() + DAY),
          isCa: true,
          keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.cRLSign,
        }),
      };
      assert.throws(
        () =>
          verifyChain({
            cert: directLeaf(middle),
            intermediates: [middle.cert],
            anchors: [pki.anchor.cert],
            at: NOW,
          }),
        { code: 'ERR_NOT_CA' },
      );
    });

    it('rejects a CA below the pathlen:0 issuer with ERR_CHAIN_UNTRUSTED, as openssl does', async () => {
      const signer = await newSigner();
      const sub: TestCa = {
        signer,
        cert: await createTestCertificate({
          issuer,
          subjectSigner: signer,
          commonName: 'sub.example',
          notBefore: new Date(NOW.getTime() - HOUR),
          notAfter: new Date(NOW.getTime() + DAY),
          isCa: true,
        }),
      };
      const below = directLeaf(sub);
      assert.throws(
        () =>
          verifyChain({
            cert: below,
            intermediates: [sub.cert, issuer.cert],
            anchors: [pki.anchor.cert],
            at: NOW,
          }),
        { code: 'ERR_CHAIN_UNTRUSTED' },
      );
      const r = opensslVerify({
        leaf: below,
        intermediates: [sub.cert.der, issuer.cert.der],
        anchors: [pki.anchor.cert.der],
        purpose: 'sslserver',
        atSeconds: NOW.getTime() / 1000,
      });
      assert.equal(r.ok, false);
    });
  });

  describe('name constraints', () => {
    let constrained: TestPki;
    before(async () => {
      constrained = await testPki({ now: NOW, permitDns: ['cluster.local'], permitSpiffe: 'cluster.local' });
    });

    function verifyLeaf(der: Buffer): CertificateInfo[] {
      return verifyChain({
        cert: der,
        intermediates: [issuerOf(constrained).cert],
        anchors: [constrained.anchor.cert],
        at: NOW,
      });
    }

    it('accepts a leaf inside the permitted subtrees', () => {
      assert.equal(verifyLeaf(directLeaf(issuerOf(constrained))).length, 3);
    });

    it('rejects a DNS name outside the permitted subtree with ERR_NAME_CONSTRAINTS', () => {
      for (const dnsName of [
        'web.default.serviceaccount.identity.linkerd.evil.example',
        'web.default.serviceaccount.identity.linkerd.evilcluster.local',
      ]) {
        assert.throws(() => verifyLeaf(directLeaf(issuerOf(constrained), { dnsName })), {
          code: 'ERR_NAME_CONSTRAINTS',
        });
      }
    });

    it('rejects a SPIFFE ID outside the permitted subtree with ERR_NAME_CONSTRAINTS', () => {
      for (const uri of [
        'spiffe://evil.example/ns/default/sa/web',
        'spiffe://sub.cluster.local/ns/default/sa/web',
      ]) {
        assert.throws(() => verifyLeaf(directLeaf(issuerOf(constrained), { uri })), {
          code: 'ERR_NAME_CONSTRAINTS',
        });
      }
    });
  });
});

describe('checkValidity', () => {
  it('is inclusive at both ends', async () => {
    const pki = await testPki({ now: NOW });
    const cert = pki.anchor.cert;
    checkValidity(cert, cert.notBefore, 'anchor');
    checkValidity(cert, cert.notAfter, 'anchor');
    assert.throws(
      () => {
        checkValidity(cert, new Date(cert.notBefore.getTime() - 1), 'anchor');
      },
      { code: 'ERR_CERT_NOT_YET_VALID' },
    );
    assert.throws(
      () => {
        checkValidity(cert, new Date(cert.notAfter.getTime() + 1), 'anchor');
      },
      { code: 'ERR_CERT_EXPIRED' },
    );
  });
});

describe('name constraint matching', () => {
  it('dnsWithin matches the base and names under it, case-insensitively, on label boundaries', () => {
    assert.equal(dnsWithin('cluster.local', 'cluster.local'), true);
    assert.equal(dnsWithin('a.b.cluster.local', 'cluster.local'), true);
    assert.equal(dnsWithin('A.Cluster.Local', 'cluster.LOCAL'), true);
    assert.equal(dnsWithin('a.cluster.local', '.cluster.local'), true);
    assert.equal(dnsWithin('evilcluster.local', 'cluster.local'), false);
    assert.equal(dnsWithin('cluster.local.evil', 'cluster.local'), false);
    assert.equal(dnsWithin('anything.example', ''), true);
  });

  it('uriHostWithin matches a host exactly, or hosts under a ".domain" base', () => {
    assert.equal(uriHostWithin('cluster.local', 'cluster.local'), true);
    assert.equal(uriHostWithin('Cluster.Local', 'cluster.local'), true);
    assert.equal(uriHostWithin('a.cluster.local', 'cluster.local'), false);
    assert.equal(uriHostWithin('a.cluster.local', '.cluster.local'), true);
    assert.equal(uriHostWithin('cluster.local', '.cluster.local'), false);
    assert.equal(uriHostWithin('evilcluster.local', '.cluster.local'), false);
  });
});

describe('post-sign check of a freshly built leaf (verifyIssued)', () => {
  it('accepts the leaf the template signed and refuses one whose signature or window is wrong', async () => {
    const { systemClock: clock, createLeafTemplate: template } = await import('../../ca/index.js');
    const { createKeyObjectSigner: signerOf, generateKey: gen } = await import('../../ca/keys/index.js');
    const { testPki: mk } = await import('../support/pki.js');
    const now = clock.now();
    const pki = await mk({ now });
    const east = pki.issuers.east;
    assert.ok(east !== undefined);
    const leafKey = signerOf(await gen('p256'));
    const leaf = template(east.cert, east.signer).sign({
      spki: leafKey.publicKeyDer,
      dnsName: 'web.default.serviceaccount.identity.linkerd.cluster.local',
      uri: 'spiffe://cluster.local/ns/default/sa/web',
      notBefore: new Date(now.getTime() - 1000),
      notAfter: new Date(now.getTime() + 3_600_000),
    });
    const v = east.credential.verifier;
    v.verifyIssued(leaf, east.cert, 'sha256', now);
    const flipped = Buffer.from(leaf.signature);
    flipped.writeUInt8((flipped.at(-1) as number) ^ 1, flipped.length - 1);
    assert.throws(
      () => {
        v.verifyIssued({ ...leaf, signature: flipped }, east.cert, 'sha256', now);
      },
      {
        code: 'ERR_CHAIN_UNTRUSTED',
      },
    );
    assert.throws(
      () => {
        v.verifyIssued(leaf, east.cert, 'sha256', new Date(now.getTime() + 7_200_000));
      },
      {
        code: 'ERR_CERT_NOT_YET_VALID',
      },
    );
  });
});
