import assert from 'node:assert/strict';
import type { Worker } from 'node:cluster';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { createRenewalCaches, csrOfEntry, CsrEntry, type RenewalCaches } from '../../issuer/renewal-cache.js';
import {
  SHARE_INTERVAL_MS,
  forwardRenewalCacheBatch,
  shareRenewalCaches,
  type RenewalCacheBatch,
} from '../../issuer/renewal-cache-sharing.js';
import { FakeClock } from '../support/clock.js';

const DNS = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const KEY_BYTES = Buffer.from(Array.from({ length: 111 }, (_, i) => (i * 37) & 0xff)).toString('latin1');
const binKey = (i: number): string => Buffer.alloc(32, i).toString('latin1');

/** Two workers and the primary between them: what one sends, the other receives. */
function twoWorkers(maxBatch?: number) {
  const clock = new FakeClock('2026-06-01T00:00:00Z');
  const sent: RenewalCacheBatch[] = [];
  const worker = (): { caches: RenewalCaches; sharing: ReturnType<typeof shareRenewalCaches> } => {
    const caches = createRenewalCaches();
    // as the JWT authenticator sets it: successes vouched for by a key this worker holds
    caches.token.vouches = (by) => by === 'key-1';
    const sharing = shareRenewalCaches({
      caches,
      clock,
      scheduler: clock,
      send: (b) => sent.push(JSON.parse(JSON.stringify(b)) as RenewalCacheBatch),
      ...(maxBatch !== undefined ? { maxBatch } : {}),
    });
    return { caches, sharing };
  };
  return { clock, sent, a: worker(), b: worker() };
}

const account = { namespace: 'default', name: 'web' };

