// The agent's renewal loop: certify, then wait until the next renewal (or back off after a failure).
import type { Logger } from 'pino';
import type { Clock } from '../../ca/index.js';
import { describeError, errorCode } from './error-report.js';

/**
 * Renew at 70 % of (valid_until − now), never sooner than 10 s nor later than 24 h: what a Linkerd
 * proxy does with the answer's valid_until (it never reads the leaf's notAfter for this).
 */
export function renewalDelayMs(now: Date, validUntil: Date): number {
  const remaining = validUntil.getTime() - now.getTime();
  return Math.min(Math.max(remaining * 0.7, 10_000), 86_400_000);
}

/** certifyOnce, then renew forever (backoff from 1 s doubling to 60 s on failure) until the signal aborts. */
export async function runRenewals(
  certifyOnce: () => Promise<{ readonly validUntil: Date }>,
  o: {
    readonly clock: Clock;
    readonly logger: Logger;
    /** how to wait until the next call (default: a timer) */
    readonly wait?: (ms: number, signal: AbortSignal) => Promise<void>;
  },
  signal: AbortSignal,
): Promise<void> {
  let backoffMs = 1000;
  while (!signal.aborted) {
    let delay: number;
    try {
      const files = await certifyOnce();
      backoffMs = 1000;
      delay = renewalDelayMs(o.clock.now(), files.validUntil);
      o.logger.info({ event: 'renewal_scheduled', inMs: Math.round(delay) }, 'next renewal scheduled');
    } catch (err) {
      delay = backoffMs * (0.8 + Math.random() * 0.4);
      backoffMs = Math.min(backoffMs * 2, 60_000);
      o.logger.warn(
        { event: 'certify_failed', code: errorCode(err), retryInMs: Math.round(delay) },
        describeError(err),
      );
    }
    await (o.wait ?? sleep)(delay, signal);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
