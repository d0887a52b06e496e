import type { Logger } from 'pino';
import { type Clock } from '../../ca/index.js';
import type { ErrorCode } from '../errors.js';

export const REJECTION_LOG_DEFAULTS = Object.freeze({
  /** lines of one code written at once after a quiet spell */
  burst: 20,
  /** lines of one code per second, sustained */
  perSecond: 1,
  /** how often the count of lines left out is written, ms */
  summaryEveryMs: 60_000,
});

export interface RejectionLogOptions {
  readonly logger: Logger;
  /** reads time for the token buckets and the summary */
  readonly clock: Clock;
  readonly burst?: number;
  readonly perSecond?: number;
  readonly summaryEveryMs?: number;
  /**
   * the scheduler: runs `fn` every `ms` until the returned function is called (default: an
   * unref'd setInterval). The summary is also written when a rejected call finds it due.
   */
  readonly every?: (ms: number, fn: () => void) => () => void;
}

/**
 * How often rejected Certify calls are logged. A flood of rejected calls (bad tokens, malformed
 * requests, calls shed at arrival) must not flood the log: each code has a token bucket of `burst`
 * lines refilled at `perSecond`, and the lines left out are counted and reported in one summary line
 * (`event: "log_suppressed"`, the counts by code) at most every `summaryEveryMs`. Only the lines are
 * limited: every call still counts in lanyard_requests_total. Successful calls are not limited.
 */
export interface RejectionLog {
  /** whether the line of a rejected call with `code` is written now; if not, it is counted */
  admit(code: ErrorCode): boolean;
  /** writes the summary now if any line was left out since the last one */
  flush(): void;
  /** flushes and stops the timer */
  close(): void;
}

export function createRejectionLog(o: RejectionLogOptions): RejectionLog {
  const burst = o.burst ?? REJECTION_LOG_DEFAULTS.burst;
  const perMs = (o.perSecond ?? REJECTION_LOG_DEFAULTS.perSecond) / 1000;
  const summaryEveryMs = o.summaryEveryMs ?? REJECTION_LOG_DEFAULTS.summaryEveryMs;
  // one bucket per code: the codes are a closed set, so the map stays small
  const buckets = new Map<ErrorCode, { tokens: number; at: number }>();
  let suppressed = new Map<ErrorCode, number>();
  let total = 0;
  let lastSummary = o.clock.now().getTime();

  function flush(): void {
    const now = o.clock.now().getTime();
    if (total > 0) {
      o.logger.warn(
        {
          event: 'log_suppressed',
          api: 'Certify',
          suppressed: Object.fromEntries(suppressed),
          total,
          sinceMs: now - lastSummary,
        },
        `${total} rejected Certify call(s) not logged (at most ${burst} lines per code at once, then ${perMs * 1000} per second); every call is counted in lanyard_requests_total`,
      );
      suppressed = new Map();
      total = 0;
    }
    lastSummary = now;
  }

  const stop = (
    o.every ??
    ((ms, fn) => {
      const t = setInterval(fn, ms);
      t.unref();
      return () => {
        clearInterval(t);
      };
    })
  )(summaryEveryMs, flush);

  return {
    admit(code) {
      const now = o.clock.now().getTime();
      const b = buckets.get(code) ?? { tokens: burst, at: now };
      // a clock that stepped back refills nothing
      b.tokens = Math.min(burst, b.tokens + Math.max(0, now - b.at) * perMs);
      b.at = now;
      buckets.set(code, b);
      if (total > 0 && now - lastSummary >= summaryEveryMs) flush();
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return true;
      }
      suppressed.set(code, (suppressed.get(code) ?? 0) + 1);
      total++;
      return false;
    },
    flush,
    close() {
      stop();
      flush();
    },
  };
}
