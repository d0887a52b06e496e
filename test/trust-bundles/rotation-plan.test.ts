import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { type CertificateInfo } from '../../ca/index.js';
import { createTrustBundle, type BundleAnchor } from '../../trust-bundles/bundle.js';
import { planRotation, type PlanPhase, type RotationPlan } from '../../trust-bundles/rotation-plan.js';
import { OFFLINE_DEFAULTS, offlineWindowMs } from '../../trust-bundles/rotation.js';
import type { ClusterSnapshot } from '../../trust-bundles/sources.js';
import { HOUR } from '../support/clock.js';
import { testPki } from '../support/pki.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const NEXT_DIR = '/anchors/next';

function snapshot(
  name: string,
  kind: ClusterSnapshot['kind'],
  anchors: readonly CertificateInfo[],
  issuer: CertificateInfo,
  extra: Partial<ClusterSnapshot> = {},
): ClusterSnapshot {
  return {
    name,
    source: kind === 'dir' ? `/srv/${name}` : `http://${name}:9990`,
    kind,
    bundle: createTrustBundle(anchors),
    issuerChain: [issuer],
    issuedByAnchor: undefined,
    issuance: undefined,
    ...extra,
  };
}

function phase(plan: RotationPlan, n: 1 | 2 | 3): PlanPhase {
  const p = plan.phases[n - 1];
  assert.ok(p);
  return p;
}
const commandsOf = (p: PlanPhase, cluster: string): string[] =>
  p.steps.filter((s) => s.cluster === cluster).flatMap((s) => [...s.commands]);

