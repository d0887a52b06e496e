import { isIP } from 'node:net';
import { type Clock } from '../../ca/index.js';
import { AuthenticatorUnavailableError } from './errors.js';
import { LruCache } from '../lru.js';

/** Bounds concurrent work and the queue in front of it; a full queue is refused, never grown. */
export interface ConcurrencyLimiter {
  /**
   * Resolves with a release function once a slot is free. Rejects with AuthenticatorUnavailableError
   * when `maxQueue` callers already wait or when `signal` aborts while waiting. Call release once.
   */
  acquire(signal: AbortSignal): Promise<() => void>;
  readonly inFlight: number;
  readonly queued: number;
}

export function createConcurrencyLimiter(o: {
  readonly maxConcurrent: number;
  readonly maxQueue: number;
  /** what the work is, for error messages: "TokenReview requests" */
  readonly what: string;
}): ConcurrencyLimiter {
  if (!Number.isInteger(o.maxConcurrent) || o.maxConcurrent < 1)
    throw new RangeError('maxConcurrent must be a positive integer');
  if (!Number.isInteger(o.maxQueue) || o.maxQueue < 0)
    throw new RangeError('maxQueue must be a non-negative integer');
  let inFlight = 0;
  const queue: { grant: () => void }[] = [];

  function releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = queue.shift();
      if (next !== undefined) next.grant();
      else inFlight--;
    };
  }

  return {
    get inFlight() {
      return inFlight;
    },
    get queued() {
      return queue.length;
    },
    acquire(signal) {
      if (signal.aborted) {
        return Promise.reject(
          new AuthenticatorUnavailableError('authentication was cancelled by the caller', {
            reason: 'cancelled',
          }),
        );
      }
      if (inFlight < o.maxConcurrent) {
        inFlight++;
        return Promise.resolve(releaser());
      }
      if (queue.length >= o.maxQueue) {
        return Promise.reject(
          new AuthenticatorUnavailableError(
            `too many ${o.what} waiting (${o.maxConcurrent} in flight, ${o.maxQueue} queued); try again later`,
            { reason: 'overloaded' },
          ),
        );
      }
      return new Promise((resolve, reject) => {
        const entry = {
          // the slot passes from the releasing caller to this one; inFlight stays the same
          grant: () => {
            signal.removeEventListener('abort', onAbort);
            resolve(releaser());
          },
        };
        const onAbort = (): void => {
          const i = queue.indexOf(entry);
          if (i >= 0) queue.splice(i, 1);
          reject(
            new AuthenticatorUnavailableError('authentication was cancelled by the caller while queued', {
              reason: 'cancelled',
            }),
          );
        };
        signal.addEventListener('abort', onAbort, { once: true });
        queue.push(entry);
      });
    },
  };
}

/** A token bucket: `burst` requests at once, refilled at `perSecond`. */
export interface RateLimit {
  readonly burst: number;
  readonly perSecond: number;
}

/**
 * Token buckets by key (a peer address, or one key for everyone), on the injected clock. A request
 * takes one token; one that turned out well (or was never sent) is given back, so the buckets bound
 * what fails, not what succeeds. At most `maxKeys` buckets are kept (least recently used go first).
 */
export interface RateBudget {
  /** takes one token from `key`'s bucket; false (and nothing taken) when it is empty */
  take(key: string): boolean;
  /** gives back one token taken from `key` */
  refund(key: string): void;
}

export function createRateBudget(o: {
  readonly limit: RateLimit;
  readonly clock: Clock;
  readonly maxKeys?: number;
}): RateBudget {
  const { burst, perSecond } = o.limit;
  if (!Number.isFinite(burst) || burst < 1) throw new RangeError('burst must be at least 1');
  if (!Number.isFinite(perSecond) || perSecond <= 0) throw new RangeError('perSecond must be positive');
  const buckets = new LruCache<string, { tokens: number; atMs: number }>(o.maxKeys ?? 10_000);

  function bucket(key: string): { tokens: number; atMs: number } {
    const nowMs = o.clock.now().getTime();
    const b = buckets.get(key) ?? { tokens: burst, atMs: nowMs };
    b.tokens = Math.min(burst, b.tokens + (Math.max(0, nowMs - b.atMs) * perSecond) / 1000);
    b.atMs = nowMs;
    buckets.set(key, b);
    return b;
  }

  return {
    take(key) {
      const b = bucket(key);
      if (b.tokens < 1) return false;
      b.tokens -= 1;
      return true;
    },
    refund(key) {
      const b = bucket(key);
      b.tokens = Math.min(burst, b.tokens + 1);
    },
  };
}

/**
 * The address part of a transport peer ("10.0.0.7:41234", "[fd00::7]:41234", "::1:41234"), IPv4-mapped
 * IPv6 as IPv4, so that one client is one key whatever port it dials from.
 */
export function peerAddress(peer: string): string {
  let host = peer;
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(peer);
  if (bracketed !== null) host = bracketed[1] as string;
  else {
    const m = /^(.+):\d+$/.exec(peer);
    if (m !== null && isIP(m[1] as string) !== 0) host = m[1] as string;
  }
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  return mapped !== null ? (mapped[1] as string) : host;
}
