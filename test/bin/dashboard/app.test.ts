import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it, type TestContext } from 'node:test';
import { systemClock } from '../../../ca/index.js';
import { createDashboardApp, createMeshPoller, DASHBOARD_DEFAULTS } from '../../../bin/dashboard/index.js';
import { dashboardTargets } from '../../../bin/cli/dashboard.js';
import type { MeshView } from '../../../trust-bundles/index.js';
import { scriptedAuthenticator } from '../../support/authn.js';
import { defer } from '../../support/cleanup.js';
import { startHttp, trickle, type TestHttp } from '../../support/http-server.js';
import { startTestIssuer, type TestIssuer } from '../../support/issuer.js';
import { testPki } from '../../support/pki.js';
import { waitFor } from '../../support/wait.js';

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** A dashboard app over a poller the test drives (not started); both are closed with the test. */
function dashboardOver(
  t: TestContext,
  o: Pick<Parameters<typeof createMeshPoller>[0], 'targets' | 'timeoutMs' | 'maxBytes'>,
): { poller: ReturnType<typeof createMeshPoller>; app: ReturnType<typeof createDashboardApp> } {
  const poller = createMeshPoller({ ...o, intervalMs: 60_000, clock: systemClock, start: false });
  defer(t, () => {
    poller.close();
  });
  const app = createDashboardApp({ poller, clock: systemClock, refreshMs: 5000 });
  defer(t, () => app.close());
  return { poller, app };
}

