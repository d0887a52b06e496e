// What `lanyard certify` schedules its renewals from: the answer's valid_until, as a Linkerd proxy
// does (linkerd/proxy/identity-client/src/certify.rs), never the leaf's notAfter.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { LanyardError, parseCertificatesPem, systemClock } from '../../../ca/index.js';
import { createCertifyClient, renewalDelayMs } from '../../../bin/agent/agent.js';
import {
  loadIdentityService,
  type CertifyRequestMessage,
  type CertifyResponseMessage,
} from '../../../issuer/grpc/server.js';
import { scriptedAuthenticator } from '../../support/authn.js';
import { FakeClock, HOUR } from '../../support/clock.js';
import { startTestIssuer, type TestIssuer } from '../../support/issuer.js';
import { testPki } from '../../support/pki.js';
import { defer } from '../../support/cleanup.js';
import { testDir } from '../../support/temp-dir.js';
import { clientOptions, writeClientFiles } from '../../support/certify-client.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const MINUTE = 60_000;
const silent = pino({ level: 'silent' });

/**
 * A fake `wait` for the client: records each wait (its length, when it began, the notAfter of the leaf
 * then in DIR/out/tls.crt), lets the time pass on the fake clock only, and aborts after `count` waits.
 */
function recordingWait(
  dir: string,
  clock: FakeClock,
  ac: AbortController,
  count: number,
): { waits: { at: number; ms: number; notAfter: Date }[]; wait: (ms: number) => Promise<void> } {
  const waits: { at: number; ms: number; notAfter: Date }[] = [];
  const wait = (ms: number): Promise<void> => {
    const [leaf] = parseCertificatesPem(readFileSync(join(dir, 'out', 'tls.crt'), 'utf8'), 'tls.crt');
    waits.push({ at: clock.now().getTime(), ms, notAfter: leaf?.notAfter ?? new Date(0) });
    clock.advance(ms); // the time passes on the fake clock only
    if (waits.length === count) ac.abort();
    return Promise.resolve();
  };
  return { waits, wait };
}

/**
 * An Identity server in front of `upstream` that answers with upstream's leaf and chain but with
 * valid_until replaced by `validUntil()` (null: no valid_until at all).
 */
