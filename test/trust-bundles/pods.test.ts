import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fingerprint } from '../../ca/index.js';
import { listClusterPods, listProxyPods } from '../../trust-bundles/pods-source.js';
import type { ClusterPods } from '../../trust-bundles/pods.js';
import type { RotationStatus } from '../../trust-bundles/index.js';
import { runLanyard } from '../support/cli-inproc.js';
import { FakeClock } from '../support/clock.js';
import { startPodListStandIn, type PodListStandIn, type StandInPod } from '../support/pod-list-stand-in.js';
import { testDir } from '../support/temp-dir.js';
import { pem, rotationPki, START, type RotationPki } from './rotation-fixtures.js';

const ENV = 'LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS';

function kubeconfig(dir: string, api: PodListStandIn, name = 'kubeconfig'): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      'current-context: c',
      'contexts: [{ name: c, context: { cluster: k, user: u } }]',
      `clusters: [{ name: k, cluster: { server: "${api.url}", certificate-authority-data: ${Buffer.from(api.caPem).toString('base64')} } }]`,
      `users: [{ name: u, user: { token: ${api.callerToken} } }]`,
    ].join('\n'),
  );
  return path;
}

describe('the pods of a cluster, from the Kubernetes PodList (stand-in)', () => {
  let p: RotationPki;
  let api: PodListStandIn;
  const proxy = (name: string, env: StandInPod['containers'][number]['env']): StandInPod => ({
    namespace: 'shop',
    name,
    containers: [{ name: 'app' }, { name: 'linkerd-proxy', ...(env !== undefined ? { env } : {}) }],
  });
  before(async () => {
    p = await rotationPki();
    api = await startPodListStandIn([
      proxy('old-0', [{ name: ENV, value: pem(p.A.cert) }]),
      proxy('both-0', [
        { name: 'OTHER', value: 'x' },
        { name: ENV, value: pem(p.A.cert, p.B.cert) },
      ]),
      proxy('from-configmap', [
        { name: ENV, valueFrom: { configMapKeyRef: { name: 'linkerd-identity-trust-roots' } } },
      ]),
      proxy('garbage', [{ name: ENV, value: 'not a PEM' }]),
      { namespace: 'shop', name: 'no-proxy', containers: [{ name: 'app' }] },
    ]);
  });
  after(async () => {
    await api.close();
  });

  it('reads every page (limit/continue) and each proxy’s anchors; valueFrom and garbage are unknown', async (t) => {
    api.override(undefined);
    const path = kubeconfig(testDir(t, 'lanyard-pods-'), api);
    const r = await listClusterPods('east', path, { pageSize: 2 });
    assert.equal(r.kind, 'listed');
    assert.deepEqual(
      r.pods.map((x) => [
        x.name,
        x.anchors === 'unknown' ? 'unknown' : x.anchors.map((a) => fingerprint(a.der)),
      ]),
      [
        ['old-0', [fingerprint(p.A.cert.der)]],
        ['both-0', [fingerprint(p.A.cert.der), fingerprint(p.B.cert.der)]],
        ['from-configmap', 'unknown'],
        ['garbage', 'unknown'],
      ],
    );
    assert.ok(api.limits.length >= 3);
  });

  const hostile: [string, { status: number; body: string } | 'hang', string][] = [
    ['not JSON', { status: 200, body: '<html>' }, 'ERR_PODS_INVALID'],
    ['JSON that is not a PodList', { status: 200, body: '{"kind":"Status"}' }, 'ERR_PODS_INVALID'],
    ['an error status', { status: 403, body: '{}' }, 'ERR_FETCH_FAILED'],
    ['a page larger than the limit', { status: 200, body: 'x'.repeat(4096) }, 'ERR_FETCH_FAILED'],
    ['no answer', 'hang', 'ERR_FETCH_FAILED'],
  ];
  for (const [what, answer, code] of hostile)
    it(`${what}: the cluster is unavailable with ${code}, never a crash`, async (t) => {
      api.override(answer);
      const path = kubeconfig(testDir(t, 'lanyard-pods-'), api);
      const r: ClusterPods = await listClusterPods('east', path, { maxPageBytes: 1024, timeoutMs: 300 });
      assert.deepEqual(r, { kind: 'unavailable', code });
      api.override(undefined);
    });

  it('a kubeconfig that cannot be read is unavailable with its code', async () => {
    assert.deepEqual(await listClusterPods('east', '/nonexistent/kubeconfig'), {
      kind: 'unavailable',
      code: 'ERR_FILE_NOT_FOUND',
    });
  });

  it('stops after maxPages (ERR_PODS_INVALID)', async () => {
    api.override(undefined);
    await assert.rejects(
      listProxyPods(
        'east',
        { server: api.url, caPem: api.caPem, token: api.callerToken },
        { pageSize: 1, maxPages: 2 },
      ),
      { code: 'ERR_PODS_INVALID' },
    );
  });

  it('rotate status --kubeconfig lists the proxies that trust only A (phase 6 waits on them)', async (t) => {
    api.override(undefined);
    const dir = testDir(t, 'lanyard-pods-');
    const d = join(dir, 'east');
    mkdirSync(d, { mode: 0o700 });
    const i = p.newIssuer.east;
    assert.ok(i);
    writeFileSync(join(d, 'tls.crt'), pem(i.cert, p.cross));
    writeFileSync(join(d, 'tls.key'), i.keyPem, { mode: 0o600 });
    writeFileSync(join(d, 'ca.crt'), pem(p.B.cert));
    // the issuer files changed now (real time, years before START): the old leaves' bound has passed
    const clock = new FakeClock(START);
    const without = await runLanyard(['rotate', 'status', '--cluster', `east=${d}`, '--json'], { clock });
    assert.equal(without.code, 3, without.err);
    assert.deepEqual((JSON.parse(without.out) as RotationStatus).next.missing, ['kubeconfig']);
    const r = await runLanyard(
      [
        'rotate',
        'status',
        '--cluster',
        `east=${d}`,
        '--kubeconfig',
        `east=${kubeconfig(dir, api)}`,
        '--json',
      ],
      { clock },
    );
    assert.equal(r.code, 3, r.err);
    const s = JSON.parse(r.out) as RotationStatus;
    assert.equal(s.next.action, 'wait-old-proxies');
    const east = s.clusters[0];
    assert.equal(east?.proxies.kind, 'listed');
    assert.deepEqual(east.proxies.onlyOld, [{ cluster: 'east', namespace: 'shop', name: 'old-0' }]);
  });
});

