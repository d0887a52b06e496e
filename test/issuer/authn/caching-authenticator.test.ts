import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ServiceAccountRef } from '../../../ca/index.js';
import {
  createCachingAuthenticator,
  createStaticAuthenticator,
  type Authenticator,
  type CachingAuthenticatorOptions,
  AuthenticatorUnavailableError,
  InvalidTokenError,
} from '../../../issuer/authn/index.js';
import { createRenewalCaches } from '../../../issuer/renewal-cache.js';
import { FakeClock } from '../../support/clock.js';
import { jwtShapedToken } from '../../support/token-review-stand-in.js';
import { authenticatorContract, bytes, contractTokenTable, signal } from './contract.js';

/** An inner authenticator whose answer per token the test sets; it counts the calls it gets. */
function scripted(): Authenticator & {
  calls: number;
  answers: Map<string, ServiceAccountRef | Error>;
  closed: boolean;
  hold: Promise<void> | undefined;
} {
  const inner = {
    name: 'scripted',
    calls: 0,
    closed: false,
    answers: new Map<string, ServiceAccountRef | Error>(),
    hold: undefined as Promise<void> | undefined,
    async authenticate(token: Uint8Array): Promise<ServiceAccountRef> {
      inner.calls++;
      if (inner.hold !== undefined) await inner.hold;
      const a = inner.answers.get(Buffer.from(token).toString('utf8'));
      if (a === undefined) throw new InvalidTokenError('unknown', { reason: 'not-authenticated' });
      if (a instanceof Error) throw a;
      return a;
    },
    close() {
      inner.closed = true;
      return Promise.resolve();
    },
  };
  return inner;
}

const WEB = Object.freeze({ namespace: 'emojivoto', name: 'web' });

function setup(extra: Partial<CachingAuthenticatorOptions> = {}) {
  const clock = new FakeClock();
  const inner = scripted();
  const cached = createCachingAuthenticator({ inner, clock, ...extra });
  const call = (t: string): Promise<ServiceAccountRef> => cached.authenticate(bytes(t), { signal: signal() });
  return { clock, inner, cached, call };
}

authenticatorContract('caching decorator around static', () => {
  const { table, validToken } = contractTokenTable();
  const authenticator = createCachingAuthenticator({
    inner: createStaticAuthenticator(table),
    clock: new FakeClock(),
    ttlMs: 60_000,
  });
  return Promise.resolve({ authenticator, validToken, cleanup: () => authenticator.close() });
});

