// A JWKS fetched from a URL is fetched again on a schedule (Cache-Control max-age within bounds), a key
// set that cannot be refreshed stops being trusted after its maximum age, and a removed key's cached
// tokens are dropped. Timers run on FakeClock: nothing here sleeps for the schedule.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  createJwtAuthenticator,
  type JwtAuthenticator,
  type JwtAuthenticatorOptions,
} from '../../../issuer/authn/index.js';
import {
  DEV_TOKEN_ISSUER,
  createSigningKeyDir,
  mintServiceAccountToken,
  type SigningKey,
} from '../../../bin/token/index.js';
import { FakeClock } from '../../support/clock.js';
import { startJwksServer, type JwksServer } from '../../support/jwks-server.js';
import { tempDir } from '../../support/temp-dir.js';
import { waitFor } from '../../support/wait.js';
import { assertRejects, bytes, signal } from './contract.js';

const MIN = 60_000;

describe('JWT authenticator: JWKS URL refresh', () => {
  let dir: string;
  let cleanup: () => void;
  let clock: FakeClock;
  let current: SigningKey;
  let next: SigningKey;
  let server: JwksServer;
  let caFile: string;
  before(async () => {
    ({ dir, cleanup } = tempDir('lanyard-jwks-refresh-'));
    const keyClock = new FakeClock();
    current = await createSigningKeyDir(join(dir, 'current'), { clock: keyClock });
    next = await createSigningKeyDir(join(dir, 'next'), { clock: keyClock });
    server = await startJwksServer(current.jwks);
    caFile = join(dir, 'jwks-ca.crt');
    writeFileSync(caFile, server.caPem);
  });
  after(async () => {
    await server.close();
    cleanup();
  });
  beforeEach(() => {
    clock = new FakeClock();
    server.serve(current.jwks);
  });

  /** An authenticator of the JWKS URL whose scheduled fetches run on `clock`. */
  const urlAuth = (extra: Partial<JwtAuthenticatorOptions> = {}): JwtAuthenticator =>
    createJwtAuthenticator({
      jwks: { url: server.url, caFile },
      issuer: DEV_TOKEN_ISSUER,
      clock,
      scheduler: clock,
      ...extra,
    });
  const mint = (key: SigningKey): Promise<string> =>
    mintServiceAccountToken({
      key: key.key,
      kid: key.kid,
      namespace: 'emojivoto',
      serviceAccount: 'web',
      ttlMs: 24 * 60 * MIN,
      now: clock.now(),
    });
  const accepts = async (auth: JwtAuthenticator, token: string): Promise<void> => {
    assert.equal((await auth.authenticate(bytes(token), { signal: signal() })).name, 'web');
  };
  /** Waits until the JWKS has been loaded `n` times (a scheduled fetch is real HTTPS). */
  const loads = (auth: JwtAuthenticator, n: number): Promise<void> =>
    waitFor(() => auth.stats().jwksLoads >= n, `${n} JWKS loads`);

  it('fetches the JWKS again every 5 minutes by default, with no token asking for it', async () => {
    const auth = urlAuth();
    try {
      await auth.refresh();
      const hits = server.hits;
      clock.advance(5 * MIN - 1);
      assert.equal(auth.stats().scheduledRefreshes, 0);
      clock.advance(1);
      assert.equal(auth.stats().scheduledRefreshes, 1);
      await loads(auth, 2);
      assert.equal(server.hits, hits + 1);
      // and again 5 minutes after that fetch
      clock.advance(5 * MIN);
      await loads(auth, 3);
    } finally {
      await auth.close();
    }
  });

  it('stops accepting a cached token once a scheduled fetch finds its key removed', async () => {
    const auth = urlAuth();
    try {
      const leaked = await mint(current);
      await accepts(auth, leaked);
      await accepts(auth, leaked); // now answered from the token cache
      assert.equal(auth.stats().cacheHits, 1);
      // the operators remove the leaked key from the API server
      server.serve(next.jwks);
      clock.advance(5 * MIN);
      await loads(auth, 2);
      await assertRejects(
        auth.authenticate(bytes(leaked), { signal: signal() }),
        'ERR_TOKEN_INVALID',
        leaked,
        'key',
      );
      await accepts(auth, await mint(next));
    } finally {
      await auth.close();
    }
  });

  it('fetches sooner when Cache-Control max-age is shorter, never more often than every 10 s nor later than the interval', async () => {
    const auth = urlAuth({ refreshIntervalMs: 5 * MIN });
    try {
      server.serve(current.jwks, { 'cache-control': 'public, max-age=60' });
      await auth.refresh();
      clock.advance(60_000 - 1);
      assert.equal(auth.stats().scheduledRefreshes, 0);
      clock.advance(1);
      assert.equal(auth.stats().scheduledRefreshes, 1);
      await loads(auth, 2);

      for (const header of ['max-age=0', 'no-store', 'no-cache, max-age=3600', 'max-age=soon']) {
        server.serve(current.jwks, { 'cache-control': header });
        const before = auth.stats();
        await auth.refresh();
        clock.advance(10_000 - 1);
        assert.equal(auth.stats().scheduledRefreshes, before.scheduledRefreshes, header);
        clock.advance(1);
        assert.equal(auth.stats().scheduledRefreshes, before.scheduledRefreshes + 1, header);
        await loads(auth, before.jwksLoads + 2);
      }

      // a longer max-age (the API server says an hour) is cut to the refresh interval
      server.serve(current.jwks, { 'cache-control': 'public, max-age=3600' });
      const before = auth.stats();
      await auth.refresh();
      clock.advance(5 * MIN - 1);
      assert.equal(auth.stats().scheduledRefreshes, before.scheduledRefreshes);
      clock.advance(1);
      assert.equal(auth.stats().scheduledRefreshes, before.scheduledRefreshes + 1);
      await loads(auth, before.jwksLoads + 2);
    } finally {
      await auth.close();
    }
  });

  it('keeps the keys through failed fetches until the maximum age (1 h), then answers ERR_AUTHENTICATOR_UNAVAILABLE, cached tokens included', async () => {
    const auth = urlAuth();
    try {
      const t0 = clock.now().getTime();
      const token = await mint(current);
      await accepts(auth, token); // loads the JWKS at t0 and caches the token
      server.serve({ status: 503, body: 'unavailable' });
      const failures = (n: number): Promise<void> =>
        waitFor(() => auth.stats().jwksLoadFailures >= n, `${n} failed JWKS fetches`);
      clock.advance(5 * MIN);
      await failures(1);
      await accepts(auth, token);
      await accepts(auth, await mint(current)); // verified with the keys kept
      // 30 s later it tries again
      clock.advance(30_000 - 1);
      assert.equal(auth.stats().scheduledRefreshes, 1);
      clock.advance(1);
      await failures(2);
      await accepts(auth, await mint(current));

      // an hour after the last successful fetch (one more scheduled fetch falls due on the way)
      clock.set(t0 + 60 * MIN);
      await failures(3);
      for (const t of [token, await mint(current)]) {
        await assertRejects(
          auth.authenticate(bytes(t), { signal: signal() }),
          'ERR_AUTHENTICATOR_UNAVAILABLE',
          t,
          'keys',
        );
      }

      // the JWKS answers again: the next call fetches it and is served
      server.serve(current.jwks);
      clock.advance(1_000);
      await accepts(auth, token);
    } finally {
      await auth.close();
    }
  });

  it('stops scheduling fetches when closed', async () => {
    const auth = urlAuth();
    await auth.refresh();
    assert.equal(clock.pendingTimers, 1);
    await auth.close();
    assert.equal(clock.pendingTimers, 0);
  });

  it('refuses a maximum key age that is not longer than the refresh interval', () => {
    assert.throws(() => urlAuth({ refreshIntervalMs: 10 * MIN, maxKeyAgeMs: 10 * MIN }), {
      code: 'ERR_USAGE',
    });
    assert.throws(() => urlAuth({ refreshIntervalMs: 0 }), { code: 'ERR_USAGE' });
  });
});
