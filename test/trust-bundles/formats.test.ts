import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { parse as parseYaml } from 'yaml';
import { type CertificateInfo } from '../../ca/index.js';
import { createTrustBundle, type TrustBundle } from '../../trust-bundles/bundle.js';
import {
  CONFIGMAP_DEFAULTS,
  ISTIO_CONFIGMAP_DEFAULTS,
  parseSpiffeBundle,
  serializeBundle,
  toConfigMap,
  toIstioConfigMap,
  toPemBundle,
  toSpiffeBundle,
  type SpiffeJwk,
} from '../../trust-bundles/formats.js';
import { openssl } from '../support/openssl.js';
import { testPki, type TestPki } from '../support/pki.js';
import { testDir } from '../support/temp-dir.js';
import { NOW, anchorsAt, certPem, eastIssuer, hasCode, issuedLeafDer, nonCaCertificate } from './fixtures.js';

const BASE64URL = /^[A-Za-z0-9_-]+$/;

function onlyKey(doc: { keys: readonly SpiffeJwk[] }): SpiffeJwk {
  assert.equal(doc.keys.length, 1);
  const [k] = doc.keys;
  assert.ok(k);
  return k;
}

interface ConfigMapDoc {
  apiVersion: unknown;
  kind: unknown;
  metadata: { name: unknown; namespace: unknown };
  data: Record<string, unknown>;
}

