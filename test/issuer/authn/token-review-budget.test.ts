// What an unauthenticated caller can make the TokenReview authenticator send to the API server.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  createRateBudget,
  createTokenReviewAuthenticator,
  type TokenReviewAuthenticator,
  type TokenReviewAuthenticatorOptions,
} from '../../../issuer/authn/index.js';
import { FakeClock } from '../../support/clock.js';
import {
  jwtShapedToken,
  startTokenReviewStandIn,
  type TokenReviewStandIn,
} from '../../support/token-review-stand-in.js';
import { assertRejects, bytes, signal } from './contract.js';

const sa = (ns: string, name: string): string => `system:serviceaccount:${ns}:${name}`;
const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

describe('TokenReview authenticator: requests unauthenticated callers can cause', () => {
  let standIn: TokenReviewStandIn;
  const clock = new FakeClock();
  const open: TokenReviewAuthenticator[] = [];
  before(async () => {
    standIn = await startTokenReviewStandIn({ clock });
  });
  after(async () => {
    for (const a of open) await a.close();
    await standIn.close();
  });
  function auth(extra: Partial<TokenReviewAuthenticatorOptions> = {}): TokenReviewAuthenticator {
    const a = createTokenReviewAuthenticator({
      connection: { server: standIn.url, caPem: standIn.caPem, token: standIn.callerToken },
      clock,
      ...extra,
    });
    open.push(a);
    return a;
  }
  /** a JWT-shaped token the stand-in does not know (audience identity.l5d.io, valid an hour) */
  const unknownToken = (): string =>
    jwtShapedToken(sa('ns', `x-${randomBytes(4).toString('hex')}`), { now: clock.now() });

  it('refuses a token that is not a JWT, is for another audience or has expired by its own exp, without a request', async () => {
    const a = auth();
    const sent = standIn.requests;
    const now = clock.now();
    const nowS = Math.floor(now.getTime() / 1000);
    const forged = (claims: object, header: object = { alg: 'RS256' }): string =>
      `${b64(header)}.${b64(claims)}.${randomBytes(64).toString('base64url')}`;
    const cases: [string, string][] = [
      ['an opaque token', 'malformed'],
      ['a.b', 'malformed'],
      [`${b64({ alg: 'RS256' })}.${b64({ aud: 'identity.l5d.io' })}.`, 'malformed'],
      [`${b64({ alg: 'RS256' })}.${b64([1, 2])}.c2ln`, 'malformed'],
      [forged({ aud: 'identity.l5d.io', exp: nowS + 60 }, { alg: 'none' }), 'algorithm'],
      [forged({ exp: nowS + 60 }), 'audience'],
      [forged({ aud: ['https://kubernetes.default.svc.cluster.local'], exp: nowS + 60 }), 'audience'],
      [forged({ aud: 'identity.l5d.io', exp: 'soon' }), 'claims'],
      [
        jwtShapedToken(sa('a', 'b'), { now: new Date(now.getTime() - 3_600_000), ttlMs: 3_570_000 }),
        'expired',
      ],
      // the default service-account token: for the API server
      [
        jwtShapedToken(sa('a', 'b'), { now, audiences: ['https://kubernetes.default.svc.cluster.local'] }),
        'audience',
      ],
    ];
    for (const [t, reason] of cases) {
      await assertRejects(a.authenticate(bytes(t), { signal: signal() }), 'ERR_TOKEN_INVALID', t, reason);
    }
    assert.equal(standIn.requests, sent, 'no TokenReview was sent');
    assert.equal(a.stats().refusedUnsent, cases.length);
    // expired by less than the clock skew (20 s): the API server decides
    const late = jwtShapedToken(sa('a', 'late'), { now: new Date(now.getTime() - 3_610_000) });
    standIn.addToken(late, sa('a', 'late'));
    assert.equal((await a.authenticate(bytes(late), { signal: signal() })).name, 'late');
    assert.equal(standIn.requests, sent + 1);
  });

  it('refuses a token the API server refused again for 10 s without asking (by its hash), then asks again', async () => {
    const a = auth();
    const t = unknownToken();
    const sent = standIn.requests;
    await assertRejects(
      a.authenticate(bytes(t), { signal: signal() }),
      'ERR_TOKEN_INVALID',
      t,
      'not-authenticated',
    );
    standIn.addToken(t, sa('late', 'sa'));
    clock.advance(9_999);
    await assertRejects(
      a.authenticate(bytes(t), { signal: signal() }),
      'ERR_TOKEN_INVALID',
      t,
      'not-authenticated',
    );
    assert.equal(standIn.requests, sent + 1);
    assert.equal(a.stats().failureCacheHits, 1);
    clock.advance(1);
    assert.equal((await a.authenticate(bytes(t), { signal: signal() })).namespace, 'late');
    assert.equal(standIn.requests, sent + 2);
    // unavailability is not remembered
    standIn.override({ status: 500, body: '{}' });
    const u = unknownToken();
    await assertRejects(a.authenticate(bytes(u), { signal: signal() }), 'ERR_AUTHENTICATOR_UNAVAILABLE', u);
    standIn.override(undefined);
    standIn.addToken(u, sa('back', 'sa'));
    assert.equal((await a.authenticate(bytes(u), { signal: signal() })).namespace, 'back');
  });

  it('spends one total budget when it is shared between authenticators (the Linkerd and Istio APIs)', async () => {
    const total = createRateBudget({ limit: { burst: 2, perSecond: 1 }, clock });
    const perPeer = { burst: 100, perSecond: 100 };
    const linkerd = auth({ rate: { perPeer, total } });
    const istio = auth({ audience: 'istio-ca', rate: { perPeer, total } });
    const sent = standIn.requests;
    for (let i = 0; i < 2; i++) {
      const t = unknownToken();
      await assertRejects(linkerd.authenticate(bytes(t), { signal: signal() }), 'ERR_TOKEN_INVALID', t);
    }
    const t = jwtShapedToken(sa('ns', 'istio'), { now: clock.now(), audiences: ['istio-ca'] });
    await assertRejects(
      istio.authenticate(bytes(t), { signal: signal() }),
      'ERR_AUTHENTICATOR_UNAVAILABLE',
      t,
      'rate-limited',
    );
    assert.equal(standIn.requests, sent + 2);
    assert.equal(istio.stats().rateLimited, 1);
  });

  it('bounds the reviews that fail per caller address and in all; reviews that authenticate cost nothing', async () => {
    const a = auth({
      rate: { perPeer: { burst: 3, perSecond: 1 }, total: { burst: 5, perSecond: 2 } },
    });
    const call = (t: string, peer: string): Promise<unknown> =>
      a.authenticate(bytes(t), { signal: signal(), peer });
    const valid = (name: string): string => standIn.issueToken(sa('rate', name), { now: clock.now() });
    const sent = standIn.requests;
    for (let i = 0; i < 3; i++) {
      const t = unknownToken();
      await assertRejects(call(t, `10.0.0.1:${4000 + i}`), 'ERR_TOKEN_INVALID', t, 'not-authenticated');
    }
    // the same address from another port, or as an IPv4-mapped IPv6 address, is the same caller
    for (const peer of ['10.0.0.1:5000', '::ffff:10.0.0.1:5001', '[::ffff:10.0.0.1]:5002']) {
      const t = unknownToken();
      await assertRejects(call(t, peer), 'ERR_AUTHENTICATOR_UNAVAILABLE', t, 'rate-limited');
    }
    assert.equal(standIn.requests, sent + 3);
    // another caller: two more reviews fail, then the total budget (5) is spent, for everyone
    for (let i = 0; i < 2; i++) {
      const t = unknownToken();
      await assertRejects(call(t, '10.0.0.2:4000'), 'ERR_TOKEN_INVALID', t, 'not-authenticated');
    }
    const t3 = unknownToken();
    await assertRejects(call(t3, '10.0.0.2:4000'), 'ERR_AUTHENTICATOR_UNAVAILABLE', t3, 'rate-limited');
    const v = valid('blocked');
    await assertRejects(call(v, '10.0.0.3:4000'), 'ERR_AUTHENTICATOR_UNAVAILABLE', v, 'rate-limited');
    assert.equal(standIn.requests, sent + 5);
    assert.equal(a.stats().rateLimited, 5);
    // a second later: one more for 10.0.0.1, two more in all; tokens that authenticate give theirs back
    clock.advance(1_000);
    for (const name of ['one', 'two', 'three']) {
      assert.equal(((await call(valid(name), '10.0.0.1:6000')) as { name: string }).name, name);
    }
    const t4 = unknownToken();
    await assertRejects(call(t4, '10.0.0.1:6000'), 'ERR_TOKEN_INVALID', t4, 'not-authenticated');
    const t5 = unknownToken();
    await assertRejects(call(t5, '10.0.0.1:6000'), 'ERR_AUTHENTICATOR_UNAVAILABLE', t5, 'rate-limited');
    assert.equal(standIn.requests, sent + 9);
  });

  it('tells its observer about every request sent and every token answered without one', async () => {
    const events: string[] = [];
    const a = auth({
      rate: { perPeer: { burst: 1, perSecond: 0.001 } },
      observer: {
        reviewed: (r) => events.push(`reviewed:${r}`),
        skipped: (r) => events.push(`skipped:${r}`),
      },
    });
    const ok = standIn.issueToken(sa('obs', 'web'), { now: clock.now() });
    await a.authenticate(bytes(ok), { signal: signal() });
    await a.authenticate(bytes(ok), { signal: signal() });
    const bad = unknownToken();
    await assertRejects(
      a.authenticate(bytes(bad), { signal: signal(), peer: '10.1.1.1:1' }),
      'ERR_TOKEN_INVALID',
      bad,
    );
    await assertRejects(
      a.authenticate(bytes(bad), { signal: signal(), peer: '10.1.1.1:1' }),
      'ERR_TOKEN_INVALID',
      bad,
    );
    const other = unknownToken();
    await assertRejects(
      a.authenticate(bytes(other), { signal: signal(), peer: '10.1.1.1:1' }),
      'ERR_AUTHENTICATOR_UNAVAILABLE',
      other,
    );
    await assertRejects(a.authenticate(bytes('x.y'), { signal: signal() }), 'ERR_TOKEN_INVALID', 'x.y');
    standIn.override({ status: 503, body: '{}' });
    const down = unknownToken();
    await assertRejects(
      a.authenticate(bytes(down), { signal: signal() }),
      'ERR_AUTHENTICATOR_UNAVAILABLE',
      down,
    );
    standIn.override(undefined);
    assert.deepEqual(events, [
      'reviewed:authenticated',
      'skipped:cache_hit',
      'reviewed:rejected',
      'skipped:cached_failure',
      'skipped:peer_rate_limit',
      'skipped:malformed',
      'reviewed:unavailable',
    ]);
  });
});
