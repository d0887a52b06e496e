import { UsageError, type Clock } from '../../ca/index.js';
import { InvalidTokenError, type TokenRejection } from './errors.js';
import { LruCache } from '../lru.js';
import { RenewalCache, tokenEntryBytes, type KeptSuccess } from '../renewal-cache.js';
import type { AuthenticateOptions, AuthenticatedAccount, Authenticator } from './authenticator.js';
import { checkTokenSize, tokenCacheKey, tokenText, unverifiedJwtExpMs } from './common.js';

/** What an inner authenticator may tell the cache besides the account. */
export interface Vouched {
  /** kept as it is (its pod too, if any) and answered again from the cache */
  readonly account: AuthenticatedAccount;
  /** when the token stops being valid, epoch ms, as the inner authenticator checked it (then not read again) */
  readonly expiresAtMs?: number;
  /**
   * what vouched for the token (a JWKS key's fingerprint), told with the success to other workers,
   * which take it only while `vouches` says they hold the same (renewal-cache-sharing.ts)
   */
  readonly by?: string;
}

/** An inner authenticator that says what vouched for the token. */
export interface VouchingAuthenticator {
  readonly name: string;
  vouch(token: Uint8Array, opts: AuthenticateOptions): Promise<Vouched>;
  close?(): Promise<void>;
}

export interface CachingAuthenticatorOptions {
  /** asked on a miss; its successes (and, with failureTtlMs, its InvalidTokenErrors) are kept */
  readonly inner: Authenticator | VouchingAuthenticator;
  /**
   * whether a success another worker verified, vouched for by `by` (Vouched.by), may be taken into
   * `successes`; default: none is
   */
  readonly vouches?: (by: string | undefined) => boolean;
  readonly clock: Clock;
  /** how long a success is kept, ms, never past the token's own expiry; 0: never; default Infinity */
  readonly ttlMs?: number;
  /**
   * entries kept at most, least recently used forgotten first; each for successes (unless
   * `successes` is given) and refusals; default 10 000
   */
  readonly maxEntries?: number;
  /**
   * where successes are kept: the process's token cache (createRenewalCaches: bounded by memory,
   * counted in the metrics, shared across workers); default: a cache of maxEntries
   */
  readonly successes?: RenewalCache<KeptSuccess>;
  /** how long an InvalidTokenError of `inner` is thrown again without asking, ms; 0 (default): never */
  readonly failureTtlMs?: number;
  /**
   * When the token stops being valid, epoch ms, bounding how long a success is kept; undefined: no
   * bound. Default: the (unverified) `exp` claim of a JWT.
   */
  readonly tokenExpiresAtMs?: (token: Uint8Array) => number | undefined;
  /** runs first, before the token is hashed; throws to refuse it. Default: checkTokenSize */
  readonly admit?: (token: Uint8Array) => void;
  /** runs after a miss, before the kept refusals are looked at, with the call's `now`; throws to refuse */
  readonly precheck?: (token: Uint8Array, nowMs: number) => void;
  /** whether kept successes may answer now; when false, `inner` decides and the entry stays */
  readonly trustCached?: () => boolean;
  /** told about every call answered from the cache */
  readonly onHit?: (kind: 'success' | 'failure') => void;
}

/** The token cache options of the JWT and TokenReview authenticators. */
export interface TokenCacheOptions {
  readonly maxEntries?: number;
  readonly successes?: RenewalCache<KeptSuccess>;
}

/** TokenCacheOptions as CachingAuthenticatorOptions. */
export function tokenCacheOptions(
  c: TokenCacheOptions | undefined,
): Pick<CachingAuthenticatorOptions, 'maxEntries' | 'successes'> {
  return {
    ...(c?.maxEntries !== undefined ? { maxEntries: c.maxEntries } : {}),
    ...(c?.successes !== undefined ? { successes: c.successes } : {}),
  };
}

/** Counters since creation. */
export interface CachingAuthenticatorStats {
  /** calls answered with a kept success */
  readonly hits: number;
  /** calls refused with a kept refusal */
  readonly failureHits: number;
}

export interface CachingAuthenticator extends Authenticator {
  stats(): CachingAuthenticatorStats;
  /** forgets everything kept; a call in progress when this happens keeps nothing */
  clear(): void;
  /** forgets everything kept and closes `inner` */
  close(): Promise<void>;
}

interface KeptFailure {
  readonly reason: TokenRejection;
  readonly message: string;
  /** epoch ms, exclusive */
  readonly expiresAtMs: number;
}