describe('the pod listing is bounded as a whole', () => {
  let p: RotationPki;
  let api: PodListStandIn;
  const pods = (n: number, value: string): StandInPod[] =>
    Array.from({ length: n }, (_, i) => ({
      namespace: 'shop',
      name: `p-${i}`,
      containers: [{ name: 'linkerd-proxy', env: [{ name: ENV, value }] }],
    }));
  before(async () => {
    p = await rotationPki(['east']);
    api = await startPodListStandIn(pods(4, pem(p.A.cert)));
  });
  after(async () => {
    await api.close();
  });
  const conn = () => ({ server: api.url, caPem: api.caPem, token: api.callerToken });

  it('one deadline for the whole listing, on the injected scheduler (ERR_FETCH_FAILED)', async () => {
    api.override('hang');
    const clock = new FakeClock(START);
    const listing = listProxyPods('east', conn(), { deadlineMs: 1000, timeoutMs: 600_000, scheduler: clock });
    clock.advance(1000);
    await assert.rejects(listing, { code: 'ERR_FETCH_FAILED', reason: 'timeout' });
    api.override(undefined);
  });

  it('a server repeating its continue token is refused (ERR_PODS_INVALID), not followed to maxPages', async () => {
    api.override({
      status: 200,
      body: JSON.stringify({ kind: 'PodList', metadata: { continue: 'same' }, items: [] }),
    });
    const before = api.limits.length;
    await assert.rejects(listProxyPods('east', conn(), { maxPages: 50 }), { code: 'ERR_PODS_INVALID' });
    assert.ok(api.limits.length - before <= 2);
    api.override(undefined);
  });

  it('caps the pods kept and the bytes read over all pages (ERR_PODS_INVALID)', async () => {
    api.override(undefined);
    await assert.rejects(listProxyPods('east', conn(), { pageSize: 1, maxPods: 2 }), {
      code: 'ERR_PODS_INVALID',
    });
    assert.equal((await listProxyPods('east', conn(), { pageSize: 1, maxPods: 4 })).length, 4);
    await assert.rejects(listProxyPods('east', conn(), { pageSize: 1, maxTotalBytes: 2000 }), {
      code: 'ERR_PODS_INVALID',
    });
  });

  it('parses each distinct anchors value once per listing', async () => {
    const listed = await listProxyPods('east', conn(), { pageSize: 1 });
    assert.equal(listed.length, 4);
    const first = listed[0]?.anchors;
    assert.ok(first !== undefined && first !== 'unknown');
    assert.ok(listed.every((x) => x.anchors === first));
  });

  it('a kubeconfig over its bound is unavailable with ERR_FILE_INVALID', async (t) => {
    const path = join(testDir(t, 'lanyard-pods-'), 'kubeconfig');
    writeFileSync(path, `# ${'x'.repeat(1024 * 1024)}\n`);
    assert.deepEqual(await listClusterPods('east', path), { kind: 'unavailable', code: 'ERR_FILE_INVALID' });
  });

  it('a token file over its bound is refused with ERR_FILE_INVALID', async (t) => {
    const dir = testDir(t, 'lanyard-pods-');
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'x'.repeat(64 * 1024 + 1));
    await assert.rejects(listProxyPods('east', { server: api.url, caPem: api.caPem, tokenFile }), {
      code: 'ERR_FILE_INVALID',
    });
  });
});