async function rewritingIssuer(
  upstream: TestIssuer,
  validUntil: () => Date | null,
): Promise<{ target: string; close: () => Promise<void> }> {
  const server = new grpc.Server();
  server.addService(loadIdentityService(), {
    Certify: (
      call: grpc.ServerUnaryCall<CertifyRequestMessage, CertifyResponseMessage>,
      cb: grpc.sendUnaryData<CertifyResponseMessage>,
    ) => {
      upstream.certify(call.request).then(
        (res) => {
          const t = validUntil();
          const ms = t?.getTime() ?? 0;
          cb(null, {
            ...res,
            valid_until: (t === null
              ? null
              : {
                  seconds: Math.floor(ms / 1000),
                  nanos: (ms % 1000) * 1e6,
                }) as CertifyResponseMessage['valid_until'],
          });
        },
        (err: unknown) => {
          cb(err as grpc.ServiceError);
        },
      );
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => {
      if (err !== null) reject(err);
      else resolve(p);
    });
  });
  return {
    target: `127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.tryShutdown(() => {
          resolve();
        });
      }),
  };
}

describe('certify client: renewals are scheduled from valid_until, never from the leaf', () => {
  it("waits 70 % of (valid_until − now) by the client's clock, though the leaf's notAfter is hours later", async (ctx) => {
    const clock = new FakeClock(systemClock.now());
    const t0 = clock.now().getTime();
    const pki = await testPki({ now: clock.now() });
    const upstream = await startTestIssuer({ pki, authenticator: scriptedAuthenticator(), clock });
    // first answer: valid until t0 + 10 h; second (at t0 + 7 h): valid until t0 + 8 h
    const answers = [new Date(t0 + 10 * HOUR), new Date(t0 + 8 * HOUR)];
    let answered = 0;
    const stub = await rewritingIssuer(upstream, () => answers[answered++] ?? null);
    const dir = testDir(ctx, 'lanyard-client-schedule-');
    defer(ctx, () => upstream.close());
    defer(ctx, () => stub.close());
    writeClientFiles(dir, pki.anchorsPem);
    const ac = new AbortController();
    const { waits, wait } = recordingWait(dir, clock, ac, 2);
    const client = await createCertifyClient({
      server: stub.target,
      identity: ID,
      tokenFile: join(dir, 'token'),
      outDir: join(dir, 'out'),
      trustAnchorsFile: join(dir, 'anchors.pem'),
      clock,
      logger: silent,
      wait,
    });
    try {
      await client.run(ac.signal);
    } finally {
      client.close();
    }
    assert.equal(waits.length, 2, 'one wait after each of the two certificates');
    const [first, second] = waits as [(typeof waits)[0], (typeof waits)[0]];
    assert.ok(Math.abs(first.ms - 7 * HOUR) < 1, `first wait ${first.ms} ms`);
    assert.ok(Math.abs(second.ms - 0.7 * HOUR) < 1, `second wait ${second.ms} ms`);
    // What reading notAfter would have given instead: far from what was waited.
    for (const [w, now] of [
      [first, t0],
      [second, t0 + 7 * HOUR],
    ] as const) {
      assert.ok(w.notAfter.getTime() - now > 20 * HOUR, 'the leaf outlives valid_until by hours');
      assert.ok(renewalDelayMs(new Date(now), w.notAfter) > w.ms + 9 * HOUR);
    }
  });

  it('follows a hinted valid_until: with --renew-after ten minutes ahead the next renewal falls in the window, the one after it by notAfter', async (ctx) => {
    const clock = new FakeClock(systemClock.now());
    const t0 = clock.now().getTime();
    const pki = await testPki({ now: clock.now() });
    // the issuer aims renewals at TIME + 0.5 × spread = t0 + 15 min
    const issuer = await startTestIssuer({
      pki,
      authenticator: scriptedAuthenticator(),
      clock,
      renewAfter: new Date(t0 + 10 * MINUTE).toISOString(),
      renewSpreadMs: 10 * MINUTE,
      random: () => 0.5,
    });
    defer(ctx, () => issuer.close());
    const dir = testDir(ctx, 'lanyard-client-hint-');
    writeClientFiles(dir, pki.anchorsPem);
    const ac = new AbortController();
    const { waits, wait } = recordingWait(dir, clock, ac, 2);
    const client = await createCertifyClient({ ...clientOptions(dir, issuer.target), clock, wait });
    try {
      await client.run(ac.signal);
    } finally {
      client.close();
    }
    const [first, second] = waits as [(typeof waits)[0], (typeof waits)[0]];
    assert.ok(Math.abs(first.ms - 15 * MINUTE) <= 1, `first renewal in ${first.ms} ms`);
    assert.ok(first.notAfter.getTime() - t0 > 20 * HOUR, 'the leaf itself lives a day');
    // at t0 + 15 min the hint has passed: valid_until = notAfter again
    assert.ok(Math.abs(second.at - (t0 + first.ms)) <= 1);
    assert.ok(
      Math.abs(second.ms - 0.7 * (second.notAfter.getTime() - second.at)) <= 1,
      `second wait ${second.ms} ms`,
    );
  });

  it('refuses an answer without valid_until (ERR_RESPONSE_INVALID) and writes no certificate', async (ctx) => {
    const clock = new FakeClock(systemClock.now());
    const pki = await testPki({ now: clock.now() });
    const upstream = await startTestIssuer({ pki, authenticator: scriptedAuthenticator(), clock });
    const stub = await rewritingIssuer(upstream, () => null);
    const dir = testDir(ctx, 'lanyard-client-schedule-');
    defer(ctx, () => upstream.close());
    defer(ctx, () => stub.close());
    writeClientFiles(dir, pki.anchorsPem);
    const client = await createCertifyClient({
      ...clientOptions(dir, stub.target),
      clock,
    });
    try {
      await assert.rejects(
        client.certifyOnce(),
        (err: unknown) => err instanceof LanyardError && err.code === 'ERR_RESPONSE_INVALID',
      );
    } finally {
      client.close();
    }
    assert.equal(existsSync(join(dir, 'out', 'tls.crt')), false);
  });
});
