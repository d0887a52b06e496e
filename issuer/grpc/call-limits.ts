import type * as grpc from '@grpc/grpc-js';
import { LanyardError, type Clock } from '../../ca/index.js';
import { IssuerServiceError } from '../errors.js';

/** Any unary call: the limits read only its deadline, peer and cancellation. */
export type AnyUnaryCall = grpc.ServerUnaryCall<unknown, unknown>;

/** The call's time limit: the client's deadline, but never more than maxCallMs from now. */
export function timeLimitMs(wallClock: Clock, maxCallMs: number, call: AnyUnaryCall): number {
  // (a call without a deadline would otherwise hold its slot for as long as, say, a token review hangs)
  const deadline = call.getDeadline();
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
  const nowMs = wallClock.now().getTime();
  const endMs = Math.min(Number.isFinite(deadlineMs) ? deadlineMs : Infinity, nowMs + maxCallMs);
  return Math.max(0, endMs - nowMs);
}

/**
 * The options the use case gets for one call: `signal`, aborted when the client cancels or the call's
 * time limit passes (with the standard AbortError as its reason), and `peer`, the caller's address.
 *
 * Both are made only when a stage reads them: most renewals are answered from the renewal caches
 * without reading either, and an AbortController with its timer and 'cancelled' listener cost
 * ≈ 6 µs a call (the controller alone ≈ 5.3 µs in Node 20). A signal made late is what it would have
 * been had it been made at the start: already aborted when the client has cancelled or when nothing is
 * left of the time limit, else its timer set for what is left.
 *
 * The call is over its time limit once that much time has passed (process.hrtime from the handler's
 * start), whether a signal was made or not and whether its timer has fired yet: a call whose answer is
 * ready past its limit is answered ERR_DEADLINE_EXCEEDED (docs/api.md), even within the turn it began.
 */
export class CallLimits {
  #controller: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #onCancel: (() => void) | undefined;
  /** set when the time limit passes, whether or not the client had cancelled first */
  #timedOut = false;
  /** set when the call is answered without a controller: whether it had ended then */
  #endedWhenClosed: boolean | undefined;

  constructor(
    private readonly call: AnyUnaryCall,
    /** process.hrtime.bigint() when the handler got the call */
    private readonly started: bigint,
    private readonly limitMs: number,
  ) {}

  get signal(): AbortSignal {
    return (this.#controller ??= this.#arm()).signal;
  }

  get peer(): string {
    return this.call.getPeer();
  }

  /** whether the call ran out of time (then its answer is ERR_DEADLINE_EXCEEDED) */
  timedOut(): boolean {
    if (!this.#timedOut && this.#elapsedMs() >= this.limitMs) {
      // the time limit has passed, and the timer (if any) has not fired yet: as if it had
      this.#timedOut = true;
      this.#controller?.abort();
    }
    return this.#timedOut;
  }

  /** whether the call was cancelled or ran out of time */
  ended(): boolean {
    return this.timedOut() || this.call.cancelled;
  }

  close(): void {
    if (this.#controller === undefined) {
      this.#endedWhenClosed = this.ended();
      return;
    }
    clearTimeout(this.#timer);
    if (this.#onCancel !== undefined) this.call.removeListener('cancelled', this.#onCancel);
  }

  #arm(): AbortController {
    const ac = new AbortController();
    // read after the call was answered (work a stage left running): what the signal was then, no timer
    if (this.#endedWhenClosed !== undefined) {
      if (this.#endedWhenClosed) ac.abort();
      return ac;
    }
    const leftMs = this.limitMs - this.#elapsedMs();
    if (leftMs <= 0) {
      // nothing left: aborted now (the standard AbortError, as the timer's abort), not on the next turn
      this.#timedOut = true;
      ac.abort();
      return ac;
    }
    if (this.call.cancelled) ac.abort();
    else {
      this.#onCancel = () => {
        ac.abort();
      };
      this.call.on('cancelled', this.#onCancel);
    }
    this.#timer = setTimeout(() => {
      this.#timedOut = true;
      ac.abort();
    }, leftMs);
    return ac;
  }

  #elapsedMs(): number {
    return Number(process.hrtime.bigint() - this.started) / 1e6;
  }
}

export function deadlineExceeded(cause: unknown): LanyardError {
  return new IssuerServiceError(
    'ERR_DEADLINE_EXCEEDED',
    'the call was cancelled or its deadline passed before a certificate was issued',
    cause === undefined ? undefined : { cause },
  );
}
