// The switch and drop preconditions on the data: the full served chain against each bundle (pathLen of
// the old anchor counted), expiry as its own precondition, and the drop preconditions computed.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { OID, TRUE, implicitPrim, octetString, seq, smallInteger } from '../../ca/der/index.js';
import { extension, signCertificate } from '../../ca/certificate-builder.js';
import { fingerprint, parseCertificate, type CertificateInfo } from '../../ca/index.js';
import { createAnchorCertificate, keyIdentifier, randomSerial } from '../../ca/profiles.js';
import { planRotation, type RotationPlanInput } from '../../trust-bundles/rotation-plan.js';
import { rotationStatus } from '../../trust-bundles/rotation.js';
import { servedChainVerifies, switchedAndTrusted } from '../../trust-bundles/rotation-next.js';
import type { ClusterView } from '../../trust-bundles/rotation.js';
import { HOUR } from '../support/clock.js';
import { opensslVerify } from '../support/openssl.js';
import { createTestCertificate, testKey, type TestCa } from '../support/pki.js';
import {
  adminCluster,
  crossSign,
  issuer,
  rotationPki,
  START,
  type RotationPki,
} from './rotation-fixtures.js';

/** An anchor like `lanyard anchor create`'s but with basicConstraints pathLen `n`. */
async function anchorWithPathLen(cn: string, n: number): Promise<TestCa> {
  const { signer } = await testKey();
  const plain = await createAnchorCertificate({
    signer,
    now: new Date(START - 10 * 24 * HOUR),
    commonName: cn,
  });
  // the same subject, key and validity, with basicConstraints pathLen n
  const ski = keyIdentifier(signer.publicKeyDer);
  const der = await signCertificate(signer, {
    serial: randomSerial(),
    issuer: plain.subjectDer,
    subject: plain.subjectDer,
    notBefore: plain.notBefore,
    notAfter: plain.notAfter,
    spki: signer.publicKeyDer,
    extensions: [
      extension(OID.basicConstraints, true, seq(TRUE, smallInteger(n))),
      extension(OID.keyUsage, true, Buffer.from([0x03, 0x02, 0x01, 0x06])),
      extension(OID.subjectKeyIdentifier, false, octetString(ski)),
      extension(OID.authorityKeyIdentifier, false, seq(implicitPrim(0, ski))),
    ],
  });
  return { signer, cert: parseCertificate(der) };
}

