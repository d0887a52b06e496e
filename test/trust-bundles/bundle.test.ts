import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createAnchorCertificate } from '../../ca/profiles.js';
import { createKeyObjectSigner, generateKey } from '../../ca/keys/index.js';
import { fingerprint, parseCertificate, type CertificateInfo } from '../../ca/index.js';
import { createTrustBundle, normalizeFingerprint, parseTrustBundle } from '../../trust-bundles/bundle.js';
import { openssl } from '../support/openssl.js';
import { testPki, type TestPki } from '../support/pki.js';
import {
  FINGERPRINT_FORMAT,
  NOW,
  anchorsAt,
  certPem,
  eastIssuer,
  hasCode,
  issuedLeafDer,
  nonCaCertificate,
  permutations,
  privateKeyPem,
  withPemHeaders,
} from './fixtures.js';

describe('TrustBundle', () => {
  // a, b, c: notBefore one day apart; twin: same notBefore as a (order falls back to the fingerprint)
  let a: TestPki;
  let b: TestPki;
  let c: TestPki;
  let twin: TestPki;
  let rsa: TestPki;
  let leafPem: string;
  let nonCa: CertificateInfo;
  before(async () => {
    [a, b, c, twin] = (await anchorsAt([0, 1, 2, 0])) as [TestPki, TestPki, TestPki, TestPki];
    rsa = await testPki({ now: NOW, anchorKey: 'rsa2048' });
    leafPem = certPem(await issuedLeafDer(a));
    nonCa = await nonCaCertificate(a);
  });

  describe('parseTrustBundle: strict input', () => {
    it('accepts CERTIFICATE blocks of CA certificates', () => {
      const bundle = parseTrustBundle(a.anchorsPem + b.anchorsPem + rsa.anchorsPem, 'test');
      assert.equal(bundle.anchors.length, 3);
      for (const pki of [a, b, rsa]) {
        assert.ok(bundle.anchors.some((x) => x.certificate.der.equals(pki.anchor.cert.der)));
      }
    });

    it('ignores text between blocks (openssl-style comments)', () => {
      const bundle = parseTrustBundle(
        `# roots\nsubject=CN x\n${a.anchorsPem}\nnotes\n${b.anchorsPem}`,
        'test',
      );
      assert.equal(bundle.anchors.length, 2);
    });

    it('folds the same anchor given twice into one anchor', () => {
      const bundle = parseTrustBundle(a.anchorsPem + a.anchorsPem, 'test');
      assert.equal(bundle.anchors.length, 1);
      assert.equal(bundle.toPem(), a.anchorsPem);
    });

    it('folds duplicates that are not adjacent in the input', () => {
      const bundle = parseTrustBundle(a.anchorsPem + b.anchorsPem + a.anchorsPem + b.anchorsPem, 'test');
      assert.equal(bundle.anchors.length, 2);
    });

    it('refuses a PRIVATE KEY block wherever it appears (first, middle, last, alone)', () => {
      const key = privateKeyPem(a);
      for (const text of [
        key + a.anchorsPem + b.anchorsPem,
        a.anchorsPem + key + b.anchorsPem,
        a.anchorsPem + b.anchorsPem + key,
        key,
      ]) {
        assert.throws(() => parseTrustBundle(text, 'test'), hasCode('ERR_PEM_UNEXPECTED_TYPE'));
      }
    });

    it('refuses any other block type (EC PRIVATE KEY, PUBLIC KEY, CERTIFICATE REQUEST)', () => {
      const body = a.anchorsPem.split('\n').slice(1, -2).join('\n');
      for (const label of ['EC PRIVATE KEY', 'PUBLIC KEY', 'CERTIFICATE REQUEST', 'TRUSTED CERTIFICATE']) {
        const block = `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
        assert.throws(
          () => parseTrustBundle(a.anchorsPem + block, 'test'),
          hasCode('ERR_PEM_UNEXPECTED_TYPE'),
          label,
        );
      }
    });

    it('refuses a block with PEM headers (Proc-Type: 4,ENCRYPTED)', () => {
      assert.throws(() => parseTrustBundle(withPemHeaders(a.anchorsPem), 'test'), hasCode('ERR_PEM_HEADERS'));
      assert.throws(
        () => parseTrustBundle(a.anchorsPem + withPemHeaders(b.anchorsPem), 'test'),
        hasCode('ERR_PEM_HEADERS'),
      );
    });

    it('refuses a workload leaf issued by issueForCsr (CA:FALSE)', () => {
      assert.throws(() => parseTrustBundle(leafPem, 'test'), hasCode('ERR_NOT_CA'));
      assert.throws(() => parseTrustBundle(a.anchorsPem + leafPem, 'test'), hasCode('ERR_NOT_CA'));
    });

    it('refuses a certificate with BasicConstraints CA:FALSE even beside real anchors', () => {
      assert.throws(
        () => parseTrustBundle(a.anchorsPem + certPem(nonCa) + b.anchorsPem, 'test'),
        hasCode('ERR_NOT_CA'),
      );
    });

    it('refuses garbage: no PEM at all, empty input, a truncated block, a non-base64 body', () => {
      const truncated = a.anchorsPem.split('\n').slice(0, 4).join('\n');
      const badBody = '-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n';
      const mismatched = a.anchorsPem.replace('-----END CERTIFICATE-----', '-----END PRIVATE KEY-----');
      for (const text of ['hello, world\n', '', '\n\n', truncated, badBody, mismatched]) {
        assert.throws(
          () => parseTrustBundle(text, 'test'),
          hasCode('ERR_PEM_MALFORMED'),
          JSON.stringify(text),
        );
      }
    });

    it('refuses a CERTIFICATE block whose DER is not a certificate', () => {
      const block = certPem(Buffer.from('3003020105', 'hex'));
      assert.throws(() => parseTrustBundle(block, 'test'), hasCode('ERR_CERT_MALFORMED'));
    });
  });

  describe('createTrustBundle: deterministic order', () => {
    it('serialises the same set to byte-identical PEM whatever the input order', () => {
      const certs = [a, b, c, twin].map((p) => p.anchor.cert);
      const expected = createTrustBundle(certs).toPem();
      for (const order of permutations(certs)) {
        assert.equal(createTrustBundle(order).toPem(), expected);
        assert.equal(createTrustBundle([...order, ...order.slice(0, 2)]).toPem(), expected);
      }
    });

    it('orders anchors by notBefore, then by fingerprint', () => {
      const bundle = createTrustBundle([c, twin, b, a].map((p) => p.anchor.cert));
      const got = bundle.anchors;
      for (let i = 1; i < got.length; i++) {
        const prev = got[i - 1];
        const cur = got[i];
        assert.ok(prev && cur);
        const byTime = prev.notBefore.getTime() - cur.notBefore.getTime();
        assert.ok(byTime < 0 || (byTime === 0 && prev.fingerprint < cur.fingerprint));
      }
      assert.ok(got[3]?.certificate.der.equals(c.anchor.cert.der));
      assert.ok(got[2]?.certificate.der.equals(b.anchor.cert.der));
    });

    it('round-trips toPem() through parseTrustBundle to the same bytes', () => {
      const pem = createTrustBundle([b, rsa, a].map((p) => p.anchor.cert)).toPem();
      assert.equal(parseTrustBundle(pem, 'test').toPem(), pem);
    });

    it('exposes frozen anchors and returns new bundles from add and remove', () => {
      const one = createTrustBundle([a.anchor.cert]);
      const two = one.add([b.anchor.cert]);
      assert.ok(Object.isFrozen(one));
      assert.ok(Object.isFrozen(one.anchors));
      assert.ok(Object.isFrozen(one.anchors[0]));
      assert.equal(one.anchors.length, 1);
      assert.equal(two.anchors.length, 2);
      const back = two.remove(fingerprint(b.anchor.cert.der));
      assert.equal(two.anchors.length, 2);
      assert.equal(back.toPem(), one.toPem());
    });

    it('add ignores anchors already present and refuses a non-CA certificate', () => {
      const bundle = createTrustBundle([a.anchor.cert, b.anchor.cert]);
      assert.equal(bundle.add([b.anchor.cert, a.anchor.cert]).toPem(), bundle.toPem());
      assert.throws(() => bundle.add([nonCa]), hasCode('ERR_NOT_CA'));
      assert.throws(
        () => bundle.add([parseCertificate(eastIssuer(a).cert.der), nonCa]),
        hasCode('ERR_NOT_CA'),
      );
    });
  });

  describe('fingerprints', () => {
    it('are the SHA-256 of the DER exactly as `openssl x509 -fingerprint -sha256` prints it', () => {
      const bundle = createTrustBundle([a, b, rsa].map((p) => p.anchor.cert));
      for (const anchor of bundle.anchors) {
        assert.match(anchor.fingerprint, FINGERPRINT_FORMAT);
        const r = openssl(['x509', '-noout', '-fingerprint', '-sha256'], {
          input: certPem(anchor.certificate),
        });
        assert.ok(r.ok, r.stderr);
        const fromOpenssl = r.stdout.trim().split('=')[1];
        assert.equal(anchor.fingerprint, fromOpenssl);
      }
    });

    it('carry the subject and validity of the anchor', () => {
      const [anchor] = createTrustBundle([a.anchor.cert]).anchors;
      assert.ok(anchor);
      assert.equal(anchor.subject, `CN=${a.anchor.cert.subjectCommonName ?? ''}`);
      assert.deepEqual(anchor.notBefore, a.anchor.cert.notBefore);
      assert.deepEqual(anchor.notAfter, a.anchor.cert.notAfter);
    });

    it('normalise "sha256:", colons and case away', () => {
      assert.equal(normalizeFingerprint('sha256:ab:cd:0e'), 'ABCD0E');
      assert.equal(normalizeFingerprint('SHA256=AB:CD'), 'ABCD');
      assert.equal(normalizeFingerprint('abcd'), 'ABCD');
    });
  });

  describe('find and remove', () => {
    let bundle: ReturnType<typeof createTrustBundle>;
    let fp: string;
    before(() => {
      bundle = createTrustBundle([a, b, c].map((p) => p.anchor.cert));
      fp = fingerprint(b.anchor.cert.der);
      assert.match(fp, FINGERPRINT_FORMAT);
    });

    // a prefix of fp (hex, no colons, even length, at least 6 digits) that no other anchor shares
    const uniquePrefix = (): string => {
      const hex = fp.replaceAll(':', '');
      const others = bundle.anchors.map((x) => x.fingerprint.replaceAll(':', '')).filter((x) => x !== hex);
      for (let n = 6; n <= hex.length; n += 2) {
        const p = hex.slice(0, n);
        if (!others.some((o) => o.startsWith(p))) return p;
      }
      return hex;
    };

    it('finds an anchor by its full fingerprint, with or without colons, in any case', () => {
      for (const q of [
        fp,
        fp.toLowerCase(),
        fp.replaceAll(':', ''),
        `sha256:${fp}`,
        `SHA256:${fp.toLowerCase()}`,
      ]) {
        assert.ok(bundle.find(q)?.certificate.der.equals(b.anchor.cert.der), q);
        assert.equal(bundle.has(q), true);
      }
    });

    it('finds an anchor by a unique prefix, with or without colons', () => {
      const plain = uniquePrefix();
      const colons = (plain.match(/../g) ?? []).join(':');
      assert.ok(fp.startsWith(colons));
      for (const q of [plain, plain.toLowerCase(), colons]) {
        assert.ok(bundle.find(q)?.certificate.der.equals(b.anchor.cert.der), q);
      }
    });

    it('removes an anchor by fingerprint or prefix and leaves the others in order', () => {
      for (const q of [fp, uniquePrefix()]) {
        const next = bundle.remove(q);
        assert.equal(next.anchors.length, 2);
        assert.equal(next.has(fp), false);
        assert.equal(next.toPem(), createTrustBundle([a.anchor.cert, c.anchor.cert]).toPem());
      }
      assert.equal(bundle.anchors.length, 3);
    });

    it('answers "not found" for a fingerprint that is not in the bundle, and remove refuses it', () => {
      const missing = fingerprint(twin.anchor.cert.der);
      assert.equal(bundle.find(missing), undefined);
      assert.equal(bundle.has(missing), false);
      assert.throws(() => bundle.remove(missing), hasCode('ERR_INVALID_REQUEST'));
    });

    it('matches nothing for an empty or non-hex query (it never selects every anchor)', () => {
      const single = createTrustBundle([a.anchor.cert]);
      for (const q of ['', ':', 'sha256:', 'not-a-fingerprint', 'ZZ']) {
        assert.equal(single.find(q), undefined, JSON.stringify(q));
        assert.equal(single.has(q), false, JSON.stringify(q));
        assert.throws(() => single.remove(q), hasCode('ERR_INVALID_REQUEST'), JSON.stringify(q));
      }
    });

    it('refuses a prefix that matches more than one anchor', async () => {
      // generate anchors until two fingerprints share their first hex digit (at most 17 by pigeonhole)
      const certs: CertificateInfo[] = [];
      let shared: string | undefined;
      while (shared === undefined) {
        const signer = createKeyObjectSigner(await generateKey('p256'));
        certs.push(await createAnchorCertificate({ signer, now: NOW }));
        const firsts = createTrustBundle(certs).anchors.map((x) => x.fingerprint.slice(0, 1));
        shared = firsts.find((f, i) => firsts.indexOf(f) !== i);
      }
      const many = createTrustBundle(certs);
      assert.throws(() => many.find(shared), hasCode('ERR_INVALID_REQUEST'));
      assert.throws(() => many.find(shared.toLowerCase()), hasCode('ERR_INVALID_REQUEST'));
      assert.throws(() => many.remove(shared), hasCode('ERR_INVALID_REQUEST'));
    });
  });
});
