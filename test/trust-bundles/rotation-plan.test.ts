import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { fingerprint } from '../../ca/index.js';
import { planRotation, type RotationPlanInput } from '../../trust-bundles/rotation-plan.js';
import type { ClusterSnapshot } from '../../trust-bundles/sources.js';
import {
  adminCluster,
  anchor,
  crossSign,
  dirCluster,
  rotationPki,
  START,
  type RotationPki,
} from './rotation-fixtures.js';

describe('planRotation: the six phases as data', () => {
  let p: RotationPki;
  let clusters: ClusterSnapshot[];
  before(async () => {
    p = await rotationPki();
    const east = p.oldIssuer.east;
    const west = p.oldIssuer.west;
    assert.ok(east && west);
    clusters = [
      adminCluster('east', { bundle: [p.A.cert], chain: [east.cert], loadedAt: START }),
      dirCluster('west', { bundle: [p.A.cert], chain: [west.cert], changedAt: START }),
    ];
  });
  const input = (cross: RotationPlanInput['cross']): RotationPlanInput => ({
    newAnchorDir: 'B',
    newAnchorCertPath: 'B/anchor.crt',
    newAnchor: { fingerprint: fingerprint(p.B.cert.der), subject: 'CN=anchor B', certificate: p.B.cert },
    cross,
    now: new Date(START),
  });

  it('orders the phases with their preconditions; phase 6 is optional; phase 4 has no command', () => {
    const plan = planRotation(clusters, input({ path: 'cross.crt', certificate: p.cross }));
    assert.deepEqual(
      plan.phases.map((x) => [x.phase, x.action, x.requires]),
      [
        [1, 'prepare', []],
        [2, 'switch-issuers', ['cross-reaches-every-bundle', 'cross-not-expired']],
        [3, 'add-new-anchor', []],
        [4, 'wait-old-leaves', ['every-issuer-switched', 'new-anchor-in-every-bundle']],
        [
          5,
          'drop-old-anchors',
          [
            'every-issuer-switched',
            'new-anchor-in-every-bundle',
            'serving-chain-reaches-new',
            'old-leaves-expired',
          ],
        ],
        [6, 'stop-serving-cross', ['no-proxy-trusts-only-old']],
      ],
    );
    const four = plan.phases[3];
    assert.ok(four?.phase === 4);
    assert.deepEqual(four.steps, []);
    assert.deepEqual(four.offline?.clusters, ['west']);
    const six = plan.phases[5];
    assert.ok(six?.phase === 6 && six.optional);
  });

  it('admin clusters get kubectl and the cert-manager variant; directories get cp; ca.crt is never copied', () => {
    const plan = planRotation(clusters, input({ path: 'cross.crt', certificate: p.cross }));
    const two = plan.phases[1]?.steps ?? [];
    const east = two.find((s) => s.cluster === 'east');
    const west = two.find((s) => s.cluster === 'west');
    assert.ok(east);
    assert.ok(east.commands.some((c) => c.startsWith('kubectl --context east -n linkerd create secret tls')));
    assert.ok(east.notes?.some((n) => n.includes('--intermediates cross.crt')));
    assert.deepEqual(west?.commands, ['cp west-issuer-next/tls.key west-issuer-next/tls.crt /srv/west/']);
    assert.ok(
      plan.phases.flatMap((x) => x.steps.flatMap((s) => s.commands)).every((c) => !/cp .*ca\.crt/.test(c)),
    );
    const five = plan.phases[4]?.steps ?? [];
    assert.deepEqual(
      five.map((s) => [s.cluster, s.removesAnchor]),
      [
        ['east', fingerprint(p.A.cert.der)],
        ['west', fingerprint(p.A.cert.der)],
      ],
    );
  });

  it('prints the cross-sign command first when the cross certificate is still to be made', () => {
    const plan = planRotation(clusters, input({ path: 'cross.crt', oldAnchorDir: 'A', oldAnchor: p.A.cert }));
    assert.deepEqual(plan.phases[0]?.steps[0]?.commands, [
      'lanyard anchor cross-sign --anchor A --subject B --out cross.crt',
    ]);
  });

  it('refuses a cross certificate not for B, or not signed by an anchor of every bundle (ERR_ROTATION_INPUT_INVALID)', async () => {
    assert.throws(() => planRotation(clusters, input({ path: 'x', certificate: p.A.cert })), {
      code: 'ERR_ROTATION_INPUT_INVALID',
    });
    const other = await anchor('anchor C', START - 24 * 3_600_000);
    const byOther = await crossSign(other, p.B);
    assert.throws(() => planRotation(clusters, input({ path: 'x', certificate: byOther })), {
      code: 'ERR_ROTATION_INPUT_INVALID',
      input: 'cross-signed',
    });
    assert.throws(
      () => planRotation(clusters, input({ path: 'x', oldAnchorDir: 'C', oldAnchor: other.cert })),
      {
        code: 'ERR_ROTATION_INPUT_INVALID',
        input: 'old-anchor',
      },
    );
  });
});