describe('renewal cache sharing between workers', () => {
  it('sends what a worker verified in one message per 100 ms, and the other worker holds the same entries', () => {
    const { clock, sent, a, b } = twoWorkers();
    a.caches.csr.keep(binKey(1), new CsrEntry(DNS, '', 'p256', KEY_BYTES));
    a.caches.csr.keep(binKey(2), new CsrEntry(DNS, DNS, 'p384', KEY_BYTES));
    a.caches.token.keep(binKey(3), { account, expiresAtMs: clock.now().getTime() + 60_000 }, 'key-1');
    assert.equal(sent.length, 0, 'nothing sent per call');
    clock.advance(SHARE_INTERVAL_MS);
    assert.equal(sent.length, 1);
    b.sharing.receive(sent[0] as RenewalCacheBatch);
    for (const k of [1, 2]) {
      const mine = a.caches.csr.get(binKey(k));
      const theirs = b.caches.csr.get(binKey(k));
      assert.ok(mine !== undefined && theirs !== undefined);
      assert.deepEqual(theirs, mine);
      assert.deepEqual(csrOfEntry(theirs), csrOfEntry(mine));
    }
    assert.deepEqual(b.caches.token.get(binKey(3)), a.caches.token.get(binKey(3)));
    assert.equal(b.caches.csr.bytes, a.caches.csr.bytes);
    clock.advance(10 * SHARE_INTERVAL_MS);
    assert.equal(sent.length, 1, 'nothing more to send; received entries are not sent back');
  });

  it('sends a full batch at once', () => {
    const { sent, a } = twoWorkers(4);
    for (let i = 0; i < 9; i++) a.caches.csr.keep(binKey(i), new CsrEntry(DNS, undefined, 'p256', KEY_BYTES));
    assert.deepEqual(
      sent.map((b) => b.csr.length),
      [4, 4],
    );
  });

  it('keeps token successes to their own expiry, and drops those already expired', () => {
    const { clock, sent, a, b } = twoWorkers();
    const t0 = clock.now().getTime();
    a.caches.token.keep(binKey(1), { account, expiresAtMs: t0 + 150 }, 'key-1');
    a.caches.token.keep(binKey(2), { account, expiresAtMs: t0 + 50 }, 'key-1');
    clock.advance(SHARE_INTERVAL_MS);
    b.sharing.receive(sent[0] as RenewalCacheBatch);
    assert.equal(b.caches.token.get(binKey(1))?.expiresAtMs, t0 + 150);
    assert.equal(b.caches.token.get(binKey(2)), undefined);
  });

  it('never brings back, after a clear, a token verified before it', () => {
    const { clock, sent, a, b } = twoWorkers();
    const exp = clock.now().getTime() + 3_600_000;
    // b verified a token; the batch is still on its way when a clears (a signing key went)
    b.caches.token.keep(binKey(1), { account, expiresAtMs: exp }, 'key-1');
    clock.advance(SHARE_INTERVAL_MS);
    const inFlight = sent.shift() as RenewalCacheBatch;
    clock.advance(10);
    a.caches.token.keep(binKey(2), { account, expiresAtMs: exp }, 'key-1');
    a.caches.token.clearAt(clock.now().getTime());
    a.sharing.receive(inFlight);
    assert.equal(a.caches.token.size, 0, 'verified before the clear: not taken');
    // a's pending entry was dropped, and the clear reaches b at once, clearing it too
    assert.equal(sent.length, 1);
    const clear = sent.shift() as RenewalCacheBatch;
    assert.deepEqual(clear.token, []);
    b.sharing.receive(clear);
    assert.equal(b.caches.token.size, 0);
    // verified after the clear: shared as usual
    clock.advance(10);
    b.caches.token.keep(binKey(3), { account, expiresAtMs: exp }, 'key-1');
    clock.advance(SHARE_INTERVAL_MS);
    a.sharing.receive(sent.shift() as RenewalCacheBatch);
    assert.ok(a.caches.token.get(binKey(3)) !== undefined);
  });

  it('sends nothing once closed (a draining worker forgets its tokens without clearing the others)', () => {
    const { clock, sent, a } = twoWorkers();
    a.caches.token.keep(binKey(1), { account, expiresAtMs: clock.now().getTime() + 60_000 });
    a.sharing.close();
    a.caches.token.clearAt(clock.now().getTime());
    a.caches.csr.keep(binKey(2), new CsrEntry(DNS, undefined, 'p256', KEY_BYTES));
    clock.advance(SHARE_INTERVAL_MS);
    assert.deepEqual(sent, []);
  });

  it('takes a token success only when it holds the key that vouched for it', () => {
    const { clock, sent, a, b } = twoWorkers();
    const exp = clock.now().getTime() + 60_000;
    a.caches.token.keep(binKey(1), { account, expiresAtMs: exp }, 'key-1');
    // a still verifies with a key b has dropped (b's key set changed, a's not yet)
    a.caches.token.keep(binKey(2), { account, expiresAtMs: exp }, 'key-2');
    // no key vouches (TokenReview): a JWT worker takes none
    a.caches.token.keep(binKey(3), { account, expiresAtMs: exp });
    clock.advance(SHARE_INTERVAL_MS);
    const batch = sent.shift() as RenewalCacheBatch;
    b.sharing.receive(batch);
    assert.ok(b.caches.token.get(binKey(1)) !== undefined);
    assert.equal(b.caches.token.get(binKey(2)), undefined);
    assert.equal(b.caches.token.get(binKey(3)), undefined);
    // a TokenReview worker takes only successes no key vouched for
    b.caches.token.clear();
    b.caches.token.vouches = (by) => by === undefined;
    b.sharing.receive(batch);
    assert.deepEqual(
      [1, 2, 3].map((k) => b.caches.token.get(binKey(k)) !== undefined),
      [false, false, true],
    );
  });

  it('shares no token success without an expiry, and takes nothing once closed', () => {
    const { clock, sent, a, b } = twoWorkers();
    a.caches.token.keep(binKey(1), { account, expiresAtMs: Infinity }, 'key-1');
    a.caches.csr.keep(binKey(2), new CsrEntry(DNS, undefined, 'p256', KEY_BYTES));
    clock.advance(SHARE_INTERVAL_MS);
    const batch = sent.shift() as RenewalCacheBatch;
    assert.deepEqual([batch.token.length, batch.csr.length], [0, 1]);
    b.sharing.close();
    b.sharing.receive(batch);
    assert.equal(b.caches.csr.size, 0);
  });
});

/** A worker as node:cluster's primary sees it: a send that fails emits 'error' unless given a callback. */
class FakeWorker extends EventEmitter {
  received = 0;
  constructor(
    readonly id: number,
    readonly broken: boolean,
  ) {
    super();
  }
  isConnected(): boolean {
    return true;
  }
  send(_m: unknown, _h?: unknown, _o?: unknown, cb?: (err: Error | null) => void): boolean {
    if (!this.broken) {
      this.received++;
      cb?.(null);
      return true;
    }
    const err = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
    // with no 'error' listener, emit throws: what crashed the primary
    if (cb !== undefined) cb(err);
    else this.emit('error', err);
    return false;
  }
}

describe('forwardRenewalCacheBatch', () => {
  it('survives a worker killed outright (a send failing with EPIPE) and still reaches the others', () => {
    const from = new FakeWorker(1, false);
    const dead = new FakeWorker(2, true);
    const alive = new FakeWorker(3, false);
    const batch: RenewalCacheBatch = { type: 'renewal-cache', csr: [], token: [] };
    const workers = [from, dead, alive] as unknown as Worker[];
    assert.doesNotThrow(() => {
      forwardRenewalCacheBatch(from as unknown as Worker, batch, workers);
    });
    assert.deepEqual([from.received, alive.received], [0, 1]);
  });
});
