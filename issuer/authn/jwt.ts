import type { Logger } from 'pino';
import { UsageError, systemScheduler, type Clock, type Scheduler } from '../../ca/index.js';
import type { Authenticator } from './authenticator.js';
import {
  createCachingAuthenticator,
  tokenCacheOptions,
  type TokenCacheOptions,
} from './caching-authenticator.js';
import { DEFAULT_TOKEN_AUDIENCE, raceSignal, throwIfAborted, tokenText } from './common.js';
import {
  DEFAULT_JWKS_MAX_AGE_MS,
  DEFAULT_JWKS_REFRESH_MS,
  DEFAULT_JWT_ALGORITHMS,
  SUPPORTED_JWT_ALGORITHMS,
} from './jwks.js';
import {
  createJwksKeyStore,
  type JwksKeyStoreOptions,
  type JwksKeyStoreStats,
  type JwksSource,
} from './jwks-keys.js';
import { createJwtVerifier } from './jwt-verifier.js';

export type { JwksSource } from './jwks-keys.js';

export interface JwtAuthenticatorOptions {
  readonly jwks: JwksSource;
  /** required value of the `iss` claim */
  readonly issuer: string;
  /** required member of the `aud` claim; default "identity.l5d.io" */
  readonly audience?: string;
  readonly clock: Clock;
  /** tolerance for exp/nbf against the clock, ms; default 20 000 */
  readonly clockSkewMs?: number;
  /** accepted JWS algorithms; default RS256 RS384 RS512 ES256 ES384 PS256; "none" and HS* are refused */
  readonly algorithms?: readonly string[];
  /**
   * positive results kept by token SHA-256 until the token's exp: in `successes` (the process's
   * token cache, bounded by memory) or a cache of maxEntries; default 10 000 entries
   */
  readonly cache?: TokenCacheOptions;
  /** least time between two JWKS re-reads triggered by an unknown kid, ms; default 30 000 */
  readonly refetchIntervalMs?: number;
  /** file source: least time between two mtime checks of the JWKS file, ms; default 1 000 */
  readonly fileCheckIntervalMs?: number;
  /** URL source: time allowed for one JWKS fetch, ms; default 5 000 */
  readonly fetchTimeoutMs?: number;
  /**
   * URL source: longest time between two fetches of the JWKS, ms; a shorter Cache-Control max-age
   * of the answer wins, down to 10 s; default 300 000 (5 min). A failed fetch is retried after 30 s.
   */
  readonly refreshIntervalMs?: number;
  /**
   * URL source: a key set not refreshed for this long is no longer used (calls answer
   * ERR_AUTHENTICATOR_UNAVAILABLE until a fetch succeeds), ms; longer than refreshIntervalMs;
   * default 3 600 000 (1 h)
   */
  readonly maxKeyAgeMs?: number;
  /** runs the scheduled JWKS fetches (URL source); default systemScheduler */
  readonly scheduler?: Scheduler;
  /** after a failed first load, calls fail fast for this long before the next attempt, ms; default 1 000 */
  readonly retryBackoffMs?: number;
  readonly logger?: Logger;
  /**
   * also return the pod a token's `kubernetes.io.pod` claim names (AuthenticatedAccount.pod), kept with
   * the cached success; default false (the Linkerd API has no use for it)
   */
  readonly callerPod?: boolean;
}

/** Counters since creation, for metrics and tests. */
export interface JwtAuthenticatorStats extends JwksKeyStoreStats {
  /** authentications answered from the token cache (no crypto) */
  readonly cacheHits: number;
  /** full verifications attempted (signature and claims) */
  readonly verifications: number;
  /** key look-ups for a token's header */
  readonly keyResolutions: number;
}

export interface JwtAuthenticator extends Authenticator {
  readonly name: 'jwt';
  /** loads the JWKS now (first load, or re-read); throws AuthenticatorUnavailableError on failure */
  refresh(opts?: { readonly signal?: AbortSignal }): Promise<void>;
  stats(): JwtAuthenticatorStats;
  /** aborts JWKS fetches in progress, stops the scheduled ones and drops the token cache */
  close(): Promise<void>;
}

const FORBIDDEN_ALG = /^(none|HS\d+)$/i;

/**
 * Verifies Kubernetes projected service-account tokens locally against a JWKS.
 *
 * A token is accepted when: its header `alg` is allowed and fits the key; the key is found by `kid`
 * (an unknown kid re-reads the JWKS at most once per `refetchIntervalMs`; when several keys share the
 * kid, each that fits the algorithm is tried); the signature verifies; `iss` equals `issuer`; `aud`
 * includes `audience`; `exp` is present, `nbf` passed and `iat` not in the future (all with
 * `clockSkewMs` tolerance); `sub` is `system:serviceaccount:<ns>:<sa>` with DNS-1123 labels; and the
 * `kubernetes.io` claim, when present, names the same namespace and service account.
 *
 * A JWKS URL is fetched again every `refreshIntervalMs` (sooner when its Cache-Control max-age says
 * so); a key set that could not be refreshed for `maxKeyAgeMs` is no longer trusted. Whenever a key
 * disappears or changes, the verified-token cache is dropped.
 */
