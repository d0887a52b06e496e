import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import {
  UsageError,
  systemScheduler,
  type Clock,
  type Scheduler,
  type ServiceAccountRef,
} from '../../ca/index.js';
import { InvalidTokenError } from './errors.js';
import { LruCache } from '../lru.js';
import type { AuthenticateOptions, Authenticator } from './authenticator.js';
import { parseCompactJws, verifyJwsSignature } from './jws.js';
import {
  DEFAULT_TOKEN_AUDIENCE,
  checkTokenSize,
  parseServiceAccountUsername,
  quote,
  raceSignal,
  throwIfAborted,
  tokenCacheKey,
  tokenText,
  type CachedAccount,
} from './common.js';
import {
  DEFAULT_JWKS_MAX_AGE_MS,
  DEFAULT_JWKS_REFRESH_MS,
  DEFAULT_JWT_ALGORITHMS,
  SUPPORTED_JWT_ALGORITHMS,
  keysForToken,
} from './jwks.js';
import { createJwksKeyStore, type JwksKeyStoreStats, type JwksSource } from './jwks-keys.js';

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
  /** positive results kept by token SHA-256 until the token's exp; default 10 000 entries */
  readonly cache?: { readonly maxEntries: number };
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
  const cache = new LruCache<string, CachedAccount>(options.cache?.maxEntries ?? 10_000);
  // bumped when a key disappears or changes; a verification that straddles it is not cached
  let keyGeneration = 0;
  const store = createJwksKeyStore({
    source: options.jwks,
    algorithms,
    clock,
    scheduler: options.scheduler ?? systemScheduler,
    refetchIntervalMs,
    fileCheckIntervalMs,
    fetchTimeoutMs,
    retryBackoffMs,
    refreshIntervalMs,
    maxKeyAgeMs,
    logger: options.logger,
    onKeysLost: () => {
      cache.clear();
      keyGeneration++;
    },
  });
  const stats = { cacheHits: 0, verifications: 0, keyResolutions: 0 };

  /** The keys the token's signature is checked against (jwks.ts keysForToken), re-reading for an unknown kid. */
  async function resolveKeys(
    header: { alg?: unknown; kid?: unknown },
    signal: AbortSignal,
  ): Promise<readonly KeyObject[]> {
    stats.keyResolutions++;
    const alg = header.alg as string; // verify() checked it against `algorithms` before calling
    if (header.kid !== undefined && typeof header.kid !== 'string') {
      throw new InvalidTokenError('the token header "kid" is not a string', { reason: 'key' });
    }
    const kid = header.kid;
    const loadsBefore = store.stats().jwksLoads;
    let found = keysForToken(await store.keys(signal), kid, alg);
    // a key set loaded during this very call is as fresh as a re-read would make it
    const fresh = store.stats().jwksLoads > loadsBefore;
    if (found === 'no-kid-match' && kid !== undefined && !fresh) {
      const reread = await store.refetchForUnknownKid(signal);
      if (reread !== undefined) found = keysForToken(reread, kid, alg);
    }
    switch (found) {
      case 'no-kid-match':
        throw new InvalidTokenError(
          kid !== undefined
            ? `the token's key id (kid) ${quote(kid)} is not in the JWKS (${store.sourceName})`
            : 'the token has no key id (kid) and the JWKS has no key',
          { reason: 'key' },
        );
      case 'no-fit':
        throw new InvalidTokenError(
          `the JWKS key ${kid !== undefined ? `with kid ${quote(kid)} ` : ''}cannot verify the token's algorithm ${quote(alg)}`,
          { reason: 'key' },
        );
      case 'ambiguous':
        throw new InvalidTokenError('the token has no key id (kid) and several JWKS keys fit its algorithm', {
          reason: 'key',
        });
      default:
        return found.map((k) => k.key);
    }
  }

  /**
   * Header (alg allowed, no `crit`), key by kid, signature, then claims: iss, aud, exp (required),
   * nbf, with `skewMs` tolerance; then the service account from `sub` and `kubernetes.io`.
   */
  async function verify(
    text: string,
    signal: AbortSignal,
  ): Promise<{ account: ServiceAccountRef; expMs: number }> {
    stats.verifications++;
    const jws = parseCompactJws(text);
    const { header, payload } = jws;
    const alg = header.alg;
    if (typeof alg !== 'string' || !algorithms.includes(alg)) {
      throw new InvalidTokenError(
        `the token's signing algorithm (alg) ${quote(alg)} is not allowed; allowed: ${algorithms.join(', ')}`,
        { reason: 'algorithm' },
      );
    }
    if (header.crit !== undefined)
      throw new InvalidTokenError(
        'the token has critical header parameters ("crit"), which are not supported',
        { reason: 'algorithm' },
      );
    if (header.b64 !== undefined)
      throw new InvalidTokenError(
        'the token uses the unencoded payload option ("b64"), which is not supported',
        { reason: 'algorithm' },
      );
    const keys = await resolveKeys(header, signal);
    if (!keys.some((key) => verifyJwsSignature(alg, key, jws.signingInput, jws.signature))) {
      throw new InvalidTokenError(
        `the token's signature does not verify with the JWKS key${typeof header.kid === 'string' ? ` ${quote(header.kid)}` : ''}`,
        { reason: 'signature' },
      );
    }
    const now = clock.now();
    const nowS = now.getTime() / 1000;
    const tol = skewMs / 1000;
    const s = tol.toString();
    if (payload.iss !== options.issuer) {
      throw new InvalidTokenError(
        payload.iss === undefined
          ? 'the token has no "iss" claim'
          : `the token's issuer ${quote(payload.iss)} is not the expected ${quote(options.issuer)}`,
        { reason: 'issuer' },
      );
    }
    const aud = payload.aud;
    if (aud === undefined)
      throw new InvalidTokenError('the token has no "aud" claim', { reason: 'audience' });
    if (!(aud === audience || (Array.isArray(aud) && aud.includes(audience)))) {
      throw new InvalidTokenError(`the token's audience ${quote(aud)} does not include ${quote(audience)}`, {
        reason: 'audience',
      });
    }
    const exp = payload.exp;
    if (exp === undefined) throw new InvalidTokenError('the token has no "exp" claim', { reason: 'claims' });
    if (typeof exp !== 'number' || !Number.isFinite(exp))
      throw new InvalidTokenError('the token\'s "exp" claim is not a number', { reason: 'claims' });
    if (nowS >= exp + tol)
      throw new InvalidTokenError(
        `the token expired at ${isoOf(exp)} (now ${now.toISOString()}, allowed clock skew ${s} s)`,
        { reason: 'expired' },
      );
    const nbf = payload.nbf;
    if (nbf !== undefined) {
      if (typeof nbf !== 'number' || !Number.isFinite(nbf))
        throw new InvalidTokenError('the token\'s "nbf" claim is not a number', { reason: 'claims' });
      if (nowS < nbf - tol)
        throw new InvalidTokenError(
          `the token is not valid before ${isoOf(nbf)} (now ${now.toISOString()}, allowed clock skew ${s} s)`,
          { reason: 'not-yet-valid' },
        );
    }
    const iat = payload.iat;
    if (iat !== undefined) {
      if (typeof iat !== 'number' || !Number.isFinite(iat))
        throw new InvalidTokenError('the token\'s "iat" claim is not a number', { reason: 'claims' });
      if (nowS < iat - tol)
        throw new InvalidTokenError(
          `the token was issued at ${isoOf(iat)}, in the future (now ${now.toISOString()}, allowed clock skew ${s} s)`,
          { reason: 'not-yet-valid' },
        );
    }
    if (payload.sub === undefined)
      throw new InvalidTokenError('the token has no "sub" claim', { reason: 'subject' });
    return { account: accountOf(payload), expMs: exp * 1000 };
  }

  return {
    name: 'jwt',
    async authenticate(token: Uint8Array, opts: AuthenticateOptions): Promise<ServiceAccountRef> {
      checkTokenSize(token);
      const key = tokenCacheKey(token);
      const hit = cache.get(key);
      // a key set past its maximum age vouches for nothing, cached or not: verify() refreshes or refuses
      if (hit !== undefined && !store.tooOld()) {
        if (clock.now().getTime() < hit.expiresAtMs) {
          stats.cacheHits++;
          return hit.account;
        }
        cache.delete(key);
      }
      throwIfAborted(opts.signal);
      const text = tokenText(token);
      const generation = keyGeneration;
      const { account, expMs } = await verify(text, opts.signal);
      if (generation === keyGeneration) cache.set(key, { account, expiresAtMs: expMs });
      return account;
    },
    async refresh(opts = {}) {
      const p = store.reload('refresh');
      await (opts.signal !== undefined ? raceSignal(p, opts.signal) : p);
    },
    stats: () => ({ ...stats, ...store.stats() }),
    close() {
      store.close();
      cache.clear();
      return Promise.resolve();
    },
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

/** A claim time for a message; times outside the Date range (±8.64e15 ms) are quoted, never thrown on. */
function isoOf(seconds: unknown): string {
  return typeof seconds === 'number' && Number.isFinite(seconds) && Math.abs(seconds * 1000) <= 8.64e15
    ? new Date(seconds * 1000).toISOString()
    : quote(seconds);
}

/** The service account of verified claims: `sub` shape and the `kubernetes.io` claim must agree. */
function accountOf(payload: Record<string, unknown>): ServiceAccountRef {
  const sub = payload.sub;
  const account = typeof sub === 'string' ? parseServiceAccountUsername(sub) : undefined;
  if (account === undefined) {
    throw new InvalidTokenError(
      `the token's subject (sub) ${quote(sub)} is not system:serviceaccount:<namespace>:<name> with DNS-1123 labels`,
      { reason: 'subject' },
    );
  }
  const k8s = payload['kubernetes.io'];
  if (k8s !== undefined) {
    if (typeof k8s !== 'object' || k8s === null) {
      throw new InvalidTokenError('the token\'s "kubernetes.io" claim is not an object', {
        reason: 'subject',
      });
    }
    const ns = (k8s as { namespace?: unknown }).namespace;
    const sa = (k8s as { serviceaccount?: { name?: unknown } }).serviceaccount;
    const saName = typeof sa === 'object' && sa !== null ? sa.name : undefined;
    if (ns !== account.namespace) {
      throw new InvalidTokenError(
        `the token's "kubernetes.io" namespace ${quote(ns)} disagrees with its subject's namespace ${quote(account.namespace)}`,
        { reason: 'subject' },
      );
    }
    if (saName !== account.name) {
      throw new InvalidTokenError(
        `the token's "kubernetes.io" service account ${quote(saName)} disagrees with its subject's name ${quote(account.name)}`,
        { reason: 'subject' },
      );
    }
  }
  return account;
}
