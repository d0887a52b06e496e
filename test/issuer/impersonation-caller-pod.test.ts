// The caller's pod, as the authenticators hand it to the impersonation check: from a JWT's
// `kubernetes.io.pod` claim or a TokenReview's user.extra, kept with cached and shared successes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createJwtAuthenticator, createTokenReviewAuthenticator } from '../../issuer/authn/index.js';
import { interpretTokenReview } from '../../issuer/authn/token-review-client.js';
import { pino } from 'pino';
import { UsageError } from '../../ca/index.js';
import { createAuthenticator } from '../../issuer/authn-factory.js';
import type { AuthConfig } from '../../issuer/config.js';
import { createRenewalCaches } from '../../issuer/renewal-cache.js';
import { shareRenewalCaches, type RenewalCacheBatch } from '../../issuer/renewal-cache-sharing.js';
import { DEV_TOKEN_ISSUER, createSigningKeyDir, mintServiceAccountToken } from '../../bin/token/index.js';
import { FakeClock } from '../support/clock.js';
import { testDir } from '../support/temp-dir.js';
import { jwtShapedToken, startTokenReviewStandIn } from '../support/token-review-stand-in.js';

const signal = new AbortController().signal;
const POD = { name: 'ztunnel-x7k2p', uid: '0b5c6a52-0f7e-4b43-9a57-3c1f4c0e9d11' };

async function jwtSetup(t: Parameters<typeof testDir>[0], callerPod: boolean) {
  const clock = new FakeClock();
  const dir = testDir(t);
  const signing = await createSigningKeyDir(dir, { clock });
  const auth = createJwtAuthenticator({
    jwks: { file: signing.jwksPath },
    issuer: DEV_TOKEN_ISSUER,
    audience: 'istio-ca',
    clock,
    callerPod,
  });
  t.after(() => auth.close());
  const mint = (pod?: { name: string; uid?: string }) =>
    mintServiceAccountToken({
      key: signing.key,
      kid: signing.kid,
      namespace: 'istio-system',
      serviceAccount: 'ztunnel',
      audience: 'istio-ca',
      now: clock.now(),
      ...(pod !== undefined
        ? { podName: pod.name, ...(pod.uid !== undefined ? { podUid: pod.uid } : {}) }
        : {}),
    });
  return { auth, mint };
}

describe('the caller pod of a JWT (kubernetes.io.pod)', () => {
  it('is returned by an authenticator asked for it, and again from its token cache', async (t) => {
    const { auth, mint } = await jwtSetup(t, true);
    const token = Buffer.from(await mint(POD));
    const first = await auth.authenticate(token, { signal });
    assert.deepEqual(first, { namespace: 'istio-system', name: 'ztunnel', pod: POD });
    const again = await auth.authenticate(token, { signal });
    assert.equal(auth.stats().cacheHits, 1);
    assert.deepEqual(again.pod, POD);
    assert.ok(Object.isFrozen(again) && Object.isFrozen(again.pod));
  });

  it('is left out by an authenticator not asked for it (the Linkerd API)', async (t) => {
    const { auth, mint } = await jwtSetup(t, false);
    const account = await auth.authenticate(Buffer.from(await mint(POD)), { signal });
    assert.deepEqual(account, { namespace: 'istio-system', name: 'ztunnel' });
  });

  it('is absent when the token names no pod (the token itself is still accepted)', async (t) => {
    const { auth, mint } = await jwtSetup(t, true);
    const account = await auth.authenticate(Buffer.from(await mint()), { signal });
    assert.equal(account.pod, undefined);
  });

  it('is absent when the token names the pod with a malformed uid (the mint always names one)', async (t) => {
    const { auth, mint } = await jwtSetup(t, true);
    const account = await auth.authenticate(Buffer.from(await mint({ name: POD.name, uid: 'not a uid!' })), {
      signal,
    });
    assert.equal(account.pod, undefined);
  });

  it('is absent when the pod name is not a DNS-1123 subdomain', async (t) => {
    const { auth, mint } = await jwtSetup(t, true);
    const account = await auth.authenticate(Buffer.from(await mint({ name: '../etc' })), { signal });
    assert.equal(account.pod, undefined);
  });
});