describe('lanyard dashboard (the app, with inject())', () => {
  let east: TestIssuer;
  let hostile: TestHttp;
  before(async () => {
    const pki = await testPki({ now: systemClock.now(), clusters: ['east'] });
    east = await startTestIssuer({ pki, authenticator: scriptedAuthenticator() });
    hostile = await startHttp();
    // not Lanyard: JSON of another shape, and a bundle that is fine
    hostile.route('/other/v1/status', (_q, r) => r.end('{"hello":"world"}'));
    hostile.route('/other/v1/bundle', (_q, r) => r.end(pki.anchorsPem));
    hostile.route('/html/v1/status', (_q, r) => r.end('<html>login</html>'));
    hostile.route('/html/v1/bundle', (_q, r) => r.end(pki.anchorsPem));
    hostile.route('/slow/v1/status', trickle);
    hostile.route('/slow/v1/bundle', trickle);
    hostile.route('/huge/v1/status', (_q, r) => {
      r.writeHead(200, { 'content-type': 'application/json' });
      r.end(`{"cluster":"${'x'.repeat(200_000)}"}`);
    });
    hostile.route('/huge/v1/bundle', (_q, r) => r.end(pki.anchorsPem));
  });
  after(async () => {
    await east.close();
    await hostile.close();
  });

  it('shows a live issuer: its state, the anchor and its issuer on the timeline, each value linked to its JSON', async (t) => {
    const { poller, app } = dashboardOver(t, {
      targets: [{ name: 'east', target: east.adminUrl }],
      timeoutMs: 2000,
      maxBytes: DASHBOARD_DEFAULTS.maxBytes,
    });
    const pending = (await app.inject('/v1/mesh')).json<MeshView>();
    assert.equal(pending.clusters[0]?.state, 'pending');
    await poller.refresh();

    const mesh = (await app.inject('/v1/mesh')).json<MeshView>();
    const c = mesh.clusters[0];
    assert.equal(c?.state, 'ok');
    assert.equal(c.ready, true);
    assert.equal(c.certificatesIssued, 0);
    assert.equal(c.metrics?.lastReload?.result, 'ok');
    assert.equal(mesh.anchors.length, 1);
    assert.deepEqual(mesh.timeline.map((i) => i.kind).sort(), ['anchor', 'issuer', 'leaf-horizon']);
    assert.ok(mesh.matrix.every((m) => m.inBundle && m.issuerChains && m.mismatch === null));
    assert.equal(mesh.rotation?.phase, 'steady');

    const page = await app.inject('/');
    assert.equal(page.statusCode, 200);
    assert.match(page.headers['content-type'] as string, /^text\/html/);
    assert.match(page.headers['content-security-policy'] as string, /default-src 'none'/);
    // self-contained: nothing fetched from anywhere, not even from itself
    assert.doesNotMatch(page.body, /<script|<link|src=|@import|url\(/i);
    assert.match(page.body, /<meta http-equiv="refresh" content="5">/);
    assert.match(page.body, /href="\/v1\/clusters\/east\/status"/);
    assert.match(page.body, /href="\/v1\/clusters\/east\/metrics"/);
    assert.match(page.body, /href="\/v1\/mesh"/);

    const status = await app.inject('/v1/clusters/east/status');
    assert.equal(status.statusCode, 200);
    assert.equal(status.json<{ cluster: string }>().cluster, 'east');
    const metrics = await app.inject('/v1/clusters/east/metrics');
    assert.match(metrics.body, /^lanyard_issuer_expiry_timestamp_seconds\{cluster="east"\} /m);
    assert.equal((await app.inject('/v1/clusters/nowhere/status')).statusCode, 404);
  });

  it('serves GET only, on loopback by default', async (t) => {
    const { app } = dashboardOver(t, { targets: [], timeoutMs: 1000, maxBytes: 1024 });
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH'] as const)
      for (const url of ['/', '/v1/mesh', '/v1/clusters/east/status'])
        assert.equal((await app.inject({ method, url })).statusCode, 404, `${method} ${url}`);
    assert.match(DASHBOARD_DEFAULTS.listen, /^127\.0\.0\.1:/);
  });

  it('shows a cluster that is not Lanyard, slow, huge or gone as broken or unreachable with the reason, without stalling the others', async (t) => {
    const gone = await closedPort();
    const targets = dashboardTargets([
      `east=${east.adminUrl}`,
      `other=${hostile.origin}/other`,
      `html=${hostile.origin}/html`,
      `slow=${hostile.origin}/slow`,
      `huge=${hostile.origin}/huge`,
      `gone=http://127.0.0.1:${gone}`,
    ]);
    const timeoutMs = 1500;
    const { poller, app } = dashboardOver(t, { targets, timeoutMs, maxBytes: 64 * 1024 });
    const started = performance.now();
    const all = poller.refresh();
    const state = (name: string): string | undefined =>
      poller.readings().find((r) => r.name === name)?.reading?.state;
    // east is read (and shown) while the slow cluster still holds its read open
    await waitFor(() => state('east') === 'ok', 'east read', { timeoutMs: timeoutMs - 500 });
    assert.equal(state('slow'), undefined);
    const page = await app.inject('/');
    assert.match(page.body, /<h3 id="cluster-east">east<\/h3><p><span class="badge ok">ready/);
    assert.match(page.body, /<h3 id="cluster-slow">slow<\/h3><p><span class="badge warn">not read yet/);
    await all;
    assert.ok(performance.now() - started < timeoutMs + 2000, 'the slow cluster is cut at its deadline');

    const mesh = (await app.inject('/v1/mesh')).json<MeshView>();
    assert.deepEqual(
      mesh.clusters.map((c) => [c.name, c.state, c.problem]),
      [
        ['east', 'ok', null],
        ['other', 'broken', 'not-lanyard-status'],
        ['html', 'broken', 'not-lanyard-status'],
        ['slow', 'broken', 'timeout'],
        ['huge', 'broken', 'too-large'],
        ['gone', 'unreachable', 'unreachable'],
      ],
    );
    const body = (await app.inject('/')).body;
    for (const c of mesh.clusters.slice(1)) {
      assert.ok(c.reason !== null && c.reason.length > 0);
      // the page names the state and the reason, and never the URL
      assert.ok(body.includes(`<span class="badge bad">${c.state}</span>`), c.name);
    }
    assert.doesNotMatch(body, /127\.0\.0\.1/);
    assert.equal(mesh.rotation?.unread.length, 5);
    assert.equal((await app.inject('/v1/clusters/slow/status')).statusCode, 502);
  });

  it('refuses a --cluster that is not an admin URL', () => {
    assert.throws(() => dashboardTargets(['east=/etc/lanyard/issuer']), { code: 'ERR_USAGE' });
    assert.throws(() => dashboardTargets(['east=ftp://host/x']), { code: 'ERR_USAGE' });
  });
});
