// The public API of the authentication seam. issuer/ code imports only this module.
export type { AuthenticatedAccount, Authenticator, AuthenticateOptions, CallerPod } from './authenticator.js';
export {
  type AuthnErrorCode,
  AuthenticatorUnavailableError,
  InvalidTokenError,
  type TokenRejection,
  type UnavailableReason,
} from './errors.js';
export {
  createCachingAuthenticator,
  type CachingAuthenticatorOptions,
  type CachingAuthenticatorStats,
} from './caching-authenticator.js';
export { DEFAULT_TOKEN_AUDIENCE, MAX_TOKEN_BYTES, raceSignal } from './common.js';
export {
  DEFAULT_JWKS_MAX_AGE_MS,
  DEFAULT_JWKS_REFRESH_MS,
  DEFAULT_JWT_ALGORITHMS,
  SUPPORTED_JWT_ALGORITHMS,
} from './jwks.js';
export {
  createJwtAuthenticator,
  type JwksSource,
  type JwtAuthenticator,
  type JwtAuthenticatorOptions,
  type JwtAuthenticatorStats,
} from './jwt.js';
export {
  createTokenReviewAuthenticator,
  DEFAULT_TOKEN_REVIEW_CACHE_MS,
  DEFAULT_TOKEN_REVIEW_RATE,
  TOKEN_REVIEW_PATH,
  type TokenReviewObserver,
  type TokenReviewResult,
  type TokenReviewSkip,
  type TokenReviewAuthenticator,
  type TokenReviewAuthenticatorOptions,
  type TokenReviewAuthenticatorStats,
} from './token-review.js';
export { createStaticAuthenticator } from './static.js';
export { createRateBudget, type RateBudget, type RateLimit } from './limiter.js';
