import { AuthenticatorUnavailableError } from '../../ca/index.js';

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
