import assert from 'node:assert/strict';
import { verify } from 'node:crypto';
import { before, describe, it } from 'node:test';
import {
  DEFAULT_IDENTITY_DOMAIN,
  DEFAULT_LEAF_POLICY,
  DEFAULTS,
  createIssuerCredential,
  createLeafTemplate,
  encodePem,
  parseCertificate,
  workloadIdentity,
  type CertificateInfo,
  type IssuedLeaf,
  type IssuerCredential,
} from '../../ca/index.js';
import { createAnchorCertificate, createIssuerCertificate, keyIdentifier } from '../../ca/profiles.js';
import { createKeyObjectSigner, generateKey, type KeyAlgorithm, type Signer } from '../../ca/keys/index.js';
import { issueForCsr } from '../../ca/credential.js';
import { parseCsr } from '../../ca/csr.js';
import { TAG, children, content, readRoot, type Tlv } from '../../ca/der/reader.js';
import { HOUR } from '../support/clock.js';
import {
  extensionBlock,
  opensslText,
  opensslVerify,
  parseOpensslText,
  type OpensslCertText,
} from '../support/openssl.js';
import { makeCsr, spkiOf, testPki } from '../support/pki.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const NOW_S = NOW.getTime() / 1000;
const SKEW_MS = DEFAULTS.clockSkewMs;
const ANCHOR_KEYS: readonly KeyAlgorithm[] = ['p256', 'p384', 'rsa2048', 'rsa3072', 'rsa4096'];
const ISSUER_KEYS: readonly KeyAlgorithm[] = ['p256', 'p384'];
const WEB = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'web' });

const EXT = {
  bc: 'X509v3 Basic Constraints',
  ku: 'X509v3 Key Usage',
  eku: 'X509v3 Extended Key Usage',
  ski: 'X509v3 Subject Key Identifier',
  aki: 'X509v3 Authority Key Identifier',
  san: 'X509v3 Subject Alternative Name',
  nc: 'X509v3 Name Constraints',
} as const;

const SIGNATURE_NAME: Record<KeyAlgorithm, string> = {
  p256: 'ecdsa-with-SHA256',
  p384: 'ecdsa-with-SHA384',
  rsa2048: 'sha256WithRSAEncryption',
  rsa3072: 'sha256WithRSAEncryption',
  rsa4096: 'sha256WithRSAEncryption',
};

/** An anchor's subject as openssl prints it: the CN, then serialNumber = the first 16 hex digits of its SKI. */
function anchorSubject(cn: string, anchor: CertificateInfo): string {
  const ski = keyIdentifier(anchor.spki).toString('hex').toUpperCase();
  return `CN = ${cn}, serialNumber = ${ski.slice(0, 16)}`;
}

/** The serialNumber INTEGER's content bytes as hex, read straight from the DER (cheaper than a full parse). */
function serialOf(der: Buffer): string {
  const tbs = children(readRoot(der))[0] as Tlv;
  const serial = children(tbs)[1] as Tlv;
  assert.equal(serial.tag, TAG.INTEGER);
  return content(serial).toString('hex');
}

/** "AB:CD:…", as openssl prints key identifiers. */
function colonHex(b: Buffer): string {
  return (b.toString('hex').toUpperCase().match(/../g) ?? []).join(':');
}

function ext(text: string, name: string): { critical: boolean; value: string } {
  const block = extensionBlock(text, name);
  assert.ok(block, `${name} is present`);
  return block;
}

function keyIdOf(text: string, name: string): string {
  return ext(text, name).value.replace(/^keyid:/, '');
}

function assertExtensions(fields: OpensslCertText, expected: readonly string[]): void {
  assert.deepEqual([...fields.extensions].sort(), [...expected].sort());
}

function signatureAlgorithmOf(text: string): string {
  const m = /Signature Algorithm: (\S+)/.exec(text);
  assert.ok(m);
  return m[1] as string;
}

function verifyBothPurposes(
  leaf: IssuedLeaf | { der: Buffer },
  intermediates: Buffer[],
  anchor: Buffer,
): void {
  for (const purpose of ['sslserver', 'sslclient'] as const) {
    const r = opensslVerify({ leaf: leaf.der, intermediates, anchors: [anchor], purpose, atSeconds: NOW_S });
    assert.ok(r.ok, `openssl verify -purpose ${purpose}: ${r.stdout}${r.stderr}`);
  }
}