describe('planRotation', () => {
  let old: CertificateInfo;
  let older: CertificateInfo;
  let issuer: CertificateInfo;
  let next: BundleAnchor;

  before(async () => {
    const current = await testPki({ now: NOW });
    const earlier = await testPki({ now: new Date(NOW.getTime() - HOUR) });
    const incoming = await testPki({ now: new Date(NOW.getTime() + HOUR) });
    old = current.anchor.cert;
    older = earlier.anchor.cert;
    const east = current.issuers.east;
    assert.ok(east);
    issuer = east.cert;
    const anchor = createTrustBundle([incoming.anchor.cert]).anchors[0];
    assert.ok(anchor);
    next = anchor;
  });

  const plan = (clusters: readonly ClusterSnapshot[], offline = OFFLINE_DEFAULTS): RotationPlan =>
    planRotation(clusters, { newAnchorDir: NEXT_DIR, newAnchor: next, offline });

  it('has three phases in order: add the new anchor, re-issue the issuers, remove the old anchors', () => {
    const p = plan([snapshot('east', 'dir', [old, next.certificate], issuer)]);
    assert.deepEqual(
      p.phases.map((x) => [x.phase, x.action, x.waitsFor.kind]),
      [
        [1, 'add-new-anchor', 'nothing'],
        [2, 'reissue-issuers', 'new-anchor-everywhere'],
        [3, 'remove-old-anchors', 'old-leaves-expired'],
      ],
    );
    assert.deepEqual(p.newAnchor, { fingerprint: next.fingerprint, subject: next.subject });
    assert.equal(p.newAnchorCertPath, join(NEXT_DIR, 'anchor.crt'));
  });

  it('gives every cluster one step in phases 1 and 2, in the order the clusters were given', () => {
    const p = plan([snapshot('west', 'admin', [old], issuer), snapshot('east', 'dir', [old], issuer)]);
    for (const n of [1, 2] as const) {
      assert.deepEqual(
        phase(p, n).steps.map((s) => [s.cluster, s.kind]),
        [
          ['west', 'admin'],
          ['east', 'dir'],
        ],
      );
    }
  });

  it("edits a directory cluster's own bundle file, and a local copy of an admin cluster's served bundle", () => {
    const p = plan([
      snapshot('east', 'dir', [old], issuer, { bundlePath: '/etc/east/bundle.pem' }),
      snapshot('north', 'dir', [old], issuer),
      snapshot('west', 'admin', [old], issuer),
    ]);
    const cert = join(NEXT_DIR, 'anchor.crt');
    assert.deepEqual(commandsOf(phase(p, 1), 'east'), [`lanyard bundle add /etc/east/bundle.pem ${cert}`]);
    assert.deepEqual(commandsOf(phase(p, 1), 'north'), [
      `lanyard bundle add ${join('/srv/north', 'ca.crt')} ${cert}`,
    ]);
    const west = commandsOf(phase(p, 1), 'west');
    assert.equal(west.length, 3);
    assert.ok(west[0]?.startsWith('curl -fsS http://west:9990/v1/bundle > west-bundle.crt'));
    assert.equal(west[1], `lanyard bundle add west-bundle.crt ${cert}`);
    assert.ok(west[2]?.includes('kubectl --context west apply'));
  });

  it('re-issues under the new anchor directory and never copies ca.crt over a bundle', () => {
    const p = plan([snapshot('east', 'dir', [old], issuer), snapshot('west', 'admin', [old], issuer)]);
    for (const cluster of ['east', 'west']) {
      const cmds = commandsOf(phase(p, 2), cluster);
      assert.equal(
        cmds[0],
        `lanyard issuer create --anchor ${NEXT_DIR} --cluster ${cluster} --out ${cluster}-issuer-next`,
      );
      assert.ok(cmds.every((c) => !/cp .*ca\.crt/.test(c)));
    }
    assert.deepEqual(
      commandsOf(phase(p, 2), 'east')[1],
      'cp east-issuer-next/tls.key east-issuer-next/tls.crt /srv/east/',
    );
    assert.ok(commandsOf(phase(p, 2), 'west')[1]?.includes('create secret tls linkerd-identity-issuer'));
  });

  it('removes, per cluster, every anchor of its bundle but the new one, and nothing from a bundle without old anchors', () => {
    const p = plan([
      snapshot('east', 'dir', [older, old, next.certificate], issuer),
      snapshot('west', 'admin', [next.certificate], issuer),
    ]);
    const removals = phase(p, 3).steps.map((s) => [s.cluster, s.removesAnchor]);
    const fp = (c: CertificateInfo): string | undefined => createTrustBundle([c]).anchors[0]?.fingerprint;
    assert.deepEqual(removals, [
      ['east', fp(older)],
      ['east', fp(old)],
    ]);
    for (const s of phase(p, 3).steps) assert.ok(s.commands[0]?.endsWith(` ${s.removesAnchor ?? '?'}`));
  });

  it('waits for old leaves to expire, bounded for directory clusters by the offline window', () => {
    const offline = { pollIntervalMs: 5000, maxLeafLifetimeMs: 2 * HOUR, clockSkewMs: 1000 };
    const p = plan(
      [
        snapshot('east', 'dir', [old], issuer),
        snapshot('west', 'admin', [old], issuer),
        snapshot('north', 'dir', [old], issuer),
      ],
      offline,
    );
    assert.deepEqual(phase(p, 3).waitsFor, {
      kind: 'old-leaves-expired',
      offline: { ...offline, clusters: ['east', 'north'], windowMs: offlineWindowMs(offline) },
    });
    assert.equal(offlineWindowMs(offline), 5000 + 2 * HOUR + 2 * 1000);
  });

  it('has no offline wait when every cluster keeps an issuance record (admin sources)', () => {
    const p = plan([snapshot('west', 'admin', [old], issuer)]);
    assert.deepEqual(phase(p, 3).waitsFor, { kind: 'old-leaves-expired', offline: null });
  });

  it('carries non-default offline assumptions into the status command only when a directory cluster needs them', () => {
    const offline = { ...OFFLINE_DEFAULTS, maxLeafLifetimeMs: HOUR };
    const dir = plan([snapshot('east', 'dir', [old], issuer)], offline);
    assert.equal(
      dir.statusCommand,
      `lanyard rotate status --cluster east=/srv/east --max-leaf-lifetime ${HOUR}ms`,
    );
    const admin = plan([snapshot('west', 'admin', [old], issuer)], offline);
    assert.equal(admin.statusCommand, 'lanyard rotate status --cluster west=http://west:9990');
    assert.equal(admin.finalCommand, 'lanyard check --cluster west=http://west:9990');
    const defaults = plan([snapshot('east', 'dir', [old], issuer)]);
    assert.equal(defaults.statusCommand, 'lanyard rotate status --cluster east=/srv/east');
  });

  it('is a function of its inputs: the same clusters give the same plan', () => {
    const clusters = [snapshot('east', 'dir', [old], issuer), snapshot('west', 'admin', [old], issuer)];
    assert.deepEqual(plan(clusters), plan(clusters));
  });
});
