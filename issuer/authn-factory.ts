import type { Logger } from 'pino';
import { UsageError, type Clock } from '../ca/index.js';
import {
  createJwtAuthenticator,
  createRateBudget,
  createTokenReviewAuthenticator,
  DEFAULT_TOKEN_REVIEW_RATE,
  type Authenticator,
  type RateBudget,
  type TokenReviewObserver,
} from './authn/index.js';
import { resolveKubeConnection } from '../trust-bundles/index.js';
import type { AuthConfig } from './config.js';
import type { IssuerMetrics } from './metrics.js';
import type { KeptSuccess, RenewalCache } from './renewal-cache.js';

/** Builds the authenticator `--auth` asks for. */
export async function createAuthenticator(
  config: AuthConfig,
  deps: {
    clock: Clock;
    clockSkewMs: number;
    logger: Logger;
    /** where the TokenReview counts go */
    metrics?: IssuerMetrics;
    /** processes serving Certify: each gets its share of the total TokenReview budget */
    workers?: number;
    /**
     * the process's total TokenReview budget (createTokenReviewBudget), shared by its TokenReview
     * authenticators (the Linkerd API's and the Istio API's); default: one of this authenticator's own
     */
    tokenReviewBudget?: RateBudget;
    /**
     * where token successes are kept (the process's renewal cache, shared between workers);
     * default: the authenticator's own. Not with callerPod (UsageError)
     */
    tokenCache?: RenewalCache<KeptSuccess>;
    /**
     * also return the pod a token names (AuthenticatedAccount.pod): the Istio API's impersonation
     * check. Only with the authenticator's own token cache, so that no success shared between
     * workers (or accepted for another audience) can vouch for a pod
     */
    callerPod?: boolean;
  },
): Promise<Authenticator> {
  if (deps.tokenCache !== undefined && deps.callerPod === true)
    throw new UsageError('an authenticator that returns the caller pod keeps its own token cache');
  if (config.kind === 'jwt') {
    const jwks =
      config.jwksFile !== undefined
        ? { file: config.jwksFile }
        : {
            url: config.jwksUrl as string,
            ...(config.jwksCaFile !== undefined ? { caFile: config.jwksCaFile } : {}),
            ...(config.jwksTokenFile !== undefined ? { tokenFile: config.jwksTokenFile } : {}),
          };
    const auth = createJwtAuthenticator({
      jwks,
      ...cacheOf(deps.tokenCache),
      issuer: config.issuer,
      audience: config.audience,
      clock: deps.clock,
      clockSkewMs: deps.clockSkewMs,
      logger: deps.logger,
      ...(deps.callerPod === true ? { callerPod: true } : {}),
      ...(config.jwksRefreshMs !== undefined ? { refreshIntervalMs: config.jwksRefreshMs } : {}),
      ...(config.jwksMaxAgeMs !== undefined ? { maxKeyAgeMs: config.jwksMaxAgeMs } : {}),
    });
    // A JWKS file that cannot be read is a configuration error: fail at start. A JWKS URL may be
    // briefly unreachable: start anyway (calls answer UNAVAILABLE until it loads).
    if (config.jwksFile !== undefined) await auth.refresh();
    else
      await auth.refresh().catch((err: unknown) => {
        deps.logger.warn(
          { event: 'jwks_unavailable', err: (err as Error).message },
          'JWKS not loaded yet; retried in the background and on demand',
        );
      });
    return auth;
  }
  const connection = await resolveKubeConnection(
    config.kubeconfig !== undefined ? { kubeconfig: config.kubeconfig } : {},
  );
  return createTokenReviewAuthenticator({
    connection,
    ...cacheOf(deps.tokenCache),
    clock: deps.clock,
    clockSkewMs: deps.clockSkewMs,
    audience: config.audience,
    cacheTtlMs: config.cacheTtlMs,
    rate: {
      perPeer: DEFAULT_TOKEN_REVIEW_RATE.perPeer,
      total: deps.tokenReviewBudget ?? createTokenReviewBudget(deps),
    },
    ...(deps.metrics !== undefined ? { observer: tokenReviewObserver(deps.metrics) } : {}),
    logger: deps.logger,
    ...(deps.callerPod === true ? { callerPod: true } : {}),
  });
}

/**
 * The total budget of TokenReview requests that do not authenticate (DEFAULT_TOKEN_REVIEW_RATE.total)
 * of one process: its share when `workers` processes serve. Create one per process and give it to each
 * TokenReview authenticator (createAuthenticator's tokenReviewBudget), so that the Linkerd and Istio
 * APIs together stay within the documented rate.
 */
export function createTokenReviewBudget(o: { readonly clock: Clock; readonly workers?: number }): RateBudget {
  const total = DEFAULT_TOKEN_REVIEW_RATE.total;
  const workers = Math.max(1, o.workers ?? 1);
  return createRateBudget({
    limit: { burst: Math.ceil(total.burst / workers), perSecond: total.perSecond / workers },
    clock: o.clock,
  });
}

function cacheOf(successes: RenewalCache<KeptSuccess> | undefined): {
  cache?: { successes: RenewalCache<KeptSuccess> };
} {
  return successes !== undefined ? { cache: { successes } } : {};
}

/** Counts TokenReview requests and the tokens answered without one in the issuer's metrics. */
export function tokenReviewObserver(m: IssuerMetrics): TokenReviewObserver {
  // the series exist (at 0) from the start, for rate() and alerts
  for (const r of ['authenticated', 'rejected', 'unavailable'] as const) m.tokenReviews.labels(r).inc(0);
  return {
    reviewed: (result) => {
      m.tokenReviews.labels(result).inc();
    },
    skipped: (reason) => {
      m.tokenReviewsSkipped.labels(reason).inc();
    },
  };
}
