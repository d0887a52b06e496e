import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { fingerprint, type CertificateInfo } from '../../ca/index.js';
import type { ClusterPods, ProxyPod } from '../../trust-bundles/pods.js';
import {
  OFFLINE_DEFAULTS,
  rotationStatus,
  type RotationStatusOptions,
} from '../../trust-bundles/rotation.js';
import type { ClusterSnapshot } from '../../trust-bundles/sources.js';
import { HOUR } from '../support/clock.js';
import {
  adminCluster,
  dirCluster,
  LIFETIME,
  rotationPki,
  SKEW,
  START,
  type RotationPki,
} from './rotation-fixtures.js';

const POLL = 2000;

function must<T>(v: T | undefined): T {
  assert.ok(v !== undefined);
  return v;
}

describe('rotation status: the six phases as data', () => {
  let p: RotationPki;
  before(async () => {
    p = await rotationPki();
  });
  const oldChain = (c: string): CertificateInfo[] => [must(p.oldIssuer[c]).cert];
  const newChain = (c: string): CertificateInfo[] => [must(p.newIssuer[c]).cert, p.cross];
  /** east: admin, loaded at `switchAt`; west: directory, files changed at `switchAt` */
  function mesh(o: {
    east: 'old' | 'new' | 'new-no-cross';
    west: 'old' | 'new' | 'new-no-cross';
    bundle: 'A' | 'AB' | 'B';
    westBundle?: 'A' | 'AB' | 'B';
    switchAt?: number;
  }): ClusterSnapshot[] {
    const chain = (c: string, k: 'old' | 'new' | 'new-no-cross'): CertificateInfo[] =>
      k === 'old' ? oldChain(c) : k === 'new' ? newChain(c) : [must(p.newIssuer[c]).cert];
    const anchors = (b: 'A' | 'AB' | 'B'): CertificateInfo[] =>
      b === 'A' ? [p.A.cert] : b === 'B' ? [p.B.cert] : [p.A.cert, p.B.cert];
    const at = o.switchAt ?? START;
    return [
      adminCluster('east', { bundle: anchors(o.bundle), chain: chain('east', o.east), loadedAt: at }),
      dirCluster('west', {
        bundle: anchors(o.westBundle ?? o.bundle),
        chain: chain('west', o.west),
        changedAt: at,
      }),
    ];
  }
  const inputs = (): NonNullable<RotationStatusOptions['inputs']> => ({
    newAnchorDir: 'B',
    newAnchorCert: 'B/anchor.crt',
    crossSigned: 'cross.crt',
    cross: p.cross,
  });

  it('steady: one anchor, issuers under it, no cross certificate', () => {
    const s = rotationStatus(mesh({ east: 'old', west: 'old', bundle: 'A' }), new Date(START));
    assert.equal(s.phase, 'steady');
    assert.equal(s.next.action, 'none');
    assert.equal(s.next.safe, true);
    assert.deepEqual(s.problems, []);
  });

  it('phase 1: the switch is next, safe once the cross certificate is given and signed by an anchor of every bundle', () => {
    const clusters = mesh({ east: 'old', west: 'old', bundle: 'A' });
    const s = rotationStatus(clusters, new Date(START), {
      newAnchor: { kind: 'certificate', certificate: p.B.cert },
      inputs: inputs(),
    });
    assert.equal(s.phase, 1);
    assert.deepEqual(
      s.clusters.map((c) => c.phase.phase),
      [1, 1],
    );
    assert.equal(s.next.action, 'switch-issuers');
    assert.equal(s.next.phase, 2);
    assert.equal(s.next.safe, true);
    assert.deepEqual(s.next.preconditions, [
      { kind: 'cross-reaches-every-bundle', holds: true, lacking: [] },
      { kind: 'cross-not-expired', holds: true, notAfter: p.cross.notAfter.toISOString() },
    ]);
    assert.deepEqual(s.next.clusters, ['east', 'west']);
    assert.ok(s.next.commands.every((c) => c.commands.some((l) => l.includes('--cross-signed cross.crt'))));
    assert.ok(s.next.commands.every((c) => !c.commands.some((l) => l.includes('ca.crt'))));
  });

  it('phase 1 without the cross certificate: the step is not established and prints no command', () => {
    const s = rotationStatus(mesh({ east: 'old', west: 'old', bundle: 'A' }), new Date(START), {
      newAnchor: { kind: 'certificate', certificate: p.B.cert },
    });
    assert.equal(s.next.action, 'switch-issuers');
    assert.equal(s.next.safe, false);
    assert.deepEqual([...s.next.missing].sort(), ['cross-signed', 'new-anchor']);
    assert.deepEqual(s.next.commands, []);
    assert.equal(s.next.preconditions[0]?.holds, 'unknown');
  });

  it('phase 2: B is recognised by the cross certificate alone, and both anchors are reached by the switched issuer', () => {
    const s = rotationStatus(mesh({ east: 'new', west: 'old', bundle: 'A' }), new Date(START));
    assert.deepEqual(s.problems, []);
    assert.equal(s.newAnchor?.fingerprint, null);
    const east = s.clusters.find((c) => c.name === 'east');
    assert.equal(east?.phase.phase, 2);
    assert.equal(east?.issuer.kind, 'new-with-cross');
    assert.deepEqual(east?.issuer.oldAnchorsReached, [fingerprint(p.A.cert.der)]);
    assert.equal(s.next.action, 'switch-issuers');
    assert.deepEqual(s.next.clusters, ['west']);
  });

  it('phase 3: every issuer switched; adding B is next and always safe', () => {
    const s = rotationStatus(mesh({ east: 'new', west: 'new', bundle: 'A' }), new Date(START), {
      inputs: inputs(),
    });
    assert.equal(s.phase, 2);
    assert.equal(s.next.action, 'add-new-anchor');
    assert.equal(s.next.phase, 3);
    assert.equal(s.next.safe, true);
    assert.ok(s.next.commands.every((c) => c.commands.some((l) => l.startsWith('lanyard bundle add'))));
  });

  it('phase 3 without B’s certificate file: missing new-anchor', () => {
    const s = rotationStatus(mesh({ east: 'new', west: 'new', bundle: 'A' }), new Date(START));
    assert.deepEqual(s.next.missing, ['new-anchor']);
    assert.equal(s.next.safe, false);
  });

  it('phase 4: bundles A+B; dropping A waits for the bound counted from each switch', () => {
    const now = new Date(START + HOUR);
    const s = rotationStatus(mesh({ east: 'new', west: 'new', bundle: 'AB' }), now);
    assert.equal(s.phase, 4);
    assert.deepEqual(
      s.clusters.map((c) => c.phase.phase),
      [3, 3],
    );
    assert.equal(s.next.action, 'wait-old-leaves');
    assert.equal(s.next.safe, false);
    const eastUntil = START + LIFETIME + 2 * SKEW + OFFLINE_DEFAULTS.propagationMarginMs;
    const westUntil = START + POLL + LIFETIME + 2 * SKEW;
    assert.equal(s.clusters[0]?.oldLeavesValidUntil, new Date(eastUntil).toISOString());
    assert.equal(s.clusters[0]?.oldLeavesBasis, 'credential-loaded');
    assert.equal(s.clusters[1]?.oldLeavesBasis, 'issuer-files-changed');
    assert.equal(s.clusters[0]?.oldLeavesPropagationMarginMs, OFFLINE_DEFAULTS.propagationMarginMs);
    assert.equal(s.clusters[1]?.oldLeavesPropagationMarginMs, 0);
    // a longer margin moves the admin bound, not the directory's
    const longer = rotationStatus(mesh({ east: 'new', west: 'new', bundle: 'AB' }), now, {
      offline: { ...OFFLINE_DEFAULTS, propagationMarginMs: 10 * 60_000 },
    });
    assert.equal(
      longer.clusters[0]?.oldLeavesValidUntil,
      new Date(START + LIFETIME + 2 * SKEW + 10 * 60_000).toISOString(),
    );
    assert.equal(longer.clusters[1]?.oldLeavesValidUntil, s.clusters[1]?.oldLeavesValidUntil);
    assert.equal(s.next.waitUntil, new Date(Math.max(eastUntil, westUntil)).toISOString());
  });

  it('phase 4: a restart of the issuer only moves the bound later', () => {
    const early = rotationStatus(mesh({ east: 'new', west: 'new', bundle: 'AB' }), new Date(START + HOUR));
    const restarted = rotationStatus(
      mesh({ east: 'new', west: 'new', bundle: 'AB', switchAt: START + 2 * HOUR }),
      new Date(START + 3 * HOUR),
    );
    assert.ok(Date.parse(restarted.next.waitUntil ?? '') > Date.parse(early.next.waitUntil ?? ''));
  });

  it('phase 5: once the bound has passed, dropping A is safe, with one remove per cluster', () => {
    const s = rotationStatus(
      mesh({ east: 'new', west: 'new', bundle: 'AB' }),
      new Date(START + LIFETIME + HOUR),
    );
    assert.equal(s.next.action, 'drop-old-anchors');
    assert.equal(s.next.phase, 5);
    assert.equal(s.next.safe, true);
    const fpA = fingerprint(p.A.cert.der);
    assert.ok(
      s.next.commands.every((c) => c.commands.some((l) => l.includes(`bundle remove`) && l.includes(fpA))),
    );
  });

  it('A dropped before the bound: trust is broken now (an early removal)', () => {
    const s = rotationStatus(
      mesh({ east: 'new', west: 'new', bundle: 'AB', westBundle: 'B' }),
      new Date(START + HOUR),
    );
    assert.equal(s.next.action, 'repair');
    assert.equal(s.earlyRemovals.length, 1);
    assert.deepEqual(s.earlyRemovals[0]?.clusters, ['west']);
  });

  it('A dropped from every bundle before the bound of a directory issuer: an early removal, known by the cross certificate', () => {
    const s = rotationStatus(mesh({ east: 'new', west: 'new', bundle: 'B' }), new Date(START + HOUR));
    assert.equal(s.next.action, 'repair');
    assert.deepEqual(
      s.earlyRemovals.map((r) => r.anchorFingerprint),
      [null],
    );
  });

  it('an admin issuer restarted after A left every bundle: no false alarm (its record, not its restart, counts)', () => {
    const clusters = mesh({ east: 'new', west: 'new', bundle: 'B', switchAt: START });
    const restarted = clusters.map((c) =>
      c.kind === 'admin' && c.issuance !== undefined
        ? { ...c, issuance: { ...c.issuance, credentialLoadedAt: new Date(START + LIFETIME + 2 * HOUR) } }
        : c,
    );
    const s = rotationStatus(restarted, new Date(START + LIFETIME + 3 * HOUR));
    assert.deepEqual(s.problems, []);
    assert.equal(s.next.action, 'wait-old-proxies');
  });

  it('a B-issuer without the cross certificate while a bundle lacks B breaks trust now', () => {
    const s = rotationStatus(mesh({ east: 'new-no-cross', west: 'old', bundle: 'A' }), new Date(START), {
      newAnchor: { kind: 'certificate', certificate: p.B.cert },
    });
    assert.ok(s.problems.length > 0);
    assert.equal(s.next.action, 'repair');
  });

  describe('phase 6: proxies that trust only A', () => {
    const pod = (cluster: string, name: string, anchors: CertificateInfo[] | 'unknown'): ProxyPod => ({
      cluster,
      namespace: 'default',
      name,
      anchors,
    });
    const done = (): ClusterSnapshot[] => mesh({ east: 'new', west: 'new', bundle: 'B' });
    const late = new Date(START + LIFETIME + HOUR);

    it('without --kubeconfig it cannot know: the step waits and names the missing input', () => {
      const s = rotationStatus(done(), late, { inputs: inputs() });
      assert.deepEqual(
        s.clusters.map((c) => c.phase.phase),
        [5, 5],
      );
      assert.equal(s.next.action, 'wait-old-proxies');
      assert.deepEqual(s.next.missing, ['kubeconfig']);
      assert.equal(s.next.preconditions[0]?.holds, 'unknown');
      assert.equal(s.next.safe, false);
    });

    it('lists the pods whose proxy trusts only A', () => {
      const pods: Record<string, ClusterPods> = {
        east: {
          kind: 'listed',
          pods: [pod('east', 'old', [p.A.cert]), pod('east', 'both', [p.A.cert, p.B.cert])],
        },
        west: { kind: 'listed', pods: [pod('west', 'new', [p.B.cert])] },
      };
      const s = rotationStatus(done(), late, { inputs: inputs(), pods });
      assert.deepEqual(s.problems, []);
      assert.equal(s.next.action, 'wait-old-proxies');
      const pre = s.next.preconditions[0];
      assert.equal(pre?.kind, 'no-proxy-trusts-only-old');
      assert.equal(pre.holds, false);
      assert.deepEqual(pre.pods, [{ cluster: 'east', namespace: 'default', name: 'old' }]);
    });

    it('an unreadable anchor list or an unlisted cluster keeps it unknown', () => {
      const pods: Record<string, ClusterPods> = {
        east: { kind: 'listed', pods: [pod('east', 'from-secret', 'unknown')] },
        west: { kind: 'unavailable', code: 'ERR_PODS_INVALID' },
      };
      const s = rotationStatus(done(), late, { inputs: inputs(), pods });
      assert.equal(s.next.preconditions[0]?.holds, 'unknown');
      assert.deepEqual(s.clusters[1]?.proxies, { kind: 'unavailable', code: 'ERR_PODS_INVALID' });
    });

    it('stopping the cross certificate is safe when every proxy trusts B', () => {
      const pods: Record<string, ClusterPods> = {
        east: { kind: 'listed', pods: [pod('east', 'both', [p.A.cert, p.B.cert])] },
        west: { kind: 'listed', pods: [] },
      };
      const s = rotationStatus(done(), late, { inputs: inputs(), pods });
      assert.equal(s.next.action, 'stop-serving-cross');
      assert.equal(s.next.safe, true);
      assert.ok(
        s.next.commands.every((c) =>
          c.commands.some((l) => l.startsWith('lanyard issuer create') && !l.includes('--cross-signed')),
        ),
      );
    });

    it('a proxy trusting only A once no issuer serves the cross certificate: trust is broken now', () => {
      const pods: Record<string, ClusterPods> = {
        east: { kind: 'listed', pods: [pod('east', 'old', [p.A.cert])] },
        west: { kind: 'listed', pods: [] },
      };
      const s = rotationStatus(mesh({ east: 'new-no-cross', west: 'new-no-cross', bundle: 'B' }), late, {
        pods,
      });
      assert.ok(s.problems.length > 0);
      assert.equal(s.next.action, 'repair');
    });

    it('done: bundles {B}, no cross certificate, every proxy trusts B: steady', () => {
      const s = rotationStatus(mesh({ east: 'new-no-cross', west: 'new-no-cross', bundle: 'B' }), late);
      assert.equal(s.phase, 'steady');
      assert.deepEqual(s.problems, []);
    });
  });
});
