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

/** The APIs whose rejected calls share one rejection log (the `api` label of the metrics). */
export type RejectedApi = 'Certify' | 'CreateCertificate';

/**
 * How often rejected calls (Certify, CreateCertificate) are logged. A flood of rejected calls (bad
 * tokens, malformed requests, calls shed at arrival) must not flood the log: each API and code has a
 * token bucket of `burst` lines refilled at `perSecond` (a flood on one API does not silence the
 * other), and the lines left out are counted and reported in one summary line (`event:
 * "log_suppressed"`, the counts by code and by API) at most every `summaryEveryMs`. Only the lines
 * are limited: every call still counts in lanyard_requests_total. Successful calls are not limited.
 */
export interface RejectionLog {
  /** whether the line of a rejected call of `api` (default Certify) with `code` is written now; if not, it is counted */
  admit(code: ErrorCode, api?: RejectedApi): boolean;
  /** writes the summary now if any line was left out since the last one */
  flush(): void;
  /** flushes and stops the timer */
  close(): void;
}

export function createRejectionLog(o: RejectionLogOptions): RejectionLog {
  const burst = o.burst ?? REJECTION_LOG_DEFAULTS.burst;
  const perMs = (o.perSecond ?? REJECTION_LOG_DEFAULTS.perSecond) / 1000;
  const summaryEveryMs = o.summaryEveryMs ?? REJECTION_LOG_DEFAULTS.summaryEveryMs;
  // one bucket per API and code: both are closed sets, so the map stays small
  const buckets = new Map<`${RejectedApi} ${ErrorCode}`, { tokens: number; at: number }>();
  let suppressed = new Map<ErrorCode, number>();
  let byApi = new Map<RejectedApi, number>();
  let total = 0;
  let lastSummary = o.clock.now().getTime();

  function flush(): void {
    const now = o.clock.now().getTime();
    if (total > 0) {
      o.logger.warn(
        {
          event: 'log_suppressed',
          suppressed: Object.fromEntries(suppressed),
          apis: Object.fromEntries(byApi),
          total,
          sinceMs: now - lastSummary,
        },
        `${total} rejected call(s) not logged (at most ${burst} lines per API and code at once, then ${perMs * 1000} per second); every call is counted in lanyard_requests_total`,
      );
      suppressed = new Map();
      byApi = new Map();
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
    admit(code, api = 'Certify') {
      const now = o.clock.now().getTime();
      const key = `${api} ${code}` as const;
      const b = buckets.get(key) ?? { tokens: burst, at: now };
      // a clock that stepped back refills nothing
      b.tokens = Math.min(burst, b.tokens + Math.max(0, now - b.at) * perMs);
      b.at = now;
      buckets.set(key, b);
      if (total > 0 && now - lastSummary >= summaryEveryMs) flush();
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return true;
      }
      suppressed.set(code, (suppressed.get(code) ?? 0) + 1);
      byApi.set(api, (byApi.get(api) ?? 0) + 1);
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