describe('rotation preconditions on the data', () => {
  let p: RotationPki;
  before(async () => {
    p = await rotationPki(['east']);
  });
  const must = <T>(v: T | undefined): T => {
    assert.ok(v !== undefined);
    return v;
  };

  it('switch: an old anchor with pathLen 1 refuses [B-issuer, cross] (OpenSSL agrees); pathLen 2 accepts it', async () => {
    const A1 = await anchorWithPathLen('anchor A1', 1);
    const A2 = await anchorWithPathLen('anchor A2', 2);
    const cross1 = await crossSign(A1, p.B);
    const cross2 = await crossSign(A2, p.B);
    const issuerB = must(p.newIssuer.east).cert;
    assert.equal(servedChainVerifies(A1.cert, cross1, [], START), false);
    assert.equal(servedChainVerifies(A1.cert, cross1, [[issuerB, cross1]], START), false);
    assert.equal(servedChainVerifies(A2.cert, cross2, [], START), true);
    assert.equal(servedChainVerifies(A2.cert, cross2, [[issuerB, cross2]], START), true);
    // OpenSSL on a leaf of the B-issuer through the cross certificate: the same verdicts
    const { signer } = await testKey();
    const leaf = await createTestCertificate({
      issuer: must(p.newIssuer.east),
      subjectSigner: signer,
      commonName: 'leaf',
      notBefore: new Date(START - HOUR),
      notAfter: new Date(START + HOUR),
      isCa: false,
    });
    const verify = (a: TestCa, cross: CertificateInfo): boolean =>
      opensslVerify({
        leaf: leaf.der,
        intermediates: [issuerB.der, cross.der],
        anchors: [a.cert.der],
        purpose: 'sslclient',
        atSeconds: START / 1000,
      }).ok;
    assert.equal(verify(A1, cross1), false);
    assert.equal(verify(A2, cross2), true);

    const s = rotationStatus(
      [
        adminCluster('east', {
          bundle: [A1.cert],
          chain: [(await issuer(A1, 'east', START - HOUR)).cert],
          loadedAt: START,
        }),
      ],
      new Date(START),
      {
        newAnchor: { kind: 'certificate', certificate: p.B.cert },
        inputs: { newAnchorDir: 'B', crossSigned: 'x.crt', cross: cross1 },
      },
    );
    assert.equal(s.next.action, 'switch-issuers');
    assert.equal(s.next.safe, false);
    assert.deepEqual(s.next.preconditions[0], {
      kind: 'cross-reaches-every-bundle',
      holds: false,
      lacking: ['east'],
    });
    // rotate plan refuses the same chain, and an old anchor whose pathLen cannot hold it
    const clusters = [
      adminCluster('east', {
        bundle: [A1.cert],
        chain: [(await issuer(A1, 'east', START - HOUR)).cert],
        loadedAt: START,
      }),
    ];
    const plan = (cross: RotationPlanInput['cross'], now = START) =>
      planRotation(clusters, {
        newAnchorDir: 'B',
        newAnchorCertPath: 'B/anchor.crt',
        newAnchor: { fingerprint: fingerprint(p.B.cert.der), subject: 'CN=anchor B', certificate: p.B.cert },
        cross,
        now: new Date(now),
      });
    assert.throws(() => plan({ path: 'x', certificate: cross1 }), { code: 'ERR_ROTATION_INPUT_INVALID' });
    assert.throws(() => plan({ path: 'x', oldAnchorDir: 'A1', oldAnchor: A1.cert }), {
      code: 'ERR_ROTATION_INPUT_INVALID',
      input: 'old-anchor',
    });
  });

  it('switch: an expired cross certificate is its own failed precondition', () => {
    const after = p.cross.notAfter.getTime() + 1000;
    const s = rotationStatus(
      [adminCluster('east', { bundle: [p.A.cert], chain: [must(p.oldIssuer.east).cert], loadedAt: START })],
      new Date(after),
      {
        newAnchor: { kind: 'certificate', certificate: p.B.cert },
        inputs: { newAnchorDir: 'B', crossSigned: 'x.crt', cross: p.cross },
      },
    );
    assert.equal(s.next.action, 'switch-issuers');
    assert.equal(s.next.safe, false);
    const valid = s.next.preconditions.find((c) => c.kind === 'cross-not-expired');
    assert.deepEqual(valid, {
      kind: 'cross-not-expired',
      holds: false,
      notAfter: p.cross.notAfter.toISOString(),
    });
    const before = rotationStatus(
      [adminCluster('east', { bundle: [p.A.cert], chain: [must(p.oldIssuer.east).cert], loadedAt: START })],
      new Date(START),
      {
        newAnchor: { kind: 'certificate', certificate: p.B.cert },
        inputs: { newAnchorDir: 'B', crossSigned: 'x.crt', cross: p.cross },
      },
    );
    assert.equal(before.next.preconditions.find((c) => c.kind === 'cross-not-expired')?.holds, true);
  });

  it('drop: every-issuer-switched and new-anchor-in-every-bundle are computed from the views', async () => {
    const west = await issuer(p.A, 'west', START - 48 * HOUR);
    const clusters = [
      adminCluster('east', {
        bundle: [p.A.cert, p.B.cert],
        chain: [must(p.newIssuer.east).cert, p.cross],
        loadedAt: START,
      }),
      adminCluster('west', { bundle: [p.A.cert], chain: [west.cert], loadedAt: START }),
    ];
    const s = rotationStatus(clusters, new Date(START), {
      newAnchor: { kind: 'certificate', certificate: p.B.cert },
    });
    const views: ClusterView[] = s.clusters.map((state, i) => ({
      snapshot: must(clusters[i]),
      state,
      current: [],
      reach: {
        oldAnchors: [],
        reachesNew: state.issuer.kind === 'new' || state.issuer.kind === 'new-with-cross',
        servesCross: state.issuer.kind === 'new-with-cross',
      },
    }));
    assert.deepEqual(switchedAndTrusted(views), [
      { kind: 'every-issuer-switched', holds: false, pending: ['west'] },
      { kind: 'new-anchor-in-every-bundle', holds: false, lacking: ['west'] },
    ]);
    assert.deepEqual(switchedAndTrusted(views.slice(0, 1)), [
      { kind: 'every-issuer-switched', holds: true, pending: [] },
      { kind: 'new-anchor-in-every-bundle', holds: true, lacking: [] },
    ]);
  });

  it('rotate status reports each cluster’s cross notAfter, and warns when it ends before a renewed issuer or within 30 days', async () => {
    const issuerB = must(p.newIssuer.east).cert;
    const status = (cross: CertificateInfo) =>
      rotationStatus(
        [adminCluster('east', { bundle: [p.A.cert], chain: [issuerB, cross], loadedAt: START })],
        new Date(START),
      );
    const long = status(p.cross);
    assert.equal(long.clusters[0]?.crossNotAfter, p.cross.notAfter.toISOString());
    assert.deepEqual(long.warnings, []);
    // ends after the issuer (the credential accepts it) but before a renewal at 2/3 of its lifetime would
    const lifetime = issuerB.notAfter.getTime() - issuerB.notBefore.getTime();
    const shortCross = await crossSign(p.A, p.B, new Date(issuerB.notAfter.getTime() + lifetime / 3));
    const short = status(shortCross);
    assert.deepEqual(
      short.warnings.map((w) => [w.kind, w.cluster, w.crossNotAfter]),
      [['cross-expires-soon', 'east', shortCross.notAfter.toISOString()]],
    );
    const plain = rotationStatus(
      [adminCluster('east', { bundle: [p.A.cert], chain: [must(p.oldIssuer.east).cert], loadedAt: START })],
      new Date(START),
    );
    assert.equal(plain.clusters[0]?.crossNotAfter, null);
  });
});