export function createJwtAuthenticator(options: JwtAuthenticatorOptions): JwtAuthenticator {
  const algorithms = validateAlgorithms(options.algorithms ?? DEFAULT_JWT_ALGORITHMS);
  if (typeof options.issuer !== 'string' || options.issuer === '') {
    throw new UsageError('the JWT authenticator needs the expected token issuer ("iss")');
  }
  const audience = options.audience ?? DEFAULT_TOKEN_AUDIENCE;
  if (audience === '') throw new UsageError('the JWT authenticator needs a non-empty audience');
  const clock = options.clock;
  const skewMs = nonNegative(options.clockSkewMs ?? 20_000, 'clockSkewMs');
  const store = createJwksKeyStore({
    ...keyStoreTimes(options),
    source: options.jwks,
    algorithms,
    clock,
    scheduler: options.scheduler ?? systemScheduler,
    logger: options.logger,
    // a verified token vouches for nothing once its key is gone or changed
    onKeysLost: () => {
      cached.clear();
    },
  });
  const verifier = createJwtVerifier({
    store,
    algorithms,
    issuer: options.issuer,
    audience,
    skewMs,
    clock,
    callerPod: options.callerPod === true,
  });
  const cached = createCachingAuthenticator({
    inner: {
      name: 'jwt',
      async vouch(token, opts) {
        throwIfAborted(opts.signal);
        const v = await verifier.verify(tokenText(token), opts.signal);
        return { account: v.account, expiresAtMs: v.expMs, by: v.keyFingerprint };
      },
    },
    clock,
    // positive results only, kept until the token's exp
    ...tokenCacheOptions(options.cache),
    // another worker's success is taken only while this worker holds the key that verified it
    vouches: (by) => by !== undefined && store.holds(by),
    // a key set past its maximum age vouches for nothing, cached or not: verify() refreshes or refuses
    trustCached: () => !store.tooOld(),
  });

  return {
    name: 'jwt',
    authenticate: (token, opts) => cached.authenticate(token, opts),
    async refresh(opts = {}) {
      const p = store.reload('refresh');
      await (opts.signal !== undefined ? raceSignal(p, opts.signal) : p);
    },
    stats: () => ({ cacheHits: cached.stats().hits, ...verifier.stats(), ...store.stats() }),
    close() {
      store.close();
      cached.clear();
      return Promise.resolve();
    },
  };
}

/** The timing options of the key store, validated, with their defaults. */
function keyStoreTimes(
  options: JwtAuthenticatorOptions,
): Pick<
  JwksKeyStoreOptions,
  | 'refetchIntervalMs'
  | 'fileCheckIntervalMs'
  | 'fetchTimeoutMs'
  | 'retryBackoffMs'
  | 'refreshIntervalMs'
  | 'maxKeyAgeMs'
> {
  // validated in the order the options are documented
  const refetchIntervalMs = nonNegative(options.refetchIntervalMs ?? 30_000, 'refetchIntervalMs');
  const fileCheckIntervalMs = nonNegative(options.fileCheckIntervalMs ?? 1_000, 'fileCheckIntervalMs');
  const fetchTimeoutMs = nonNegative(options.fetchTimeoutMs ?? 5_000, 'fetchTimeoutMs');
  const retryBackoffMs = nonNegative(options.retryBackoffMs ?? 1_000, 'retryBackoffMs');
  const refreshIntervalMs = atLeast(
    options.refreshIntervalMs ?? DEFAULT_JWKS_REFRESH_MS,
    1_000,
    'refreshIntervalMs',
  );
  const maxKeyAgeMs = atLeast(options.maxKeyAgeMs ?? DEFAULT_JWKS_MAX_AGE_MS, 1_000, 'maxKeyAgeMs');
  if (maxKeyAgeMs <= refreshIntervalMs)
    throw new UsageError('maxKeyAgeMs must be longer than refreshIntervalMs');
  return {
    refetchIntervalMs,
    fileCheckIntervalMs,
    fetchTimeoutMs,
    retryBackoffMs,
    refreshIntervalMs,
    maxKeyAgeMs,
  };
}

function validateAlgorithms(algs: readonly string[]): readonly string[] {
  if (algs.length === 0) throw new UsageError('the JWT authenticator needs at least one algorithm');
  for (const a of algs) {
    if (FORBIDDEN_ALG.test(a)) {
      throw new UsageError(`JWT algorithm ${JSON.stringify(a)} is never accepted (no "none", no HMAC/HS*)`);
    }
    if (!(SUPPORTED_JWT_ALGORITHMS as readonly string[]).includes(a)) {
      throw new UsageError(
        `JWT algorithm ${JSON.stringify(a)} is not supported; use some of ${SUPPORTED_JWT_ALGORITHMS.join(', ')}`,
      );
    }
  }
  return Object.freeze([...new Set(algs)]);
}

function atLeast(v: number, min: number, name: string): number {
  if (!Number.isFinite(v) || v < min) throw new UsageError(`${name} must be at least ${min} milliseconds`);
  return v;
}

function nonNegative(v: number, name: string): number {
  if (!Number.isFinite(v) || v < 0)
    throw new UsageError(`${name} must be a non-negative number of milliseconds`);
  return v;
}