describe('the caller pod of a TokenReview answer (user.extra)', () => {
  const answer = (extra: unknown) => ({
    kind: 'TokenReview',
    status: {
      authenticated: true,
      audiences: ['istio-ca'],
      user: {
        username: 'system:serviceaccount:istio-system:ztunnel',
        ...(extra !== undefined ? { extra } : {}),
      },
    },
  });
  const extra = {
    'authentication.kubernetes.io/pod-name': [POD.name],
    'authentication.kubernetes.io/pod-uid': [POD.uid],
  };

  it('is read from authentication.kubernetes.io/pod-name and pod-uid when asked for', () => {
    assert.deepEqual(interpretTokenReview(answer(extra), 't', 'istio-ca', true).pod, POD);
    assert.equal(interpretTokenReview(answer(extra), 't', 'istio-ca').pod, undefined);
  });

  it('is returned by a TokenReview authenticator asked for it, and again from its token cache', async (t) => {
    const clock = new FakeClock();
    const api = await startTokenReviewStandIn({ clock });
    t.after(() => api.close());
    // the API server's answer with the extras a bound token gets (the stand-in does not set them)
    api.override({ status: 201, body: JSON.stringify(answer(extra)) });
    const auth = createTokenReviewAuthenticator({
      connection: { server: api.url, caPem: api.caPem, token: api.callerToken },
      clock,
      audience: 'istio-ca',
      callerPod: true,
    });
    t.after(() => auth.close());
    const token = Buffer.from(
      jwtShapedToken('system:serviceaccount:istio-system:ztunnel', {
        audiences: ['istio-ca'],
        now: clock.now(),
      }),
    );
    assert.deepEqual((await auth.authenticate(token, { signal })).pod, POD);
    assert.deepEqual((await auth.authenticate(token, { signal })).pod, POD);
    assert.equal(auth.stats().cacheHits, 1);
    assert.equal(api.requests, 1);
  });

  it('is absent without extras, or with a name list that is not exactly one string', () => {
    assert.equal(interpretTokenReview(answer(undefined), 't', 'istio-ca', true).pod, undefined);
    const two = { 'authentication.kubernetes.io/pod-name': ['a', 'b'] };
    assert.equal(interpretTokenReview(answer(two), 't', 'istio-ca', true).pod, undefined);
    // istiod compares the pod's uid with the token's exactly: without one (or a malformed one), no pod
    const noUid = { 'authentication.kubernetes.io/pod-name': [POD.name] };
    assert.equal(interpretTokenReview(answer(noUid), 't', 'istio-ca', true).pod, undefined);
    const badUid = { ...noUid, 'authentication.kubernetes.io/pod-uid': ['not a uid!'] };
    assert.equal(interpretTokenReview(answer(badUid), 't', 'istio-ca', true).pod, undefined);
  });
});

describe('a token success with a pod, and the renewal cache shared between workers', () => {
  it('is never shared (only successes without a pod are)', () => {
    const clock = new FakeClock('2026-06-01T00:00:00Z');
    const sent: RenewalCacheBatch[] = [];
    const worker = () => {
      const caches = createRenewalCaches();
      caches.token.vouches = (by) => by === 'key-1';
      const sharing = shareRenewalCaches({
        caches,
        clock,
        scheduler: clock,
        send: (b) => sent.push(JSON.parse(JSON.stringify(b)) as RenewalCacheBatch),
      });
      return { caches, sharing };
    };
    const a = worker();
    const b = worker();
    const expiresAtMs = clock.now().getTime() + 60_000;
    const withPod = { namespace: 'istio-system', name: 'ztunnel', pod: POD };
    const without = { namespace: 'default', name: 'web' };
    a.caches.token.keep('k1', { account: withPod, expiresAtMs }, 'key-1');
    a.caches.token.keep('k2', { account: without, expiresAtMs }, 'key-1');
    a.sharing.flush();
    const batch = sent[0];
    assert.ok(batch);
    assert.equal(batch.token.length, 1);
    b.sharing.receive(batch);
    assert.equal(b.caches.token.get('k1'), undefined);
    assert.deepEqual(b.caches.token.get('k2')?.account, without);
  });

  it('cannot be: createAuthenticator refuses the process token cache with callerPod', async () => {
    const clock = new FakeClock('2026-06-01T00:00:00Z');
    const caches = createRenewalCaches();
    await assert.rejects(
      createAuthenticator(
        {
          kind: 'jwt',
          jwksFile: '/nonexistent',
          issuer: DEV_TOKEN_ISSUER,
          audience: 'istio-ca',
        } satisfies AuthConfig,
        {
          clock,
          clockSkewMs: 0,
          logger: pino({ level: 'silent' }),
          tokenCache: caches.token,
          callerPod: true,
        },
      ),
      (err: unknown) => err instanceof UsageError,
    );
  });
});
