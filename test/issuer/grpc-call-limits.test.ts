import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { systemClock } from '../../ca/index.js';
import type { Certify, CertifyResult } from '../../issuer/certify.js';
import { createIdentityHandlers } from '../../issuer/grpc/server.js';
import { ERROR_CODE_TRAILER } from '../../issuer/grpc/status.js';
import { createIssuerMetrics } from '../../issuer/metrics.js';

// The handler's call options (CallLimits in server.ts): the signal and the peer are made when a stage
// reads them; a call's time limit and cancellation hold whether or not one was made.

const RESULT = {
  leaf: {
    der: Buffer.alloc(8),
    intermediates: [],
    notAfter: new Date(systemClock.now().getTime() + 3_600_000),
    serialHex: '01',
  },
  identity: { spiffeId: 'spiffe://example.org/ns/default/sa/web' },
  issuerSkid: undefined,
  now: systemClock.now(),
} as unknown as CertifyResult;

class FakeCall extends EventEmitter {
  cancelled = false;
  peerReads = 0;
  readonly request = {
    identity: 'web',
    token: Buffer.from('t'),
    certificate_signing_request: Buffer.from('c'),
  };
  getDeadline(): number {
    return Infinity;
  }
  getPeer(): string {
    this.peerReads++;
    return '10.0.0.7:41234';
  }
  cancel(): void {
    this.cancelled = true;
    this.emit('cancelled', 'cancelled');
  }
}

interface Answer {
  readonly grpcCode: grpc.status;
  readonly code: string | undefined;
}

function serve(certify: Certify, maxCallMs = 30_000): (call: FakeCall) => Promise<Answer> {
  const handlers = createIdentityHandlers({
    certify,
    logger: pino({ level: 'silent' }),
    metrics: createIssuerMetrics({ defaultMetrics: false }),
    wallClock: systemClock,
    maxCallMs,
  });
  const handle = handlers.Certify as unknown as (call: FakeCall, cb: (err: unknown) => void) => void;
  return (call) =>
    new Promise((resolve) => {
      handle(call, (err) => {
        if (err === null) resolve({ grpcCode: grpc.status.OK, code: undefined });
        else {
          const e = err as { code: grpc.status; metadata: grpc.Metadata };
          resolve({ grpcCode: e.code, code: e.metadata.get(ERROR_CODE_TRAILER)[0] as string | undefined });
        }
      });
    });
}

