// The impersonation node check (issuer/impersonation.ts) against a stand-in for the Kubernetes Pod API.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { LanyardError, type ServiceAccountRef } from '../../ca/index.js';
import type { AuthenticatedAccount } from '../../issuer/authn/index.js';
import { statusName, toIstioGrpcError } from '../../issuer/grpc/status.js';
import {
  createNodeImpersonationCheck,
  IMPERSONATION_LIMITS,
  type ImpersonationLimits,
  type NodeImpersonationCheck,
} from '../../issuer/impersonation.js';
import { createIssuerMetrics } from '../../issuer/metrics.js';
import { FakeClock } from '../support/clock.js';
import { closedPort } from '../support/jwks-server.js';
import {
  standInPodUid,
  startPodListStandIn,
  type PodListStandIn,
  type StandInPod,
} from '../support/pod-list-stand-in.js';
import { waitFor } from '../support/wait.js';

const ZTUNNEL_POD: StandInPod = {
  namespace: 'istio-system',
  name: 'ztunnel-a1',
  serviceAccountName: 'ztunnel',
  nodeName: 'node-a',
  containers: [{ name: 'istio-proxy' }],
};
const WEB: ServiceAccountRef = { namespace: 'default', name: 'web' };
const DB: ServiceAccountRef = { namespace: 'default', name: 'db' };
const webPod = (over: Partial<StandInPod> = {}): StandInPod => ({
  namespace: 'default',
  name: 'web-1',
  serviceAccountName: 'web',
  nodeName: 'node-a',
  containers: [{ name: 'app' }],
  ...over,
});
const CALLER: AuthenticatedAccount = {
  namespace: 'istio-system',
  name: 'ztunnel',
  pod: { name: ZTUNNEL_POD.name, uid: standInPodUid(ZTUNNEL_POD) },
};

