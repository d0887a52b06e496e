import { type Clock } from '../../ca/index.js';
import { AuthenticatorUnavailableError, InvalidTokenError } from './errors.js';
import type { AuthenticateOptions, AuthenticatedAccount, Authenticator } from './authenticator.js';
import { throwIfAborted, tokenText } from './common.js';
import {
  createConcurrencyLimiter,
  createRateBudget,
  peerAddress,
  type RateBudget,
  type RateLimit,
} from './limiter.js';
import { interpretTokenReview, type TokenReviewClient } from './token-review-client.js';

/** How a TokenReview request ended. */
export type TokenReviewResult = 'authenticated' | 'rejected' | 'unavailable';
/** Why a token was answered without a TokenReview request. */
export type TokenReviewSkip =
  | 'cache_hit'
  | 'cached_failure'
  | 'malformed'
  | 'audience'
  | 'expired'
  | 'peer_rate_limit'
  | 'total_rate_limit';

/** Told about every request sent and every token answered without one (for metrics). */
export interface TokenReviewObserver {
  reviewed(result: TokenReviewResult): void;
  skipped(reason: TokenReviewSkip): void;
}

/** The uncached TokenReview authenticator: every call that gets through its budgets sends a request. */
export interface BudgetedTokenReviewer extends Authenticator {
  /** calls refused because too many reviews failed lately (per peer or in all) */
  readonly rateLimited: number;
  readonly inFlight: number;
  readonly queued: number;
  /** later calls fail as unavailable; closes the client */
  close(): Promise<void>;
}

/**
 * Sends one TokenReview per call, within bounds: at most `maxConcurrent` in flight and `maxQueue`
 * waiting, and budgets of reviews that did not authenticate per caller address and in all (a review
 * that authenticates gives its token back, as does a call that never sent one). Only the answer of a
 * request sent can be an InvalidTokenError; everything else is AuthenticatorUnavailableError.
 */
export function createBudgetedTokenReviewer(o: {
  readonly client: TokenReviewClient;
  readonly audience: string;
  readonly clock: Clock;
  readonly maxConcurrent: number;
  readonly maxQueue: number;
  /** total: a limit of this reviewer's own, or a budget shared with other reviewers of the process */
  readonly rate: { readonly perPeer: RateLimit; readonly total: RateLimit | RateBudget };
  readonly observer?: TokenReviewObserver | undefined;
  /** also return the pod the answer's user.extra names (interpretTokenReview) */
  readonly callerPod?: boolean;
}): BudgetedTokenReviewer {
  const { client, audience, observer } = o;
  const perPeer = createRateBudget({ limit: o.rate.perPeer, clock: o.clock });
  const total = isBudget(o.rate.total)
    ? o.rate.total
    : createRateBudget({ limit: o.rate.total, clock: o.clock });
  const limiter = createConcurrencyLimiter({
    maxConcurrent: o.maxConcurrent,
    maxQueue: o.maxQueue,
    what: 'TokenReview requests',
  });
  let rateLimitedCount = 0;
  let closed = false;

  function rateLimited(scope: 'peer' | 'total'): AuthenticatorUnavailableError {
    rateLimitedCount++;
    observer?.skipped(scope === 'peer' ? 'peer_rate_limit' : 'total_rate_limit');
    return rateLimitedError(scope);
  }

  /** One TokenReview, if the caller's address and everyone together are within their budgets. */
  async function reviewWithinBudget(text: string, opts: AuthenticateOptions): Promise<AuthenticatedAccount> {
    const peer = opts.peer !== undefined ? peerAddress(opts.peer) : undefined;
    if (peer !== undefined && !perPeer.take(peer)) throw rateLimited('peer');
    let sent = false;
    let result: TokenReviewResult = 'unavailable';
    try {
      const release = await limiter.acquire(opts.signal);
      let answer: unknown;
      try {
        // taken only now: callers waiting for a slot hold nothing of the total budget
        if (!total.take(ALL)) throw rateLimited('total');
        sent = true;
        answer = await client.review(text, opts.signal);
      } finally {
        release();
      }
      const account = interpretTokenReview(answer, text, audience, o.callerPod === true);
      result = 'authenticated';
      return account;
    } catch (err) {
      if (sent && err instanceof InvalidTokenError) result = 'rejected';
      throw err;
    } finally {
      if (sent) observer?.reviewed(result);
      if (peer !== undefined && (!sent || result === 'authenticated')) perPeer.refund(peer);
      if (sent && result === 'authenticated') total.refund(ALL);
    }
  }

  return {
    name: 'token-review',
    async authenticate(token, opts) {
      if (closed) throw closedError();
      throwIfAborted(opts.signal);
      return reviewWithinBudget(tokenText(token), opts);
    },
    get rateLimited() {
      return rateLimitedCount;
    },
    get inFlight() {
      return limiter.inFlight;
    },
    get queued() {
      return limiter.queued;
    },
    close() {
      closed = true;
      client.close();
      return Promise.resolve();
    },
  };
}

function closedError(): AuthenticatorUnavailableError {
  return new AuthenticatorUnavailableError('the TokenReview authenticator is closed', { reason: 'closed' });
}

function rateLimitedError(scope: 'peer' | 'total'): AuthenticatorUnavailableError {
  return new AuthenticatorUnavailableError(
    scope === 'peer'
      ? 'too many tokens from this address failed their TokenReview lately; try again later'
      : 'too many tokens failed their TokenReview lately; try again later',
    { reason: 'rate-limited' },
  );
}

/** The one key of the total budget (the same in a budget shared between reviewers). */
const ALL = '';

const isBudget = (r: RateLimit | RateBudget): r is RateBudget => 'take' in r;
