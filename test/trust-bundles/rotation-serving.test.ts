// The identity service's own serving chain (serve --tls-cert) in the rotation: phase 5 requires it to
// reach B; a serving chain that reaches no anchor of its bundle (or of a listed proxy) is a problem now.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { CertificateInfo } from '../../ca/index.js';
import type { ClusterPods } from '../../trust-bundles/pods.js';
import { rotationStatus } from '../../trust-bundles/rotation.js';
import type { ClusterSnapshot } from '../../trust-bundles/sources.js';
import { HOUR } from '../support/clock.js';
import { createTestCertificate, testKey, type TestCa } from '../support/pki.js';
import {
  adminCluster,
  dirCluster,
  LIFETIME,
  rotationPki,
  START,
  type RotationPki,
} from './rotation-fixtures.js';

const must = <T>(v: T | undefined): T => {
  assert.ok(v !== undefined);
  return v;
};

async function servingLeaf(issuer: TestCa): Promise<CertificateInfo> {
  const { signer } = await testKey();
  return createTestCertificate({
    issuer,
    subjectSigner: signer,
    commonName: 'identity.linkerd.cluster.local',
    notBefore: new Date(START - HOUR),
    notAfter: new Date(START + 10 * LIFETIME),
    isCa: false,
  });
}

describe('rotation: the serving chain of serve --tls-cert', () => {
  let p: RotationPki;
  let underA: CertificateInfo[];
  let underB: CertificateInfo[];
  let underBNoCross: CertificateInfo[];
  before(async () => {
    p = await rotationPki(['east', 'west']);
    const oldIssuer = must(p.oldIssuer.east);
    const newIssuer = must(p.newIssuer.east);
    underA = [await servingLeaf(oldIssuer), oldIssuer.cert];
    const leafB = await servingLeaf(newIssuer);
    underB = [leafB, newIssuer.cert, p.cross];
    underBNoCross = [leafB, newIssuer.cert];
  });
  const after = new Date(START + LIFETIME + HOUR);
  /** both clusters switched, bundles {A, B}: the bound has passed at `after` */
  const trustingBoth = (serving: readonly CertificateInfo[] | null | undefined): ClusterSnapshot[] => [
    adminCluster('east', {
      bundle: [p.A.cert, p.B.cert],
      chain: [must(p.newIssuer.east).cert, p.cross],
      loadedAt: START,
      serving,
    }),
    adminCluster('west', {
      bundle: [p.A.cert, p.B.cert],
      chain: [must(p.newIssuer.west).cert, p.cross],
      loadedAt: START,
    }),
  ];
  const servingPre = (s: ReturnType<typeof rotationStatus>) =>
    s.next.preconditions.find((c) => c.kind === 'serving-chain-reaches-new');

  it('phase 5 is not safe while a serving chain reaches A only', () => {
    const s = rotationStatus(trustingBoth(underA), after);
    assert.deepEqual(s.problems, []);
    assert.equal(s.next.action, 'wait-old-leaves');
    assert.equal(s.next.safe, false);
    assert.deepEqual(servingPre(s), {
      kind: 'serving-chain-reaches-new',
      holds: false,
      lacking: ['east'],
      unknown: [],
      unchecked: [],
    });
    const east = s.clusters.find((c) => c.name === 'east');
    assert.equal(east?.serving.kind, 'tls');
    assert.equal(east?.serving.kind === 'tls' && east.serving.reachesNew, false);
  });

  it('phase 5 is safe when the serving chain is under the B-issuer with the cross certificate; plaintext imposes nothing', () => {
    for (const serving of [underB, underBNoCross, null]) {
      const s = rotationStatus(trustingBoth(serving), after);
      assert.equal(s.next.action, 'drop-old-anchors');
      assert.equal(s.next.safe, true);
      assert.equal(servingPre(s)?.holds, true);
    }
  });

  it('an admin source that does not report its serving chain: unknown; a directory: unchecked (not applicable)', () => {
    const unknown = rotationStatus(trustingBoth(undefined), after);
    assert.equal(unknown.next.safe, false);
    assert.deepEqual(servingPre(unknown), {
      kind: 'serving-chain-reaches-new',
      holds: 'unknown',
      lacking: [],
      unknown: ['east'],
      unchecked: [],
    });
    const dirs = rotationStatus(
      [
        dirCluster('west', {
          bundle: [p.A.cert, p.B.cert],
          chain: [must(p.newIssuer.west).cert, p.cross],
          changedAt: START,
        }),
      ],
      after,
    );
    assert.equal(dirs.next.action, 'drop-old-anchors');
    assert.equal(dirs.next.safe, true);
    assert.deepEqual(servingPre(dirs)?.kind === 'serving-chain-reaches-new' && servingPre(dirs), {
      kind: 'serving-chain-reaches-new',
      holds: true,
      lacking: [],
      unknown: [],
      unchecked: ['west'],
    });
  });

  it('a serving chain that reaches no anchor of its bundle, or of a running proxy, is a problem now', () => {
    // bundle {B} after phase 5 while the serving chain still ends at A only
    const dropped = [
      adminCluster('east', {
        bundle: [p.B.cert],
        chain: [must(p.newIssuer.east).cert, p.cross],
        loadedAt: START,
        serving: underA,
      }),
    ];
    const s = rotationStatus(dropped, after);
    assert.equal(s.problems.length, 1);
    assert.equal(s.next.action, 'repair');
    assert.deepEqual(rotationStatus([{ ...must(dropped[0]), servingChain: underB }], after).problems, []);
    // the cross certificate dropped from the serving chain while a proxy trusts only A
    const pods: Record<string, ClusterPods> = {
      east: {
        kind: 'listed',
        pods: [{ cluster: 'east', namespace: 'default', name: 'old', anchors: [p.A.cert] }],
      },
    };
    const bothB = [{ ...must(dropped[0]), bundle: must(trustingBoth(null)[0]).bundle }];
    const withCross = rotationStatus([{ ...must(bothB[0]), servingChain: underB }], after, { pods });
    assert.deepEqual(withCross.problems, []);
    const noCross = rotationStatus([{ ...must(bothB[0]), servingChain: underBNoCross }], after, { pods });
    assert.equal(noCross.problems.length, 1);
    assert.equal(noCross.next.action, 'repair');
  });
});
