import type { Logger } from 'pino';
import { UsageError, type Clock, type ServiceAccountRef } from '../../ca/index.js';
import { AuthenticatorUnavailableError, InvalidTokenError, type TokenRejection } from './errors.js';
import { LruCache } from '../lru.js';
import type { AuthenticateOptions, Authenticator } from './authenticator.js';
import {
  DEFAULT_TOKEN_AUDIENCE,
  checkTokenSize,
  throwIfAborted,
  tokenCacheKey,
  tokenText,
  type CachedAccount,
} from './common.js';
import type { KubeConnection } from './kubeconfig.js';
import { createConcurrencyLimiter, createRateBudget, peerAddress, type RateLimit } from './limiter.js';
import { createTokenReviewClient, interpretTokenReview } from './token-review-client.js';
import { checkTokenShape } from './token-shape.js';

export { TOKEN_REVIEW_PATH } from './token-review-client.js';
/** How long a successful review is reused by default, ms (`serve --token-review-cache`). */
export const DEFAULT_TOKEN_REVIEW_CACHE_MS = 5_000;
/** How long a token the API server refused is refused again without asking, ms. */
export const DEFAULT_TOKEN_REVIEW_FAILURE_CACHE_MS = 10_000;
/**
 * TokenReview requests that do not authenticate, per caller address and in all (per process). A
 * request that authenticates gives its token back, so these bound what unauthenticated callers cost
 * the API server, not how many workloads may start at once.
 */
export const DEFAULT_TOKEN_REVIEW_RATE: { readonly perPeer: RateLimit; readonly total: RateLimit } =
  Object.freeze({
    perPeer: Object.freeze({ burst: 10, perSecond: 1 }),
    total: Object.freeze({ burst: 100, perSecond: 50 }),
  });

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

export interface TokenReviewAuthenticatorOptions {
  readonly connection: KubeConnection;
  readonly clock: Clock;
  /** the audience the token must be bound to; default "identity.l5d.io" */
  readonly audience?: string;
  /** TokenReview requests in flight towards the API server at most; default 16 */
  readonly maxConcurrent?: number;
  /** callers waiting for a slot at most, beyond which calls fail as unavailable; default 1000 */
  readonly maxQueue?: number;
  /** time allowed for one TokenReview request, ms; default 5 000 */
  readonly timeoutMs?: number;
  /**
   * how long a positive review is reused, ms (never past the token's own exp); 0: never. Default
   * DEFAULT_TOKEN_REVIEW_CACHE_MS. A deleted pod's token is accepted for at most this long.
   */
  readonly cacheTtlMs?: number;
  /** default 10 000 entries (each, for successes and for failures) */
  readonly cache?: { readonly maxEntries: number };
  /** how long a token the API server refused is refused again without asking, ms; 0: never */
  readonly failureCacheTtlMs?: number;
  /** tolerance for the token's own (unverified) exp, ms; default 20 000 */
  readonly clockSkewMs?: number;
  /**
   * bounds on TokenReview requests that do not authenticate: per caller address
   * (AuthenticateOptions.peer) and in all; default DEFAULT_TOKEN_REVIEW_RATE
   */
  readonly rate?: { readonly perPeer?: RateLimit; readonly total?: RateLimit };
  readonly observer?: TokenReviewObserver;
  /** least time between re-reads of connection.tokenFile, ms; default 60 000 */
  readonly tokenFileRefreshMs?: number;
  readonly logger?: Logger;
}

export interface TokenReviewAuthenticatorStats {
  /** authentications answered from the cache */
  readonly cacheHits: number;
  /** tokens refused again from the failure cache */
  readonly failureCacheHits: number;
  /** tokens refused for their shape, audience or exp, without a request */
  readonly refusedUnsent: number;
  /** calls refused because too many reviews failed lately (per peer or in all) */
  readonly rateLimited: number;
  /** TokenReview requests sent */
  readonly requests: number;
  readonly inFlight: number;
  readonly queued: number;
}

