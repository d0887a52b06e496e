import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../../ca/index.js';
import { buildMeshView, readCluster, type ClusterReading } from '../../trust-bundles/index.js';
import { summarizeMetrics } from '../../trust-bundles/mesh-read.js';
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
});