describe('createCachingAuthenticator', () => {
  it('keeps successes in the process token cache it is given, counting hits and misses', async () => {
    const { token: successes } = createRenewalCaches();
    const kept: string[] = [];
    successes.listen({ kept: (key) => kept.push(key), cleared: () => undefined });
    const { clock, inner, cached, call } = setup({ ttlMs: 5_000, successes });
    inner.answers.set('t', WEB);
    await call('t');
    await call('t');
    await assert.rejects(call('unknown'));
    assert.deepEqual(
      { hits: successes.hits, misses: successes.misses, size: successes.size },
      {
        hits: 1,
        misses: 2,
        size: 1,
      },
    );
    assert.equal(kept.length, 1, 'the success this process verified is told to the listener');
    assert.ok(successes.bytes > 0);
    clock.advance(1_000);
    cached.clear();
    assert.deepEqual([successes.size, successes.clearedAtMs], [0, clock.now().getTime()]);
  });

  it('answers a repeated token from the cache until the TTL passes, then asks again', async () => {
    const { clock, inner, cached, call } = setup({ ttlMs: 5_000 });
    inner.answers.set('t', WEB);
    assert.deepEqual(await call('t'), WEB);
    clock.advance(4_999);
    assert.deepEqual(await call('t'), WEB);
    assert.equal(inner.calls, 1);
    assert.equal(cached.stats().hits, 1);
    clock.advance(1);
    await call('t');
    assert.equal(inner.calls, 2);
    assert.equal(cached.name, 'scripted');
  });

  it("never keeps a success past the token's own exp (a JWT), whatever the TTL", async () => {
    const { clock, inner, call } = setup();
    const jwt = jwtShapedToken('system:serviceaccount:emojivoto:web', { now: clock.now(), ttlMs: 10_000 });
    inner.answers.set(jwt, WEB);
    await call(jwt);
    clock.advance(9_999);
    await call(jwt);
    assert.equal(inner.calls, 1);
    clock.advance(1);
    await call(jwt);
    assert.equal(inner.calls, 2);
  });

  it('keeps nothing with a TTL of 0, and refuses a negative one (ERR_USAGE)', async () => {
    const { inner, cached, call } = setup({ ttlMs: 0 });
    inner.answers.set('t', WEB);
    await call('t');
    await call('t');
    assert.equal(inner.calls, 2);
    assert.equal(cached.stats().hits, 0);
    assert.throws(() => setup({ ttlMs: -1 }), { code: 'ERR_USAGE' });
    assert.throws(() => setup({ failureTtlMs: -1 }), { code: 'ERR_USAGE' });
  });

  it('keeps no refusal by default; with failureTtlMs refuses again with the same code and reason, without asking', async () => {
    const plain = setup({ ttlMs: 5_000 });
    await assert.rejects(plain.call('bad'), { code: 'ERR_TOKEN_INVALID' });
    await assert.rejects(plain.call('bad'), { code: 'ERR_TOKEN_INVALID' });
    assert.equal(plain.inner.calls, 2);

    const { clock, inner, cached, call } = setup({ ttlMs: 5_000, failureTtlMs: 10_000 });
    const hits: string[] = [];
    const observed = createCachingAuthenticator({
      inner,
      clock,
      failureTtlMs: 10_000,
      onHit: (kind) => hits.push(kind),
    });
    await assert.rejects(call('bad'), { code: 'ERR_TOKEN_INVALID', reason: 'not-authenticated' });
    clock.advance(9_999);
    await assert.rejects(call('bad'), { code: 'ERR_TOKEN_INVALID', reason: 'not-authenticated' });
    assert.equal(inner.calls, 1);
    assert.equal(cached.stats().failureHits, 1);
    clock.advance(1);
    inner.answers.set('bad', WEB);
    assert.deepEqual(await call('bad'), WEB);
    assert.equal(inner.calls, 2);
    await observed.authenticate(bytes('t2'), { signal: signal() }).catch(() => undefined);
    await observed.authenticate(bytes('t2'), { signal: signal() }).catch(() => undefined);
    assert.deepEqual(hits, ['failure']);
  });

  it('never keeps unavailability', async () => {
    const { inner, call } = setup({ failureTtlMs: 10_000 });
    inner.answers.set('t', new AuthenticatorUnavailableError('down', { reason: 'unreachable' }));
    await assert.rejects(call('t'), { code: 'ERR_AUTHENTICATOR_UNAVAILABLE' });
    await assert.rejects(call('t'), { code: 'ERR_AUTHENTICATOR_UNAVAILABLE' });
    assert.equal(inner.calls, 2);
  });

  it('keeps at most maxEntries successes, forgetting the least recently used', async () => {
    const { inner, call } = setup({ maxEntries: 2, ttlMs: 60_000 });
    for (const t of ['a', 'b', 'c']) inner.answers.set(t, WEB);
    for (const t of ['a', 'b', 'c']) await call(t);
    await call('c');
    assert.equal(inner.calls, 3);
    await call('a');
    assert.equal(inner.calls, 4);
  });

  it('keeps nothing from a call that straddles clear(), and asks again after it', async () => {
    const { inner, cached, call } = setup({ ttlMs: 60_000 });
    inner.answers.set('t', WEB);
    let release = (): void => undefined;
    inner.hold = new Promise((r) => {
      release = r;
    });
    const p = call('t');
    cached.clear();
    release();
    await p;
    inner.hold = undefined;
    await call('t');
    assert.equal(inner.calls, 2);
  });

  it("keeps nothing from a call that straddles another worker's clear of the shared successes", async () => {
    const successes = createRenewalCaches().token;
    const { clock, inner, call } = setup({ ttlMs: 60_000, successes });
    inner.answers.set('t', WEB);
    let release = (): void => undefined;
    inner.hold = new Promise((r) => {
      release = r;
    });
    const p = call('t');
    // what renewal-cache-sharing.ts does with a clear another worker sent
    successes.forgetBefore(clock.now().getTime());
    release();
    await p;
    assert.equal(successes.size, 0);
    inner.hold = undefined;
    await call('t');
    assert.equal(inner.calls, 2);
  });

  it('tells the successes what vouched for a token, and sets which vouchers another worker may bring', async () => {
    const successes = createRenewalCaches().token;
    const told: (string | undefined)[] = [];
    successes.listen({ kept: (_k, _v, by) => told.push(by), cleared: () => undefined });
    const clock = new FakeClock();
    const cached = createCachingAuthenticator({
      inner: {
        name: 'vouching',
        vouch: () =>
          Promise.resolve({ account: WEB, expiresAtMs: clock.now().getTime() + 5_000, by: 'key-1' }),
      },
      clock,
      successes,
      vouches: (by) => by === 'key-1',
    });
    await cached.authenticate(bytes('t'), { signal: signal() });
    assert.deepEqual(told, ['key-1']);
    assert.equal(successes.size, 1);
    assert.equal(successes.vouches('key-1'), true);
    assert.equal(successes.vouches('key-2'), false);
    assert.equal(successes.vouches(undefined), false);
    // the expiry the inner authenticator checked bounds the entry (the token is not read for it)
    clock.advance(5_000);
    await cached.authenticate(bytes('t'), { signal: signal() });
    assert.equal(cached.stats().hits, 0);
  });

  it('lets the inner authenticator decide while trustCached() is false, and keeps the entry', async () => {
    let trust = true;
    const { inner, call } = setup({ ttlMs: 60_000, trustCached: () => trust });
    inner.answers.set('t', WEB);
    await call('t');
    trust = false;
    await call('t');
    assert.equal(inner.calls, 2);
    trust = true;
    await call('t');
    assert.equal(inner.calls, 2);
  });

  it('admits (default: the size check) before anything, and prechecks a miss before the kept refusals', async () => {
    const { inner, call } = setup({ failureTtlMs: 10_000 });
    await assert.rejects(call(''), { code: 'ERR_TOKEN_INVALID', reason: 'malformed' });
    assert.equal(inner.calls, 0);
    const order: string[] = [];
    let refuse = false;
    const clock = new FakeClock();
    const c = createCachingAuthenticator({
      inner,
      clock,
      failureTtlMs: 10_000,
      admit: () => order.push('admit'),
      precheck: (_t, nowMs) => {
        order.push(`precheck@${nowMs === clock.now().getTime()}`);
        if (refuse) throw new InvalidTokenError('expired', { reason: 'expired' });
      },
    });
    await assert.rejects(c.authenticate(bytes('x'), { signal: signal() }), { reason: 'not-authenticated' });
    refuse = true;
    await assert.rejects(c.authenticate(bytes('x'), { signal: signal() }), { reason: 'expired' });
    assert.deepEqual(order, ['admit', 'precheck@true', 'admit', 'precheck@true']);
  });

  it('closes the inner authenticator and forgets what it kept', async () => {
    const { inner, cached, call } = setup({ ttlMs: 60_000 });
    inner.answers.set('t', WEB);
    await call('t');
    await cached.close();
    assert.ok(inner.closed);
    await call('t');
    assert.equal(inner.calls, 2);
  });
});
