import type { Logger } from 'pino';
import { UsageError, type Clock } from '../../ca/index.js';
import { InvalidTokenError } from './errors.js';
import type { Authenticator } from './authenticator.js';
import {
  createCachingAuthenticator,
  tokenCacheOptions,
  type TokenCacheOptions,
} from './caching-authenticator.js';
import { DEFAULT_TOKEN_AUDIENCE, checkTokenSize, tokenText } from './common.js';
import type { KubeConnection } from '../../trust-bundles/index.js';
import type { RateBudget, RateLimit } from './limiter.js';
import {
  createBudgetedTokenReviewer,
  type TokenReviewObserver,
  type TokenReviewResult,
  type TokenReviewSkip,
} from './token-review-budget.js';
import { createTokenReviewClient } from './token-review-client.js';
import { checkTokenShape } from './token-shape.js';

export type { TokenReviewObserver, TokenReviewResult, TokenReviewSkip };
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
  /**
   * maxEntries: default 10 000 entries (each, for successes and for failures); successes: where
   * successes are kept instead (the process's token cache, bounded by memory)
   */
  readonly cache?: TokenCacheOptions;
  /** how long a token the API server refused is refused again without asking, ms; 0: never */
  readonly failureCacheTtlMs?: number;
  /** tolerance for the token's own (unverified) exp, ms; default 20 000 */
  readonly clockSkewMs?: number;
  /**
   * bounds on TokenReview requests that do not authenticate: per caller address
   * (AuthenticateOptions.peer) and in all; default DEFAULT_TOKEN_REVIEW_RATE. `total` may be a budget
   * shared with the process's other TokenReview authenticators (createRateBudget), so that together
   * they stay within one total
   */
  readonly rate?: { readonly perPeer?: RateLimit; readonly total?: RateLimit | RateBudget };
  readonly observer?: TokenReviewObserver;
  /** least time between re-reads of connection.tokenFile, ms; default 60 000 */
  readonly tokenFileRefreshMs?: number;
  readonly logger?: Logger;
  /**
   * also return the pod the answer's user.extra names (AuthenticatedAccount.pod), kept with the
   * cached success; default false (the Linkerd API has no use for it)
   */
  readonly callerPod?: boolean;
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
  const { clock, observer } = options;
  const maxConcurrent = options.maxConcurrent ?? 16;
  const { cacheTtlMs, failureCacheTtlMs, skewMs, timeoutMs, tokenFileRefreshMs } = timings(options);
  const rate = {
    perPeer: options.rate?.perPeer ?? DEFAULT_TOKEN_REVIEW_RATE.perPeer,
    total: options.rate?.total ?? DEFAULT_TOKEN_REVIEW_RATE.total,
  };
  const client = createTokenReviewClient({
    connection: options.connection,
    clock,
    audience,
    maxSockets: maxConcurrent,
    timeoutMs,
    tokenFileRefreshMs,
    logger: options.logger,
  });
  const reviewer = createBudgetedTokenReviewer({
    client,
    audience,
    clock,
    maxConcurrent,
    maxQueue: options.maxQueue ?? 1000,
    rate,
    observer,
    callerPod: options.callerPod === true,
  });
  let refusedUnsent = 0;

  /** a check that refuses a token without a request, counted */
  function unsent<T>(check: () => T): T {
    try {
      return check();
    } catch (err) {
      refusedUnsent++;
      const reason = (err as InvalidTokenError).reason;
      observer?.skipped(reason === 'audience' || reason === 'expired' ? reason : 'malformed');
      throw err;
    }
  }

  const cached = createCachingAuthenticator({
    inner: reviewer,
    clock,
    // never past the token's own (unverified) exp, which the shape check below read
    ttlMs: cacheTtlMs,
    failureTtlMs: failureCacheTtlMs,
    ...tokenCacheOptions(options.cache),
    // another worker's success (no key vouches for it) keeps the expiry it got there: at most
    // cacheTtlMs after the API server answered, as here, so taking it lengthens nothing
    vouches: (by) => by === undefined,
    admit: (token) => {
      unsent(() => {
        checkTokenSize(token);
      });
    },
    precheck: (token, nowMs) => {
      const text = unsent(() => tokenText(token));
      unsent(() => checkTokenShape(text, { audience, nowMs, skewMs }));
    },
    onHit: (kind) => observer?.skipped(kind === 'success' ? 'cache_hit' : 'cached_failure'),
  });

  return {
    name: 'token-review',
    authenticate: (token, opts) => cached.authenticate(token, opts),
    stats: () => ({
      cacheHits: cached.stats().hits,
      failureCacheHits: cached.stats().failureHits,
      refusedUnsent,
      rateLimited: reviewer.rateLimited,
      requests: client.requests,
      inFlight: reviewer.inFlight,
      queued: reviewer.queued,
    }),
    close: () => cached.close(),
  };
}

/** The times of the options, validated, with their defaults (ms). */
function timings(options: TokenReviewAuthenticatorOptions): {
  cacheTtlMs: number;
  failureCacheTtlMs: number;
  skewMs: number;
  timeoutMs: number;
  tokenFileRefreshMs: number;
} {
  return {
    cacheTtlMs: nonNegative(options.cacheTtlMs ?? DEFAULT_TOKEN_REVIEW_CACHE_MS, 'cacheTtlMs'),
    failureCacheTtlMs: nonNegative(
      options.failureCacheTtlMs ?? DEFAULT_TOKEN_REVIEW_FAILURE_CACHE_MS,
      'failureCacheTtlMs',
    ),
    skewMs: nonNegative(options.clockSkewMs ?? 20_000, 'clockSkewMs'),
    timeoutMs: positive(options.timeoutMs ?? 5_000, 'timeoutMs'),
    tokenFileRefreshMs: positive(options.tokenFileRefreshMs ?? 60_000, 'tokenFileRefreshMs'),
  };
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