describe('certificate profiles', () => {
  const signers = new Map<KeyAlgorithm, Signer>();
  const anchors = new Map<KeyAlgorithm, CertificateInfo>();

  before(async () => {
    // Every key type once (RSA-4096 generation is the slow part of the whole suite).
    const algs = [...new Set([...ANCHOR_KEYS, ...ISSUER_KEYS])];
    const keys = await Promise.all(algs.map((alg) => generateKey(alg)));
    keys.forEach((key, i) => signers.set(algs[i] as KeyAlgorithm, createKeyObjectSigner(key)));
    for (const alg of ANCHOR_KEYS) {
      anchors.set(alg, await createAnchorCertificate({ signer: signerOf(alg), now: NOW }));
    }
  });

  function signerOf(alg: KeyAlgorithm): Signer {
    const s = signers.get(alg);
    assert.ok(s);
    return s;
  }
  function anchorOf(alg: KeyAlgorithm): CertificateInfo {
    const a = anchors.get(alg);
    assert.ok(a);
    return a;
  }

  async function issuerUnder(
    anchorAlg: KeyAlgorithm,
    issuerAlg: KeyAlgorithm,
    extra: { permitDns?: readonly string[]; permitSpiffe?: string } = {},
  ): Promise<{ cert: CertificateInfo; credential: IssuerCredential }> {
    const signer = signerOf(issuerAlg);
    const anchor = anchorOf(anchorAlg);
    const cert = await createIssuerCertificate({
      anchor,
      anchorSigner: signerOf(anchorAlg),
      issuerPublicKeyDer: signer.publicKeyDer,
      now: NOW,
      cluster: 'east',
      ...extra,
    });
    const credential = createIssuerCredential({
      certificatePem: encodePem('CERTIFICATE', cert.der),
      signer,
      anchorsPem: encodePem('CERTIFICATE', anchor.der),
      now: NOW,
    });
    return { cert, credential };
  }

  async function leafFrom(credential: IssuerCredential): Promise<{ leaf: IssuedLeaf; spki: Buffer }> {
    const { der } = await makeCsr({ dns: [WEB.dns] });
    const csr = parseCsr(der);
    return {
      leaf: issueForCsr(credential, { csr, identity: WEB, policy: DEFAULT_LEAF_POLICY, now: NOW }),
      spki: csr.spki,
    };
  }

  describe('trust anchor', () => {
    for (const alg of ANCHOR_KEYS) {
      it(`a ${alg} anchor is a self-signed v3 CA with critical CA:TRUE and keyCertSign + cRLSign`, () => {
        const anchor = anchorOf(alg);
        const text = opensslText(anchor.der);
        const fields = parseOpensslText(text);
        assert.equal(fields.version, 3);
        assert.equal(fields.subject, anchorSubject(DEFAULTS.anchorCommonName, anchor));
        assert.equal(fields.issuer, fields.subject);
        assert.equal(signatureAlgorithmOf(text), SIGNATURE_NAME[alg]);
        assert.ok(
          verify(alg === 'p384' ? 'sha384' : 'sha256', anchor.tbs, anchor.publicKey, anchor.signature),
          'the self-signature verifies with the anchor key',
        );
        assertExtensions(fields, [EXT.bc, EXT.ku, EXT.ski, EXT.aki]);
        assert.deepEqual(ext(text, EXT.bc), { critical: true, value: 'CA:TRUE' });
        assert.deepEqual(ext(text, EXT.ku), { critical: true, value: 'Certificate Sign, CRL Sign' });
        const ski = ext(text, EXT.ski);
        assert.equal(ski.critical, false);
        assert.equal(ski.value, colonHex(keyIdentifier(anchor.spki)));
        assert.equal(ext(text, EXT.aki).critical, false);
        assert.equal(keyIdOf(text, EXT.aki), ski.value);
      });
    }

    it('defaults to CN root.linkerd.cluster.local, notBefore now − 20 s and a lifetime of 87600h', () => {
      const fields = parseOpensslText(opensslText(anchorOf('p256').der));
      assert.equal(DEFAULTS.anchorCommonName, 'root.linkerd.cluster.local');
      assert.equal(fields.notBefore.getTime(), NOW.getTime() - SKEW_MS);
      assert.equal(fields.notAfter.getTime(), NOW.getTime() + 87_600 * HOUR);
    });

    it('takes a custom common name and lifetime', async () => {
      const anchor = await createAnchorCertificate({
        signer: signerOf('p256'),
        now: NOW,
        commonName: 'root.east.example',
        lifetimeMs: 48 * HOUR,
      });
      const fields = parseOpensslText(opensslText(anchor.der));
      assert.equal(fields.subject, anchorSubject('root.east.example', anchor));
      assert.equal(fields.notAfter.getTime(), NOW.getTime() + 48 * HOUR);
    });

    it('refuses an empty or over-long common name and a non-positive lifetime', async () => {
      const signer = signerOf('p256');
      for (const commonName of ['', 'x'.repeat(65), 'a\nb']) {
        await assert.rejects(createAnchorCertificate({ signer, now: NOW, commonName }), {
          code: 'ERR_USAGE',
        });
      }
      for (const lifetimeMs of [0, -HOUR, Number.NaN]) {
        await assert.rejects(createAnchorCertificate({ signer, now: NOW, lifetimeMs }), {
          code: 'ERR_USAGE',
        });
      }
    });
  });

  describe('issuer', () => {
    for (const anchorAlg of ANCHOR_KEYS) {
      for (const issuerAlg of ISSUER_KEYS) {
        it(`a ${issuerAlg} issuer under a ${anchorAlg} anchor is a critical CA:TRUE pathlen:0 CA keyed to the anchor`, async () => {
          const anchor = anchorOf(anchorAlg);
          const { cert } = await issuerUnder(anchorAlg, issuerAlg);
          const text = opensslText(cert.der);
          const fields = parseOpensslText(text);
          assert.equal(fields.version, 3);
          assert.equal(fields.subject, `CN = ${DEFAULTS.issuerCommonName}, OU = east`);
          assert.equal(fields.issuer, anchorSubject(DEFAULTS.anchorCommonName, anchor));
          assert.ok(
            cert.issuerDer.equals(anchor.subjectDer),
            'the issuer name is the anchor subject, byte for byte',
          );
          assert.equal(signatureAlgorithmOf(text), SIGNATURE_NAME[anchorAlg]);
          assertExtensions(fields, [EXT.bc, EXT.ku, EXT.ski, EXT.aki]);
          assert.deepEqual(ext(text, EXT.bc), { critical: true, value: 'CA:TRUE, pathlen:0' });
          assert.deepEqual(ext(text, EXT.ku), { critical: true, value: 'Certificate Sign, CRL Sign' });
          assert.deepEqual(ext(text, EXT.ski), {
            critical: false,
            value: colonHex(keyIdentifier(signerOf(issuerAlg).publicKeyDer)),
          });
          assert.equal(ext(text, EXT.aki).critical, false);
          assert.equal(keyIdOf(text, EXT.aki), colonHex(anchor.subjectKeyId as Buffer));
          assert.equal(fields.notBefore.getTime(), NOW.getTime() - SKEW_MS);
          assert.equal(fields.notAfter.getTime(), NOW.getTime() + 8_760 * HOUR);
        });

        it(`a leaf from a ${issuerAlg} issuer under a ${anchorAlg} anchor verifies with openssl as server and client`, async () => {
          const { credential } = await issuerUnder(anchorAlg, issuerAlg);
          const { leaf } = await leafFrom(credential);
          assert.equal(signatureAlgorithmOf(opensslText(leaf.der)), SIGNATURE_NAME[issuerAlg]);
          verifyBothPurposes(leaf, [...leaf.intermediates], anchorOf(anchorAlg).der);
        });
      }
    }

    it('caps the issuer lifetime at the anchor notAfter', async () => {
      const anchorSigner = signerOf('p256');
      const anchor = await createAnchorCertificate({
        signer: anchorSigner,
        now: NOW,
        lifetimeMs: 30 * 24 * HOUR,
      });
      const issuer = await createIssuerCertificate({
        anchor,
        anchorSigner,
        issuerPublicKeyDer: signerOf('p384').publicKeyDer,
        now: NOW,
        cluster: 'east',
      });
      assert.equal(issuer.notAfter.getTime(), anchor.notAfter.getTime());
      const fields = parseOpensslText(opensslText(issuer.der));
      assert.equal(fields.notAfter.getTime(), NOW.getTime() + 30 * 24 * HOUR);
    });

    it('never back-dates the issuer before its anchor', async () => {
      const anchorSigner = signerOf('p256');
      const anchor = await createAnchorCertificate({ signer: anchorSigner, now: NOW, clockSkewMs: 0 });
      const issuer = await createIssuerCertificate({
        anchor,
        anchorSigner,
        issuerPublicKeyDer: signerOf('p384').publicKeyDer,
        now: NOW,
        cluster: 'east',
      });
      assert.equal(issuer.notBefore.getTime(), NOW.getTime());
    });

    it('refuses an anchor key that does not match, an anchor that is not valid now, and a non-CA anchor', async () => {
      const anchor = anchorOf('p256');
      const base = { anchor, issuerPublicKeyDer: signerOf('p384').publicKeyDer, now: NOW, cluster: 'east' };
      await assert.rejects(createIssuerCertificate({ ...base, anchorSigner: signerOf('p384') }), {
        code: 'ERR_KEY_MISMATCH',
      });
      const anchorSigner = signerOf('p256');
      await assert.rejects(
        createIssuerCertificate({ ...base, anchorSigner, now: new Date(anchor.notAfter.getTime() + 1000) }),
        { code: 'ERR_CERT_EXPIRED' },
      );
      await assert.rejects(
        createIssuerCertificate({ ...base, anchorSigner, now: new Date(anchor.notBefore.getTime() - 1000) }),
        { code: 'ERR_CERT_NOT_YET_VALID' },
      );
      const { credential } = await issuerUnder('p256', 'p256');
      const { leaf } = await leafFrom(credential);
      await assert.rejects(
        createIssuerCertificate({ ...base, anchorSigner, anchor: parseCertificate(leaf.der) }),
        {
          code: 'ERR_NOT_CA',
        },
      );
    });

    it('refuses name constraints that are not DNS names', async () => {
      const base = {
        anchor: anchorOf('p256'),
        anchorSigner: signerOf('p256'),
        issuerPublicKeyDer: signerOf('p384').publicKeyDer,
        now: NOW,
        cluster: 'east',
      };
      await assert.rejects(createIssuerCertificate({ ...base, permitDns: ['Not A Name'] }), {
        code: 'ERR_USAGE',
      });
      await assert.rejects(createIssuerCertificate({ ...base, permitSpiffe: 'spiffe://x' }), {
        code: 'ERR_USAGE',
      });
    });

    describe('with name constraints', () => {
      let cert: CertificateInfo;
      let signer: Signer;
      const anchorDer = (): Buffer => anchorOf('p256').der;

      before(async () => {
        signer = signerOf('p256');
        cert = (
          await issuerUnder('p256', 'p256', { permitDns: ['.cluster.local'], permitSpiffe: 'cluster.local' })
        ).cert;
      });

      function directLeaf(dnsName: string, uri: string): Buffer {
        return createLeafTemplate(cert, signer).sign({
          spki: spkiOf(),
          dnsName,
          uri,
          notBefore: new Date(NOW.getTime() - SKEW_MS),
          notAfter: new Date(NOW.getTime() + HOUR),
        }).der;
      }

      function expectSubtreeViolation(leaf: Buffer): void {
        for (const purpose of ['sslserver', 'sslclient'] as const) {
          const r = opensslVerify({
            leaf,
            intermediates: [cert.der],
            anchors: [anchorDer()],
            purpose,
            atSeconds: NOW_S,
          });
          assert.equal(r.ok, false, 'openssl rejects the leaf');
          assert.match(r.stdout + r.stderr, /permitted subtree violation/);
        }
      }

      it('carries a critical Name Constraints extension with the permitted DNS and URI subtrees', () => {
        const text = opensslText(cert.der);
        assertExtensions(parseOpensslText(text), [EXT.bc, EXT.ku, EXT.ski, EXT.aki, EXT.nc]);
        assert.deepEqual(ext(text, EXT.nc), {
          critical: true,
          value: 'Permitted:\nDNS:cluster.local\nURI:cluster.local',
        });
      });

      it('lets openssl accept a leaf inside the subtrees', () => {
        verifyBothPurposes({ der: directLeaf(WEB.dns, WEB.spiffeId) }, [cert.der], anchorDer());
      });

      it('makes openssl reject a leaf whose DNS name is outside the permitted subtree', () => {
        expectSubtreeViolation(
          directLeaf('web.default.serviceaccount.identity.linkerd.evil.example', WEB.spiffeId),
        );
      });

      it('makes openssl reject a leaf whose SPIFFE ID is outside the permitted subtree', () => {
        expectSubtreeViolation(directLeaf(WEB.dns, 'spiffe://evil.example/ns/default/sa/web'));
      });
    });
  });

  describe('workload leaf', () => {
    for (const issuerAlg of ISSUER_KEYS) {
      it(`a leaf from a ${issuerAlg} issuer has exactly the leaf profile's fields and extensions`, async () => {
        const { cert, credential } = await issuerUnder('p256', issuerAlg);
        const { leaf, spki } = await leafFrom(credential);
        const text = opensslText(leaf.der);
        const fields = parseOpensslText(text);
        assert.equal(fields.version, 3);
        assert.equal(fields.subject, '');
        assert.equal(fields.issuer, `CN = ${DEFAULTS.issuerCommonName}, OU = east`);
        assertExtensions(fields, [EXT.bc, EXT.ku, EXT.eku, EXT.aki, EXT.ski, EXT.san]);
        assert.deepEqual(ext(text, EXT.san), {
          critical: true,
          value: `DNS:${WEB.dns}, URI:${WEB.spiffeId}`,
        });
        assert.deepEqual(ext(text, EXT.bc), { critical: true, value: 'CA:FALSE' });
        assert.deepEqual(ext(text, EXT.ku), { critical: true, value: 'Digital Signature' });
        assert.deepEqual(ext(text, EXT.eku), {
          critical: false,
          value: 'TLS Web Server Authentication, TLS Web Client Authentication',
        });
        assert.equal(ext(text, EXT.aki).critical, false);
        assert.equal(keyIdOf(text, EXT.aki), colonHex(cert.subjectKeyId as Buffer));
        assert.deepEqual(ext(text, EXT.ski), { critical: false, value: colonHex(keyIdentifier(spki)) });

        const parsed = parseCertificate(leaf.der);
        assert.ok(parsed.spki.equals(spki), 'the leaf carries the CSR key');
        assert.equal(parsed.serialHex.length, 32, '16-byte serial');
        assert.ok(parseInt(parsed.serialHex.slice(0, 2), 16) > 0, 'no leading zero octet');
        assert.ok(parseInt(parsed.serialHex.slice(0, 2), 16) < 0x80, 'positive');
        assert.equal(fields.serialHex, parsed.serialHex);
        assert.equal(leaf.serialHex, parsed.serialHex);

        assert.equal(fields.notBefore.getTime(), NOW.getTime() - SKEW_MS);
        assert.equal(fields.notAfter.getTime(), NOW.getTime() + 24 * HOUR + SKEW_MS);
        assert.deepEqual(leaf.notBefore, fields.notBefore);
        assert.deepEqual(leaf.notAfter, fields.notAfter);
      });
    }

    it('a leaf from either of two issuers under one anchor verifies against that anchor', async () => {
      const pki = await testPki({ now: NOW, clusters: ['east', 'west'] });
      const east = pki.issuers.east;
      const west = pki.issuers.west;
      assert.ok(east && west);
      const eastLeaf = (await leafFrom(east.credential)).leaf;
      const westLeaf = (await leafFrom(west.credential)).leaf;
      verifyBothPurposes(eastLeaf, [east.cert.der], pki.anchor.cert.der);
      verifyBothPurposes(westLeaf, [west.cert.der], pki.anchor.cert.der);
      verifyBothPurposes(eastLeaf, [west.cert.der, east.cert.der], pki.anchor.cert.der);
      const crossed = opensslVerify({
        leaf: eastLeaf.der,
        intermediates: [west.cert.der],
        anchors: [pki.anchor.cert.der],
        purpose: 'sslserver',
        atSeconds: NOW_S,
      });
      assert.equal(crossed.ok, false, 'an east leaf does not chain through the west issuer');
    });

    it("never outlives its issuer: an issuer expiring in 1 h caps the leaf's notAfter", async () => {
      const pki = await testPki({ now: NOW, issuerLifetimeMs: HOUR });
      const east = pki.issuers.east;
      assert.ok(east);
      for (const minutes of [0, 10, 30, 59]) {
        const now = new Date(NOW.getTime() + minutes * 60_000);
        const { der } = await makeCsr({ dns: [WEB.dns] });
        const leaf = issueForCsr(east.credential, {
          csr: parseCsr(der),
          identity: WEB,
          policy: DEFAULT_LEAF_POLICY,
          now,
        });
        const fields = parseOpensslText(opensslText(leaf.der));
        assert.equal(fields.notAfter.getTime(), east.cert.notAfter.getTime());
        assert.equal(fields.notAfter.getTime(), NOW.getTime() + HOUR);
        assert.equal(fields.notBefore.getTime(), now.getTime() - SKEW_MS);
      }
    });

    it('gives 10,000 leaves 10,000 distinct positive 16-byte serials', async () => {
      const { cert } = await issuerUnder('p256', 'p256');
      const template = createLeafTemplate(cert, signerOf('p256'));
      const spki = spkiOf();
      const serials = new Set<string>();
      for (let i = 0; i < 10_000; i++) {
        const leaf = template.sign({
          spki,
          dnsName: WEB.dns,
          uri: WEB.spiffeId,
          notBefore: NOW,
          notAfter: new Date(NOW.getTime() + HOUR),
        });
        const serialHex = serialOf(leaf.der);
        assert.equal(serialHex, leaf.serialHex);
        assert.match(serialHex, /^(0[1-9a-f]|[1-7][0-9a-f])[0-9a-f]{30}$/);
        serials.add(serialHex);
      }
      assert.equal(serials.size, 10_000);
    });
  });
});