describe('the Certify handler, time limit and cancellation', () => {
  it('makes no abort machinery for a call whose stages read neither signal nor peer', async () => {
    const call = new FakeCall();
    let listenersDuring = -1;
    const answer = await serve(() => {
      listenersDuring = call.listenerCount('cancelled');
      return Promise.resolve(RESULT);
    })(call);
    assert.deepEqual(answer, { grpcCode: grpc.status.OK, code: undefined });
    assert.equal(listenersDuring, 0);
    assert.equal(call.peerReads, 0);
  });

  it('gives a stage that reads them the peer and a live signal, and removes its listener after', async () => {
    const call = new FakeCall();
    let seen: { peer: string | undefined; aborted: boolean; listeners: number } | undefined;
    const answer = await serve((_input, opts) => {
      seen = { peer: opts.peer, aborted: opts.signal.aborted, listeners: call.listenerCount('cancelled') };
      return Promise.resolve(RESULT);
    })(call);
    assert.equal(answer.grpcCode, grpc.status.OK);
    assert.deepEqual(seen, { peer: '10.0.0.7:41234', aborted: false, listeners: 1 });
    assert.equal(call.listenerCount('cancelled'), 0);
  });

  it('answers ERR_DEADLINE_EXCEEDED for a call past its time limit, signal read or not', async () => {
    const slowWithoutSignal: Certify = async () => {
      await nextTurn();
      return RESULT;
    };
    let reason: unknown;
    const slowWithSignal: Certify = async (_input, opts) => {
      await nextTurn();
      const { signal } = opts;
      if (!signal.aborted)
        await new Promise((resolve) => {
          signal.addEventListener('abort', resolve, { once: true });
        });
      reason = signal.reason;
      return RESULT;
    };
    for (const certify of [slowWithoutSignal, slowWithSignal]) {
      const answer = await serve(certify, 0)(new FakeCall());
      assert.deepEqual(answer, { grpcCode: grpc.status.DEADLINE_EXCEEDED, code: 'ERR_DEADLINE_EXCEEDED' });
    }
    assert.ok(reason instanceof DOMException);
    assert.equal(reason.name, 'AbortError');
  });

  it('answers a call with no time left ERR_DEADLINE_EXCEEDED within its first turn, signal read or not', async () => {
    // the answer is ready in the turn the call arrived in: no timer could have fired yet
    let seen: { aborted: boolean; reason: unknown; listeners: number } | undefined;
    const call = new FakeCall();
    const readsSignal: Certify = (_input, opts) => {
      const { signal } = opts;
      seen = { aborted: signal.aborted, reason: signal.reason, listeners: call.listenerCount('cancelled') };
      return Promise.resolve(RESULT);
    };
    const readsNothing: Certify = () => Promise.resolve(RESULT);
    const failsOnItsOwn: Certify = () => Promise.reject(new Error('a stage failed'));
    for (const [certify, c] of [
      [readsNothing, new FakeCall()],
      [readsSignal, call],
      [failsOnItsOwn, new FakeCall()],
    ] as const) {
      const answer = await serve(certify, 0)(c);
      assert.deepEqual(answer, { grpcCode: grpc.status.DEADLINE_EXCEEDED, code: 'ERR_DEADLINE_EXCEEDED' });
    }
    assert.ok(seen !== undefined);
    assert.equal(seen.aborted, true, 'a signal made with nothing left is aborted when read');
    assert.ok(seen.reason instanceof DOMException);
    assert.equal(seen.reason.name, 'AbortError');
    assert.equal(seen.listeners, 0);
  });

  it('answers ERR_DEADLINE_EXCEEDED when the limit passed after the signal was made, before its timer fired', async () => {
    const limitMs = 100;
    for (const readSignal of [false, true]) {
      let abortedAtRead: boolean | undefined;
      let abortedAtAnswer: boolean | undefined;
      let signal: AbortSignal | undefined;
      const answer = await serve((_input, opts) => {
        const start = process.hrtime.bigint();
        if (readSignal) {
          signal = opts.signal;
          abortedAtRead = signal.aborted;
        }
        // past the limit within this turn, so the signal's timer cannot have fired
        while (Number(process.hrtime.bigint() - start) / 1e6 < limitMs + 10);
        abortedAtAnswer = signal?.aborted;
        return Promise.resolve(RESULT);
      }, limitMs)(new FakeCall());
      assert.deepEqual(answer, { grpcCode: grpc.status.DEADLINE_EXCEEDED, code: 'ERR_DEADLINE_EXCEEDED' });
      if (readSignal) {
        assert.deepEqual([abortedAtRead, abortedAtAnswer, signal?.aborted], [false, false, true]);
        assert.ok(signal?.reason instanceof DOMException);
      }
    }
  });

  it('answers ERR_DEADLINE_EXCEEDED for a call cancelled while a stage ran, and aborts a signal read after', async () => {
    for (const readSignalAfterCancel of [false, true]) {
      const call = new FakeCall();
      let abortedWhenRead: boolean | undefined;
      const answer = await serve(async (_input, opts) => {
        await nextTurn();
        call.cancel();
        if (readSignalAfterCancel) abortedWhenRead = opts.signal.aborted;
        return RESULT;
      })(call);
      assert.deepEqual(answer, { grpcCode: grpc.status.DEADLINE_EXCEEDED, code: 'ERR_DEADLINE_EXCEEDED' });
      assert.equal(abortedWhenRead, readSignalAfterCancel ? true : undefined);
    }
  });

  it('aborts a signal read before the client cancels when it cancels', async () => {
    const call = new FakeCall();
    const answer = await serve(async (_input, opts) => {
      const { signal } = opts;
      await nextTurn();
      call.cancel();
      assert.equal(signal.aborted, true);
      throw new Error('stopped');
    })(call);
    assert.equal(answer.grpcCode, grpc.status.INTERNAL);
  });

  it('gives a stage that reads the signal after the call was answered a signal as it was then, unarmed', async () => {
    for (const cancelled of [false, true]) {
      const call = new FakeCall();
      let opts: { readonly signal: AbortSignal } | undefined;
      const answer = await serve((_input, o) => {
        opts = o;
        if (cancelled) call.cancel();
        return Promise.resolve(RESULT);
      })(call);
      assert.equal(answer.grpcCode, cancelled ? grpc.status.DEADLINE_EXCEEDED : grpc.status.OK);
      assert.equal(opts?.signal.aborted, cancelled);
      assert.equal(call.listenerCount('cancelled'), 0);
    }
  });
});