/** 'OK', or the error's code and, through the Istio status table, its gRPC status name. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    assert.ok(err instanceof LanyardError, String(err));
    return `${err.code} ${statusName(toIstioGrpcError(err).grpcCode)}`;
  }
}
const DENIED = 'ERR_IMPERSONATION_DENIED UNAUTHENTICATED';
const UNAVAILABLE = 'ERR_AUTHENTICATOR_UNAVAILABLE UNAVAILABLE';

describe('impersonation node check (Kubernetes Pod API stand-in)', () => {
  let api: PodListStandIn;
  let clock: FakeClock;
  let node: NodeImpersonationCheck | undefined;
  let base = 0;
  /** the requests the stand-in received in this test */
  const seen = (): readonly string[] => api.requests.slice(base);
  const open = (limits: Partial<ImpersonationLimits> = {}, server = api.url): NodeImpersonationCheck => {
    const c = createNodeImpersonationCheck({
      connection: { server, caPem: api.caPem, token: api.callerToken },
      clock,
      scheduler: clock,
      limits,
    });
    return c;
  };
  const check = (caller: AuthenticatedAccount = CALLER, target: ServiceAccountRef = WEB, c = node) =>
    (c ?? assert.fail('no check')).check({ caller, target, signal: new AbortController().signal });

  before(async () => {
    api = await startPodListStandIn([]);
  });
  after(() => api.close());
  beforeEach(() => {
    clock = new FakeClock('2026-06-01T00:00:00Z');
    api.override(undefined);
    api.setPods([ZTUNNEL_POD, webPod()]);
    base = api.requests.length;
    node?.close();
    node = open();
  });

  it('allows a target service account with a Running pod on the caller pod’s node', async () => {
    assert.equal(await outcome(check()), 'OK');
    assert.deepEqual(
      seen().map((r) => decodeURIComponent(r)),
      [
        '/api/v1/namespaces/istio-system/pods/ztunnel-a1',
        '/api/v1/namespaces/default/pods?fieldSelector=spec.nodeName=node-a,spec.serviceAccountName=web&limit=10',
      ],
    );
  });

  it('allows a Pending pod of the target on the node (ztunnel asks as the pod’s sandbox starts)', async () => {
    api.setPods([ZTUNNEL_POD, webPod({ phase: 'Pending' })]);
    assert.equal(await outcome(check()), 'OK');
  });

  it('refuses when the target’s pod is on another node than the caller’s pod', async () => {
    api.setPods([ZTUNNEL_POD, webPod({ nodeName: 'node-b' })]);
    assert.equal(await outcome(check()), DENIED);
  });

  it('refuses a target service account with no pod on the node (other accounts’ pods do not count)', async () => {
    api.setPods([
      ZTUNNEL_POD,
      webPod({ serviceAccountName: 'api' }),
      webPod({ namespace: 'other', name: 'w' }),
    ]);
    assert.equal(await outcome(check()), DENIED);
  });

  it('refuses when the target’s only pod on the node has finished (Succeeded, Failed)', async () => {
    for (const phase of ['Succeeded', 'Failed'] as const) {
      api.setPods([ZTUNNEL_POD, webPod({ phase })]);
      assert.equal(await outcome(check()), DENIED, phase);
    }
  });

  it('allows a target pod being deleted, or in phase Unknown (istiod allows any scheduled pod)', async () => {
    // ztunnel needs certificates for pods in graceful termination
    const uncached = open({ cacheTtlMs: 0 });
    try {
      for (const over of [{ deletionTimestamp: '2026-06-01T00:00:00Z' }, { phase: 'Unknown' }] as const) {
        api.setPods([ZTUNNEL_POD, webPod(over)]);
        assert.equal(await outcome(check(CALLER, WEB, uncached)), 'OK', JSON.stringify(over));
      }
      assert.equal(uncached.stats().requests, 4);
    } finally {
      uncached.close();
    }
  });

  it('refuses when the caller pod’s uid is not the token’s', async () => {
    const caller = { ...CALLER, pod: { name: ZTUNNEL_POD.name, uid: 'uid-of-an-older-pod' } };
    assert.equal(await outcome(check(caller)), DENIED);
  });

  it('refuses when the caller pod is gone, finished, unscheduled or runs as another account', async () => {
    const cases: (StandInPod | undefined)[] = [
      undefined,
      { ...ZTUNNEL_POD, phase: 'Failed' },
      { ...ZTUNNEL_POD, phase: 'Succeeded' },
      { ...ZTUNNEL_POD, nodeName: undefined },
      { ...ZTUNNEL_POD, serviceAccountName: 'default' },
    ].map((p) => (p === undefined ? undefined : (JSON.parse(JSON.stringify(p)) as StandInPod)));
    for (const p of cases) {
      api.setPods(p === undefined ? [webPod()] : [p, webPod()]);
      assert.equal(await outcome(check()), DENIED, JSON.stringify(p));
    }
  });

  it('allows a caller pod being deleted (its ztunnel still serves the node)', async () => {
    api.setPods([{ ...ZTUNNEL_POD, deletionTimestamp: '2026-06-01T00:00:00Z' }, webPod()]);
    assert.equal(await outcome(check()), 'OK');
  });

  it('refuses a caller whose token names no pod, or no pod uid, without asking the API server', async () => {
    assert.equal(await outcome(check({ namespace: 'istio-system', name: 'ztunnel' })), DENIED);
    // istiod compares the pod's uid with the token's exactly: a token without one matches no pod
    const noUid = { ...CALLER, pod: { name: ZTUNNEL_POD.name } };
    assert.equal(await outcome(check(noUid)), DENIED);
    assert.equal(seen().length, 0);
  });

  it('finds the target pod on a later page (limit/continue)', async () => {
    const others = Array.from({ length: 5 }, (_, i) => webPod({ name: `done-${i}`, phase: 'Succeeded' }));
    api.setPods([ZTUNNEL_POD, ...others, webPod()]);
    const paged = open({ pageSize: 2 });
    try {
      assert.equal(await outcome(check(CALLER, WEB, paged)), 'OK');
      assert.equal(seen().filter((r) => r.includes('continue=')).length, 2);
    } finally {
      paged.close();
    }
  });

  it('answers UNAVAILABLE, never a refusal, when the API server is down, failing or answers nonsense', async () => {
    const down = open({}, `https://127.0.0.1:${await closedPort()}`);
    try {
      assert.equal(await outcome(check(CALLER, WEB, down)), UNAVAILABLE);
    } finally {
      down.close();
    }
    for (const answer of [
      { status: 500, body: '{"kind":"Status","code":500}' },
      { status: 403, body: '{"kind":"Status","code":403}' },
      { status: 200, body: 'not json' },
      { status: 200, body: '{"kind":"Secret"}' },
    ]) {
      api.override(answer);
      assert.equal(await outcome(check()), UNAVAILABLE, JSON.stringify(answer));
    }
  });

  it('reads a 404 as no pod only when it is a NotFound Status for a pod; any other 404 is UNAVAILABLE', async () => {
    const status = (over: object) =>
      JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 404, ...over });
    api.override({ status: 404, body: status({ reason: 'NotFound', details: { name: 'z', kind: 'pods' } }) });
    assert.equal(await outcome(check()), DENIED);
    api.override({ status: 404, body: status({ reason: 'NotFound' }) });
    assert.equal(await outcome(check()), DENIED);
    for (const body of [
      '404 page not found',
      status({ reason: 'NotFound', details: { name: 'z', kind: 'namespaces' } }),
      status({ reason: 'Forbidden' }),
      JSON.stringify({ kind: 'Pod' }),
    ]) {
      api.override({ status: 404, body });
      assert.equal(await outcome(check()), UNAVAILABLE, body);
    }
  });

  it('answers UNAVAILABLE when the list of pods on the node is a 404', async () => {
    const isList = (r: string) => r.includes('?');
    api.override(
      { status: 404, body: JSON.stringify({ kind: 'Status', reason: 'NotFound', code: 404 }) },
      isList,
    );
    assert.equal(await outcome(check()), UNAVAILABLE);
    assert.equal(seen().filter(isList).length, 1);
  });

  it('starts the list over once when a continue token expired (410 Gone), and only once', async () => {
    const others = Array.from({ length: 3 }, (_, i) => webPod({ name: `done-${i}`, phase: 'Succeeded' }));
    api.setPods([ZTUNNEL_POD, ...others, webPod()]);
    const expired = {
      status: 410,
      body: JSON.stringify({
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Failure',
        reason: 'Expired',
        code: 410,
      }),
    };
    const paged = open({ pageSize: 2, cacheTtlMs: 0 });
    try {
      let expiries = 1;
      api.override(expired, (r) => r.includes('continue=') && expiries-- > 0);
      assert.equal(await outcome(check(CALLER, WEB, paged)), 'OK');
      const lists = seen().filter((r) => r.includes('fieldSelector'));
      assert.deepEqual(
        lists.map((r) => r.includes('continue=')),
        [false, true, false, true],
      );
      // expired again after the restart: the answer cannot be known
      expiries = 2;
      assert.equal(await outcome(check(CALLER, WEB, paged)), UNAVAILABLE);
    } finally {
      paged.close();
    }
  });

  it('answers UNAVAILABLE when the list runs past maxPages or repeats a continue token', async () => {
    const others = Array.from({ length: 6 }, (_, i) => webPod({ name: `done-${i}`, phase: 'Succeeded' }));
    api.setPods([ZTUNNEL_POD, ...others, webPod()]);
    const short = open({ pageSize: 2, maxPages: 3 });
    try {
      assert.equal(await outcome(check(CALLER, WEB, short)), UNAVAILABLE);
      assert.equal(seen().filter((r) => r.includes('fieldSelector')).length, 3);
    } finally {
      short.close();
    }
    const loop = JSON.stringify({
      kind: 'PodList',
      apiVersion: 'v1',
      metadata: { continue: 'same' },
      items: [],
    });
    api.override({ status: 200, body: loop }, (r) => r.includes('fieldSelector'));
    assert.equal(await outcome(check()), UNAVAILABLE);
    assert.equal(seen().filter((r) => r.includes('continue=same')).length, 1);
  });

  it('answers UNAVAILABLE, asking nothing more, when the caller pod’s nodeName is not a node name', async () => {
    for (const nodeName of ['node-a,spec.serviceAccountName=web', 'Node_A', 'a'.repeat(254)]) {
      api.setPods([{ ...ZTUNNEL_POD, nodeName }, webPod({ nodeName })]);
      const before = seen().length;
      assert.equal(await outcome(check()), UNAVAILABLE, nodeName);
      assert.equal(seen().length - before, 1, nodeName);
    }
  });

  it('answers UNAVAILABLE for an answer larger than its bound', async () => {
    api.override({ status: 200, body: JSON.stringify({ kind: 'Pod', pad: 'x'.repeat(64 * 1024) }) });
    const small = open({ maxPodBytes: 16 * 1024 });
    try {
      assert.equal(await outcome(check(CALLER, WEB, small)), UNAVAILABLE);
    } finally {
      small.close();
    }
  });

  it('answers UNAVAILABLE when the API server does not answer within the check’s time', async () => {
    api.override('hang');
    const slow = open({ timeoutMs: 2_000 });
    try {
      const p = outcome(check(CALLER, WEB, slow));
      await waitFor(() => seen().length === 1, 'the request at the stand-in');
      clock.advance(2_000);
      assert.equal(await p, UNAVAILABLE);
    } finally {
      slow.close();
    }
  });

  it('stops when the call is cancelled, and refuses checks beyond maxConcurrent as UNAVAILABLE', async () => {
    api.override('hang');
    const one = open({ maxConcurrent: 1 });
    try {
      const ac = new AbortController();
      const first = outcome(one.check({ caller: CALLER, target: WEB, signal: ac.signal }));
      await waitFor(() => seen().length === 1, 'the request at the stand-in');
      // another target: another check, beyond the one slot
      assert.equal(await outcome(check(CALLER, DB, one)), UNAVAILABLE);
      ac.abort();
      assert.equal(await first, UNAVAILABLE);
      await waitFor(() => one.stats().inFlight === 0, 'the check to stop');
    } finally {
      one.close();
    }
  });

  it('allows the same (caller pod uid, target) again from its cache until cacheTtlMs, and only then', async () => {
    const cached = open({ cacheTtlMs: 10_000 });
    try {
      assert.equal(await outcome(check(CALLER, WEB, cached)), 'OK');
      api.setPods([ZTUNNEL_POD]);
      assert.equal(await outcome(check(CALLER, WEB, cached)), 'OK');
      assert.equal(cached.stats().cacheHits, 1);
      assert.equal(seen().length, 2);
      clock.advance(10_000);
      assert.equal(await outcome(check(CALLER, WEB, cached)), DENIED);
    } finally {
      cached.close();
    }
  });

  it('keys its caches by caller pod uid, caller account and target: another target or account is asked about', async () => {
    assert.equal(await outcome(check(CALLER, WEB)), 'OK');
    assert.equal(seen().length, 2);
    // the same caller pod uid asking for an account with no pod on the node: the cached `web` is no answer
    assert.equal(await outcome(check(CALLER, DB)), DENIED);
    // ... and its node is known: only the list is read
    assert.deepEqual(
      seen()
        .slice(2)
        .map((r) => decodeURIComponent(r)),
      [
        '/api/v1/namespaces/default/pods?fieldSelector=spec.nodeName=node-a,spec.serviceAccountName=db&limit=10',
      ],
    );
    // the same uid under another caller account: asked again (and refused: the pod runs as ztunnel)
    assert.equal(await outcome(check({ ...CALLER, name: 'other' }, WEB)), DENIED);
    assert.deepEqual(seen().slice(3), ['/api/v1/namespaces/istio-system/pods/ztunnel-a1']);
    assert.equal(node?.stats().callerPodCacheHits, 1);
  });

  it('merges identical checks in flight into one, and a waiter that gives up does not stop the others', async () => {
    const [a, b] = await Promise.all([outcome(check()), outcome(check())]);
    assert.deepEqual([a, b], ['OK', 'OK']);
    assert.equal(seen().length, 2);
    api.override('hang');
    const merged = open();
    try {
      const ac = new AbortController();
      const first = outcome(merged.check({ caller: CALLER, target: WEB, signal: ac.signal }));
      const second = outcome(check(CALLER, WEB, merged));
      await waitFor(() => seen().length === 3, 'the request at the stand-in');
      ac.abort();
      assert.equal(await first, UNAVAILABLE);
      assert.equal(merged.stats().inFlight, 1);
      clock.advance(IMPERSONATION_LIMITS.timeoutMs);
      assert.equal(await second, UNAVAILABLE);
      assert.equal(seen().length, 3);
    } finally {
      merged.close();
    }
  });

  it('holds at most maxConcurrentPerCaller checks of one caller pod uid; other callers still get a slot', async () => {
    const other = { ...ZTUNNEL_POD, name: 'ztunnel-b2', nodeName: 'node-b' };
    api.setPods([ZTUNNEL_POD, other, webPod()]);
    api.override('hang');
    const capped = open({ maxConcurrentPerCaller: 1 });
    try {
      const first = outcome(check(CALLER, WEB, capped));
      await waitFor(() => seen().length === 1, 'the request at the stand-in');
      assert.equal(await outcome(check(CALLER, DB, capped)), UNAVAILABLE);
      assert.equal(seen().length, 1);
      const otherCaller = { ...CALLER, pod: { name: other.name, uid: standInPodUid(other) } };
      const second = outcome(check(otherCaller, WEB, capped));
      await waitFor(() => seen().length === 2, 'the other caller’s request at the stand-in');
      clock.advance(IMPERSONATION_LIMITS.timeoutMs);
      assert.deepEqual(await Promise.all([first, second]), [UNAVAILABLE, UNAVAILABLE]);
    } finally {
      capped.close();
    }
  });

  it('is counted in lanyard_istio_impersonation_checks_total by result, read when scraped', async () => {
    const metrics = createIssuerMetrics({ defaultMetrics: false });
    const c = node ?? assert.fail('no check');
    metrics.watchImpersonation(() => c.stats());
    assert.equal(await outcome(check()), 'OK');
    assert.equal(await outcome(check()), 'OK');
    assert.equal(await outcome(check(CALLER, DB)), DENIED);
    api.override({ status: 500, body: '{}' });
    assert.equal(await outcome(check(CALLER, { namespace: 'default', name: 'api' })), UNAVAILABLE);
    const text = await metrics.requestRegistry.metrics();
    for (const [result, n] of [
      ['allowed', 1],
      ['cache_hit', 1],
      ['denied', 1],
      ['unavailable', 1],
    ] as const)
      assert.match(
        text,
        new RegExp(`^lanyard_istio_impersonation_checks_total\\{result="${result}"\\} ${n}$`, 'm'),
      );
    assert.match(text, /^lanyard_istio_impersonation_checks_in_flight 0$/m);
  });

  it('never tells the caller the API server’s address or a pod name', async () => {
    api.setPods([ZTUNNEL_POD]);
    const refused = await check().catch((e: unknown) => e);
    api.override({ status: 500, body: '{}' });
    const unavailable = await check().catch((e: unknown) => e);
    for (const err of [refused, unavailable]) {
      const sent = toIstioGrpcError(err).message;
      for (const secret of [api.url, '127.0.0.1', ZTUNNEL_POD.name, 'node-a'])
        assert.ok(!sent.includes(secret), `${sent} names ${secret}`);
    }
  });
});