describe('bundle formats', () => {
  let ec: TestPki;
  let ec2: TestPki;
  let rsa: TestPki;
  let ecBundle: TrustBundle;
  let twoBundle: TrustBundle;
  let rsaBundle: TrustBundle;
  let nonCa: CertificateInfo;
  before(async () => {
    [ec, ec2] = (await anchorsAt([0, 1])) as [TestPki, TestPki];
    rsa = await testPki({ now: NOW, anchorKey: 'rsa2048' });
    ecBundle = createTrustBundle([ec.anchor.cert]);
    twoBundle = createTrustBundle([ec2.anchor.cert, ec.anchor.cert]);
    rsaBundle = createTrustBundle([rsa.anchor.cert]);
    nonCa = await nonCaCertificate(ec);
  });

  describe('PEM (ca-bundle.crt)', () => {
    it('is the bundle in its deterministic order', () => {
      assert.equal(toPemBundle(twoBundle), twoBundle.toPem());
      assert.equal(toPemBundle(twoBundle), createTrustBundle([ec.anchor.cert, ec2.anchor.cert]).toPem());
    });
  });

  describe('SPIFFE trust bundle', () => {
    it('describes an EC anchor as an x509-svid JWK with kty/crv/x/y and one x5c certificate', () => {
      const doc = toSpiffeBundle(ecBundle, { sequence: 7, refreshHintSeconds: 120 });
      const k = onlyKey(doc);
      assert.equal(k.use, 'x509-svid');
      assert.equal(k.kty, 'EC');
      assert.equal(k.crv, 'P-256');
      assert.match(k.x ?? '', BASE64URL);
      assert.match(k.y ?? '', BASE64URL);
      assert.equal(k.n, undefined);
      assert.equal(k.e, undefined);
      assert.equal('kid' in k, false, 'the SPIFFE X509-SVID spec forbids kid');
      assert.equal(doc.spiffe_sequence, 7);
      assert.equal(doc.spiffe_refresh_hint, 120);
    });

    it('describes an RSA anchor with kty RSA and n/e, without EC members', () => {
      const k = onlyKey(toSpiffeBundle(rsaBundle, { sequence: 1, refreshHintSeconds: 300 }));
      assert.equal(k.use, 'x509-svid');
      assert.equal(k.kty, 'RSA');
      assert.match(k.n ?? '', BASE64URL);
      assert.equal(k.e, 'AQAB');
      assert.equal(Buffer.from(k.n ?? '', 'base64url').length, 256, 'a 2048-bit modulus');
      assert.equal(k.crv, undefined);
      assert.equal(k.x, undefined);
      assert.equal(k.y, undefined);
    });

    it('puts exactly the anchor DER in x5c, as standard base64 (not base64url)', () => {
      for (const [bundle, pki] of [
        [ecBundle, ec],
        [rsaBundle, rsa],
      ] as const) {
        const k = onlyKey(toSpiffeBundle(bundle, { sequence: 1, refreshHintSeconds: 300 }));
        assert.equal(k.x5c.length, 1);
        const der = Buffer.from(k.x5c[0], 'base64');
        assert.ok(der.equals(pki.anchor.cert.der));
        assert.equal(k.x5c[0], pki.anchor.cert.der.toString('base64'));
      }
    });

    it('publishes JWK members that import to the anchor certificate’s public key', () => {
      for (const [bundle, pki] of [
        [ecBundle, ec],
        [rsaBundle, rsa],
      ] as const) {
        const k = onlyKey(toSpiffeBundle(bundle, { sequence: 1, refreshHintSeconds: 300 }));
        const jwk = Object.fromEntries(
          Object.entries(k).filter(([name]) => name !== 'use' && name !== 'x5c'),
        );
        const spki = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' });
        assert.ok(spki.equals(pki.anchor.cert.spki));
      }
    });

    it('lists one key per anchor in the bundle order', () => {
      const doc = toSpiffeBundle(twoBundle, { sequence: 1, refreshHintSeconds: 300 });
      assert.deepEqual(
        doc.keys.map((k) => Buffer.from(k.x5c[0], 'base64').toString('hex')),
        twoBundle.anchors.map((a) => a.certificate.der.toString('hex')),
      );
    });

    it('round-trips through JSON and parseSpiffeBundle to the same anchors', () => {
      const mixed = createTrustBundle([ec.anchor.cert, rsa.anchor.cert, ec2.anchor.cert]);
      const text = JSON.stringify(toSpiffeBundle(mixed, { sequence: 3, refreshHintSeconds: 60 }));
      const back = parseSpiffeBundle(text, 'bundle.json');
      assert.equal(back.toPem(), mixed.toPem());
      assert.deepEqual(
        back.anchors.map((a) => a.fingerprint),
        mixed.anchors.map((a) => a.fingerprint),
      );
    });

    it('reads only x509-svid keys back (jwt-svid keys are ignored)', () => {
      const doc = toSpiffeBundle(ecBundle, { sequence: 1, refreshHintSeconds: 300 });
      const jwtKey = {
        use: 'jwt-svid',
        kty: 'EC',
        crv: 'P-256',
        kid: 'k1',
        x: doc.keys[0]?.x,
        y: doc.keys[0]?.y,
      };
      const back = parseSpiffeBundle(JSON.stringify({ ...doc, keys: [jwtKey, ...doc.keys] }), 'b.json');
      assert.equal(back.toPem(), ecBundle.toPem());
    });

    it('refuses input that is not a JWK Set: not JSON, null, an array, no keys, a key that is not an object', () => {
      for (const text of [
        '{',
        'null',
        '[]',
        '42',
        '"keys"',
        '{}',
        '{"keys":{}}',
        '{"keys":[null]}',
        '{"keys":[7]}',
      ]) {
        assert.throws(() => parseSpiffeBundle(text, 'b.json'), hasCode('ERR_FILE_INVALID'), text);
      }
    });

    it('refuses an x509-svid key without exactly one x5c certificate', () => {
      const der = ec.anchor.cert.der.toString('base64');
      for (const x5c of [undefined, [], [der, der], [42], 'MII']) {
        const text = JSON.stringify({ keys: [{ use: 'x509-svid', kty: 'EC', x5c }] });
        assert.throws(
          () => parseSpiffeBundle(text, 'b.json'),
          hasCode('ERR_FILE_INVALID'),
          JSON.stringify(x5c),
        );
      }
    });

    it('refuses an x509-svid key whose certificate is not a CA', () => {
      const text = JSON.stringify({
        keys: [{ use: 'x509-svid', kty: 'EC', x5c: [nonCa.der.toString('base64')] }],
      });
      assert.throws(() => parseSpiffeBundle(text, 'b.json'), hasCode('ERR_NOT_CA'));
    });
  });

  describe('Kubernetes ConfigMap', () => {
    it('is YAML for a v1 ConfigMap linkerd/linkerd-identity-trust-roots holding the PEM bundle', () => {
      const doc = parseYaml(toConfigMap(twoBundle)) as ConfigMapDoc;
      assert.equal(doc.apiVersion, 'v1');
      assert.equal(doc.kind, 'ConfigMap');
      assert.equal(doc.metadata.name, 'linkerd-identity-trust-roots');
      assert.equal(doc.metadata.namespace, 'linkerd');
      assert.deepEqual(Object.keys(doc.data), ['ca-bundle.crt']);
      assert.equal(doc.data['ca-bundle.crt'], twoBundle.toPem());
      assert.deepEqual(CONFIGMAP_DEFAULTS, {
        name: 'linkerd-identity-trust-roots',
        namespace: 'linkerd',
        key: 'ca-bundle.crt',
      });
    });

    it('is the same text for the same set of anchors', () => {
      const other = createTrustBundle([ec.anchor.cert, ec2.anchor.cert]);
      assert.equal(toConfigMap(other), toConfigMap(twoBundle));
    });

    it('takes the name, namespace and data key from the options', () => {
      const doc = parseYaml(
        toConfigMap(rsaBundle, { name: 'mesh.trust-roots', namespace: 'istio-system', key: 'roots.pem' }),
      ) as ConfigMapDoc;
      assert.equal(doc.metadata.name, 'mesh.trust-roots');
      assert.equal(doc.metadata.namespace, 'istio-system');
      assert.deepEqual(Object.keys(doc.data), ['roots.pem']);
      assert.equal(doc.data['roots.pem'], rsaBundle.toPem());
    });

    it('accepts every valid data key shape (dots, underscores, a leading single dot, 253 characters)', () => {
      for (const key of ['ca.crt', 'CA_bundle-1.pem', '.hidden', 'a..b', 'k'.repeat(253)]) {
        const doc = parseYaml(toConfigMap(ecBundle, { key })) as ConfigMapDoc;
        assert.equal(doc.data[key], ecBundle.toPem(), key);
      }
    });

    it('refuses a name that is not a DNS-1123 subdomain', () => {
      for (const name of [
        '',
        'Trust-Roots',
        'trust_roots',
        '-roots',
        'roots-',
        'a..b',
        `${'a'.repeat(63)}.`.repeat(4) + 'b',
      ]) {
        assert.throws(() => toConfigMap(ecBundle, { name }), hasCode('ERR_INVALID_REQUEST'), name);
      }
    });

    it('refuses a namespace that is not a DNS-1123 label', () => {
      for (const namespace of ['', 'Linkerd', 'linkerd.io', 'link_erd', '-linkerd', 'n'.repeat(64)]) {
        assert.throws(() => toConfigMap(ecBundle, { namespace }), hasCode('ERR_INVALID_REQUEST'), namespace);
      }
    });

    it('refuses a data key Kubernetes would refuse (path separators, spaces, ".", "..", a ".." prefix, > 253)', () => {
      for (const key of ['', 'a/b', 'ca bundle', 'ca:crt', '.', '..', '..data', 'k'.repeat(254)]) {
        assert.throws(() => toConfigMap(ecBundle, { key }), hasCode('ERR_INVALID_REQUEST'), key);
      }
    });
  });

  describe("Istio's root ConfigMap (istio-ca-root-cert)", () => {
    // issuedLeafDer issues a minute after the issuer's notBefore: verify two minutes after it
    const at = (pki: TestPki): string[] => [
      '-attime',
      String(Math.floor(eastIssuer(pki).cert.notBefore.getTime() / 1000) + 120),
    ];
    it('is a valid v1 ConfigMap istio-system/istio-ca-root-cert with every anchor under root-cert.pem', () => {
      const text = toIstioConfigMap(twoBundle);
      const doc = parseYaml(text) as ConfigMapDoc;
      assert.doesNotThrow(() => {
        new ConfigMap(doc as never).validate();
      });
      assert.equal(doc.metadata.name, 'istio-ca-root-cert');
      assert.equal(doc.metadata.namespace, 'istio-system');
      assert.deepEqual(Object.keys(doc.data), ['root-cert.pem']);
      assert.equal(doc.data['root-cert.pem'], twoBundle.toPem());
      assert.equal(serializeBundle(twoBundle, 'istio-configmap'), text);
      assert.deepEqual(ISTIO_CONFIGMAP_DEFAULTS, {
        name: 'istio-ca-root-cert',
        namespace: 'istio-system',
        key: 'root-cert.pem',
      });
    });

    it('verifies a leaf under either anchor with openssl when root-cert.pem is the CA file', async (t) => {
      const dir = testDir(t);
      const doc = parseYaml(toIstioConfigMap(twoBundle)) as ConfigMapDoc;
      const roots = join(dir, 'root-cert.pem');
      writeFileSync(roots, String(doc.data['root-cert.pem']));
      for (const [name, pki] of [
        ['first', ec],
        ['second', ec2],
      ] as const) {
        writeFileSync(join(dir, 'leaf.pem'), certPem(await issuedLeafDer(pki)));
        writeFileSync(join(dir, 'chain.pem'), eastIssuer(pki).certPem);
        const args = ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', roots, ...at(pki)];
        const r = openssl([...args, '-untrusted', join(dir, 'chain.pem'), join(dir, 'leaf.pem')]);
        assert.ok(r.ok, `${name}: ${r.stdout}${r.stderr}`);
      }
      // the same check fails with only the other anchor: the CA file really is what decides
      writeFileSync(roots, toPemBundle(ecBundle));
      writeFileSync(join(dir, 'leaf.pem'), certPem(await issuedLeafDer(ec2)));
      writeFileSync(join(dir, 'chain.pem'), eastIssuer(ec2).certPem);
      const args = ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', roots, ...at(ec2)];
      assert.equal(openssl([...args, '-untrusted', join(dir, 'chain.pem'), join(dir, 'leaf.pem')]).ok, false);
    });

    it('takes the name and namespace from the options but never another data key', () => {
      const doc = parseYaml(
        serializeBundle(rsaBundle, 'istio-configmap', { name: 'roots', namespace: 'bookinfo' }),
      ) as ConfigMapDoc;
      assert.equal(doc.metadata.name, 'roots');
      assert.equal(doc.metadata.namespace, 'bookinfo');
      assert.deepEqual(doc.data, { 'root-cert.pem': rsaBundle.toPem() });
      assert.throws(
        () => serializeBundle(rsaBundle, 'istio-configmap', { key: 'ca.crt' }),
        hasCode('ERR_INVALID_REQUEST'),
      );
      assert.throws(() => toIstioConfigMap(ecBundle, { namespace: 'Istio' }), hasCode('ERR_INVALID_REQUEST'));
      assert.throws(() => toIstioConfigMap(ecBundle, { name: 'a_b' }), hasCode('ERR_INVALID_REQUEST'));
    });
  });
});