export interface TokenReviewAuthenticator extends Authenticator {
  readonly name: 'token-review';
  stats(): TokenReviewAuthenticatorStats;
  /** closes the connections to the API server; later calls fail as unavailable */
  close(): Promise<void>;
}

/**
 * Asks the Kubernetes API server whether a token is valid (authentication.k8s.io/v1 TokenReview,
 * bound to `audience`). Needs RBAC to create tokenreviews (the system:auth-delegator ClusterRole).
 * Not authenticated, or authenticated without `audience` in status.audiences → InvalidTokenError;
 * network failure, timeout, a non-2xx answer (401/403 too: those are about Lanyard's own
 * credentials) or a malformed answer → AuthenticatorUnavailableError.
 *
 * What an unauthenticated caller can make it send is bounded: a token that is not a JWT, not for
 * `audience` or expired by its own claims is refused without a request (checkTokenShape); a refused
 * token is refused again for failureCacheTtlMs; and requests that do not authenticate are limited per
 * caller address and in all (`rate`; over it: AuthenticatorUnavailableError, reason rate-limited).
 */
export function createTokenReviewAuthenticator(
  options: TokenReviewAuthenticatorOptions,
): TokenReviewAuthenticator {
  const audience = options.audience ?? DEFAULT_TOKEN_AUDIENCE;
  if (audience === '') throw new UsageError('the TokenReview authenticator needs a non-empty audience');
  const clock = options.clock;
  const maxConcurrent = options.maxConcurrent ?? 16;
  const cacheTtlMs = nonNegative(options.cacheTtlMs ?? DEFAULT_TOKEN_REVIEW_CACHE_MS, 'cacheTtlMs');
  const failureCacheTtlMs = nonNegative(
    options.failureCacheTtlMs ?? DEFAULT_TOKEN_REVIEW_FAILURE_CACHE_MS,
    'failureCacheTtlMs',
  );
  const skewMs = nonNegative(options.clockSkewMs ?? 20_000, 'clockSkewMs');
  const perPeer = createRateBudget({
    limit: options.rate?.perPeer ?? DEFAULT_TOKEN_REVIEW_RATE.perPeer,
    clock,
  });
  const total = createRateBudget({ limit: options.rate?.total ?? DEFAULT_TOKEN_REVIEW_RATE.total, clock });
  const observer = options.observer;
  const timeoutMs = positive(options.timeoutMs ?? 5_000, 'timeoutMs');
  const tokenFileRefreshMs = positive(options.tokenFileRefreshMs ?? 60_000, 'tokenFileRefreshMs');
  const client = createTokenReviewClient({
    connection: options.connection,
    clock,
    audience,
    maxSockets: maxConcurrent,
    timeoutMs,
    tokenFileRefreshMs,
    logger: options.logger,
  });
  const limiter = createConcurrencyLimiter({
    maxConcurrent,
    maxQueue: options.maxQueue ?? 1000,
    what: 'TokenReview requests',
  });
  const cache = new LruCache<string, CachedAccount>(options.cache?.maxEntries ?? 10_000);
  // apart from the successes, so that a flood of bad tokens cannot push them out
  const failures = new LruCache<string, CachedFailure>(options.cache?.maxEntries ?? 10_000);
  const stats = { cacheHits: 0, failureCacheHits: 0, refusedUnsent: 0, rateLimited: 0 };
  let closed = false;

  /** a check that refuses a token without a request, counted */
  function precheck<T>(check: () => T): T {
    try {
      return check();
    } catch (err) {
      stats.refusedUnsent++;
      const reason = (err as InvalidTokenError).reason;
      observer?.skipped(reason === 'audience' || reason === 'expired' ? reason : 'malformed');
      throw err;
    }
  }

  function rateLimited(scope: 'peer' | 'total'): AuthenticatorUnavailableError {
    stats.rateLimited++;
    observer?.skipped(scope === 'peer' ? 'peer_rate_limit' : 'total_rate_limit');
    return new AuthenticatorUnavailableError(
      scope === 'peer'
        ? 'too many tokens from this address failed their TokenReview lately; try again later'
        : 'too many tokens failed their TokenReview lately; try again later',
      { reason: 'rate-limited' },
    );
  }

  /**
   * One TokenReview, if the caller's address and everyone together are within their budgets of
   * reviews that did not authenticate (a review that authenticates gives its token back, as does a
   * call that never sent one). A refusal is remembered for failureCacheTtlMs.
   */
  async function reviewWithinBudget(
    text: string,
    key: string,
    opts: AuthenticateOptions,
  ): Promise<ServiceAccountRef> {
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
      const account = interpretTokenReview(answer, text, audience);
      result = 'authenticated';
      return account;
    } catch (err) {
      if (sent && err instanceof InvalidTokenError) {
        result = 'rejected';
        if (failureCacheTtlMs > 0) {
          const expiresAtMs = clock.now().getTime() + failureCacheTtlMs;
          failures.set(key, { reason: err.reason, message: err.message, expiresAtMs });
        }
      }
      throw err;
    } finally {
      if (sent) observer?.reviewed(result);
      if (peer !== undefined && (!sent || result === 'authenticated')) perPeer.refund(peer);
      if (sent && result === 'authenticated') total.refund(ALL);
    }
  }

  return {
    name: 'token-review',
    async authenticate(token: Uint8Array, opts: AuthenticateOptions): Promise<ServiceAccountRef> {
      precheck(() => {
        checkTokenSize(token);
      });
      const key = tokenCacheKey(token);
      const nowMs = clock.now().getTime();
      const hit = cache.get(key);
      if (hit !== undefined) {
        if (nowMs < hit.expiresAtMs) {
          stats.cacheHits++;
          observer?.skipped('cache_hit');
          return hit.account;
        }
        cache.delete(key);
      }
      const text = precheck(() => tokenText(token));
      const shape = precheck(() => checkTokenShape(text, { audience, nowMs, skewMs }));
      const failed = failures.get(key);
      if (failed !== undefined) {
        if (nowMs < failed.expiresAtMs) {
          stats.failureCacheHits++;
          observer?.skipped('cached_failure');
          throw new InvalidTokenError(failed.message, { reason: failed.reason });
        }
        failures.delete(key);
      }
      if (closed)
        throw new AuthenticatorUnavailableError('the TokenReview authenticator is closed', {
          reason: 'closed',
        });
      throwIfAborted(opts.signal);
      const account = await reviewWithinBudget(text, key, opts);
      const doneMs = clock.now().getTime();
      const expiresAtMs = Math.min(doneMs + cacheTtlMs, shape.expMs ?? Infinity);
      if (cacheTtlMs > 0 && expiresAtMs > doneMs) cache.set(key, { account, expiresAtMs });
      return account;
    },
    stats: () => ({
      ...stats,
      requests: client.requests,
      inFlight: limiter.inFlight,
      queued: limiter.queued,
    }),
    close() {
      closed = true;
      cache.clear();
      failures.clear();
      client.close();
      return Promise.resolve();
    },
  };
}

/** The one key of the total budget. */
const ALL = '';

/** A refusal from the API server, kept for a short while (epoch ms, exclusive). */
interface CachedFailure {
  readonly reason: TokenRejection;
  readonly message: string;
  readonly expiresAtMs: number;
}

function nonNegative(v: number, name: string): number {
  if (!Number.isFinite(v) || v < 0)
    throw new UsageError(`${name} must be a non-negative number of milliseconds`);
  return v;
}

function positive(v: number, name: string): number {
  if (!Number.isFinite(v) || v <= 0)
    throw new UsageError(`${name} must be a positive number of milliseconds`);
  return v;
}
