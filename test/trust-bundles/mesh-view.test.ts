import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../../ca/index.js';
import { buildMeshView, readCluster, type ClusterReading } from '../../trust-bundles/index.js';
import { summarizeMetrics, type ClusterRead } from '../../trust-bundles/mesh-read.js';
import { rotationView } from '../../trust-bundles/mesh-view.js';
import { adminCluster, rotationPki, START } from './rotation-fixtures.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { DAY } from '../support/clock.js';
import { startTestIssuer, type TestIssuer } from '../support/issuer.js';
import { testPki } from '../support/pki.js';

describe('the mesh view (what the dashboard draws)', () => {
  const issuers: TestIssuer[] = [];
  const readings: { name: string; reading: ClusterReading }[] = [];
  const started = systemClock.now();
  before(async () => {
    // east and west under different anchors: each trusts only its own
    for (const name of ['east', 'west']) {
      const pki = await testPki({ now: started, clusters: [name], issuerLifetimeMs: 30 * DAY });
      const issuer = await startTestIssuer({ pki, cluster: name, authenticator: scriptedAuthenticator() });
      issuers.push(issuer);
      const reading = await readCluster(
        { name, target: issuer.adminUrl },
        { timeoutMs: 2000, maxBytes: 1024 * 1024 },
        () => systemClock.now(),
      );
      readings.push({ name, reading });
    }
  });
  after(async () => {
    await Promise.all(issuers.map((i) => i.close()));
  });

  it('marks an issuer inside the warning window on the timeline, and one outside it not', () => {
    const issuerExpiry = (now: Date): boolean | undefined =>
      buildMeshView(readings, now).timeline.find((i) => i.id === 'issuer:east')?.warning;
    assert.equal(issuerExpiry(started), false);
    assert.equal(issuerExpiry(new Date(started.getTime() + 25 * DAY)), true);
    const later = buildMeshView(readings, new Date(started.getTime() + 31 * DAY));
    const item = later.timeline.find((i) => i.id === 'issuer:east');
    assert.equal(item?.expired, true);
    assert.equal(item.warning, false);
  });

  it('shows in the trust matrix the anchors a cluster lacks, as the check reports them', () => {
    const v = buildMeshView(readings, systemClock.now());
    assert.equal(v.anchors.length, 2);
    assert.equal(v.matrix.length, 4);
    const lacking = v.matrix.filter((c) => !c.inBundle);
    assert.equal(lacking.length, 2);
    assert.ok(lacking.every((c) => c.mismatch !== null));
    const chained = v.matrix.filter((c) => c.issuerChains);
    assert.deepEqual(chained.map((c) => c.cluster).sort(), ['east', 'west']);
    assert.ok(
      chained.every((c) => c.mismatch !== null),
      'each issuer is refused by the other cluster',
    );
    const checks = new Set(v.findings.map((f) => f.check));
    assert.ok(checks.has('anchor-missing'));
    assert.ok(checks.has('issuer-untrusted-by-peer'));
    assert.equal(v.rotation?.action, 'repair');
  });

  it('takes the Certify error ratio and the last reload from the metrics', () => {
    const m = summarizeMetrics(
      [
        '# HELP lanyard_requests_total x',
        'lanyard_requests_total{api="Certify",result="OK"} 3',
        'lanyard_requests_total{api="Certify",result="UNAUTHENTICATED"} 1',
        'lanyard_requests_total{api="Other",result="INTERNAL"} 5',
        'lanyard_credential_reloads_total{result="ok"} 2',
        'lanyard_credential_reloads_total{result="rejected"} 1',
        'lanyard_credential_last_reload_timestamp_seconds{result="ok"} 1000',
        'lanyard_credential_last_reload_timestamp_seconds{result="rejected"} 2000',
      ].join('\n'),
    );
    assert.deepEqual(m, {
      certifyCalls: 4,
      certifyErrors: 1,
      reloadsOk: 2,
      reloadsRejected: 1,
      lastReload: { result: 'rejected', at: new Date(2_000_000).toISOString() },
    });
  });

  it('in a rotation: the cross certificate and the renewal hint on the timeline, the phase and what the next step waits for', async () => {
    const p = await rotationPki();
    const hint = new Date(START + 6 * 3_600_000).toISOString();
    const read = ['east', 'west'].map((name): { name: string; reading: ClusterRead } => {
      const snapshot = adminCluster(name, {
        bundle: [p.A.cert, p.B.cert],
        chain: [(p.newIssuer[name] as { cert: ClusterRead['snapshot']['issuerChain'][0] }).cert, p.cross],
        loadedAt: START - 3_600_000,
      });
      const status = { leafLifetimeMs: 86_400_000, renewalHint: { after: hint, spreadMs: 600_000 } };
      return {
        name,
        reading: { name, readAt: '', state: 'ok', snapshot, status, metrics: null, metricsText: null },
      };
    });
    const v = buildMeshView(read, new Date(START));
    const kinds = (cluster: string): string[] =>
      v.timeline.filter((i) => i.cluster === cluster).map((i) => i.kind);
    assert.deepEqual(kinds('east').sort(), ['intermediate', 'issuer', 'leaf-horizon', 'renewal-hint']);
    assert.equal(v.timeline.find((i) => i.id === 'renewal-hint:east')?.at, hint);
    assert.equal(v.anchors.length, 2);
    assert.ok(v.matrix.every((c) => c.inBundle && c.mismatch === null));
    assert.equal(v.rotation?.phase, 'phase 4 of 6');
    assert.equal(v.rotation.action, 'wait-old-leaves');
    assert.deepEqual(v.rotation.waitsFor, ['old-leaves-expired']);
    assert.ok(v.rotation.waitUntil !== null);
    assert.match(v.rotation.clusters[0]?.summary ?? '', /serving the cross certificate/);
    // clusters that could not be read are named, not judged
    assert.deepEqual(rotationView([read[0]?.reading.snapshot as never], new Date(START), ['west']).unread, [
      'west',
    ]);
  });
});