/**
 * Wraps any Authenticator with a cache keyed by the token's SHA-256 (the token itself is never kept).
 * A call: `admit` → a kept success, unless expired or `trustCached()` says no → `precheck` → a kept
 * refusal → `inner`. A success is kept until `ttlMs` after it was answered or the token's own expiry,
 * whichever comes first; a refusal (InvalidTokenError only, never unavailability) for
 * `failureTtlMs`, apart from the successes so that a flood of bad tokens cannot push those out.
 */
export function createCachingAuthenticator(o: CachingAuthenticatorOptions): CachingAuthenticator {
  const { inner, clock } = o;
  const ttlMs = nonNegative(o.ttlMs ?? Infinity, 'ttlMs');
  const failureTtlMs = nonNegative(o.failureTtlMs ?? 0, 'failureTtlMs');
  const maxEntries = o.maxEntries ?? 10_000;
  const successes = o.successes ?? new RenewalCache({ maxEntries, sizeOf: tokenEntryBytes });
  const failures = new LruCache<string, KeptFailure>(maxEntries);
  const admit = o.admit ?? checkTokenSize;
  const expiresAtOf = o.tokenExpiresAtMs ?? jwtExpiresAtMs;
  // hits are the successes cache's own count (the metrics read it too); refusals answered from the cache here
  let failureHits = 0;
  if (o.vouches !== undefined) successes.vouches = o.vouches;

  async function ask(
    token: Uint8Array,
    key: string,
    opts: AuthenticateOptions,
  ): Promise<AuthenticatedAccount> {
    // bumped by every clear of the successes, clear() here or another worker's: an answer that
    // straddles one is not kept
    const started = successes.generation;
    let v: Vouched;
    try {
      v =
        'vouch' in inner
          ? await inner.vouch(token, opts)
          : { account: await inner.authenticate(token, opts) };
    } catch (err) {
      if (failureTtlMs > 0 && err instanceof InvalidTokenError && started === successes.generation) {
        const expiresAtMs = clock.now().getTime() + failureTtlMs;
        failures.set(key, { reason: err.reason, message: err.message, expiresAtMs });
      }
      throw err;
    }
    const { account } = v;
    const doneMs = clock.now().getTime();
    const expiresAtMs = Math.min(doneMs + ttlMs, v.expiresAtMs ?? expiresAtOf(token) ?? Infinity);
    if (ttlMs > 0 && expiresAtMs > doneMs && started === successes.generation)
      successes.keep(key, { account, expiresAtMs }, v.by);
    return account;
  }

  function clear(): void {
    successes.clearAt(clock.now().getTime());
    failures.clear();
  }

  return {
    name: inner.name,
    async authenticate(token, opts) {
      admit(token);
      const key = tokenCacheKey(token);
      const nowMs = clock.now().getTime();
      const hit = (o.trustCached?.() ?? true) ? live(successes, key, nowMs) : undefined;
      if (hit === undefined) successes.misses++;
      else {
        successes.hits++;
        o.onHit?.('success');
        return hit.account;
      }
      o.precheck?.(token, nowMs);
      const failed = live(failures, key, nowMs);
      if (failed !== undefined) {
        failureHits++;
        o.onHit?.('failure');
        throw new InvalidTokenError(failed.message, { reason: failed.reason });
      }
      return ask(token, key, opts);
    },
    stats: () => ({ hits: successes.hits, failureHits }),
    clear,
    async close() {
      clear();
      await inner.close?.();
    },
  };
}

/** The entry kept under `key` while it has not expired at `nowMs`; an expired one is dropped. */
function live<T extends { readonly expiresAtMs: number }>(
  cache: LruCache<string, T>,
  key: string,
  nowMs: number,
): T | undefined {
  const kept = cache.get(key);
  if (kept === undefined || nowMs < kept.expiresAtMs) return kept;
  cache.delete(key);
  return undefined;
}

/** The `exp` of a token that is a JWT, in epoch ms (its signature is the inner authenticator's business). */
function jwtExpiresAtMs(token: Uint8Array): number | undefined {
  try {
    return unverifiedJwtExpMs(tokenText(token));
  } catch {
    return undefined;
  }
}

function nonNegative(v: number, name: string): number {
  if (Number.isNaN(v) || v < 0) throw new UsageError(`${name} must be a non-negative number of milliseconds`);
  return v;
}
