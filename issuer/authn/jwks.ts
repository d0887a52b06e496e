import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { requestBounded } from '../../trust-bundles/index.js';

/** Every JWS algorithm the JWT authenticator can be configured for; never "none", never HS*. */
export const SUPPORTED_JWT_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;

/** Accepted when the operator does not choose; what Kubernetes API servers sign with. */
export const DEFAULT_JWT_ALGORITHMS: readonly string[] = Object.freeze([
  'RS256',
  'RS384',
  'RS512',
  'ES256',
  'ES384',
  'PS256',
]);

/** Largest JWKS document read, in bytes. */
export const MAX_JWKS_BYTES = 1024 * 1024;
/** Most keys taken from one JWKS document. */
export const MAX_JWKS_KEYS = 100;

/** One public verification key of a JWKS. */
export interface JwksKey {
  readonly kid: string | undefined;
  /** the JWK's `alg`, when it names one; the key then verifies only that algorithm */
  readonly alg: string | undefined;
  readonly key: KeyObject;
  /**
   * identifies the key material and its kid/alg, to notice keys that change or disappear: the
   * SHA-256 (base64url) of kid, alg and SPKI. Compact, as it also travels with every token success
   * shared with other workers (renewal-cache-sharing.ts), which take one only while they hold the key.
   */
  readonly fingerprint: string;
}

/** A parsed key set: immutable, swapped whole on reload. */
export interface KeySet {
  readonly keys: readonly JwksKey[];
  readonly byKid: ReadonlyMap<string, readonly JwksKey[]>;
  /** why JWKs were left out (private keys, unsupported types, "use" other than "sig"), for logs */
  readonly skipped: readonly string[];
  /** kids that several usable keys share (a token with such a kid is checked against each), for logs */
  readonly duplicateKids: readonly string[];
}

/**
 * Parses a JWKS document. Keys that cannot verify a signature with one of `algorithms` are left
 * out; a document with no usable key is an error. Throws a plain Error describing the problem.
 */
export function parseJwks(text: string, algorithms: readonly string[]): KeySet {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error('the JWKS is not JSON');
  }
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) {
    throw new Error('the JWKS is not an object with a "keys" array');
  }
  const raw = (doc as { keys: unknown[] }).keys;
  if (raw.length > MAX_JWKS_KEYS)
    throw new Error(`the JWKS has ${raw.length} keys; at most ${MAX_JWKS_KEYS} are read`);
  const keys: JwksKey[] = [];
  const skipped: string[] = [];
  raw.forEach((jwk, i) => {
    const r = importJwk(jwk, algorithms);
    if (typeof r === 'string') skipped.push(`key ${i}: ${r}`);
    else keys.push(r);
  });
  if (keys.length === 0) {
    throw new Error(
      `the JWKS has no usable verification key${skipped.length > 0 ? ` (${skipped.join('; ')})` : ''}`,
    );
  }
  const byKid = new Map<string, JwksKey[]>();
  for (const k of keys) {
    if (k.kid === undefined) continue;
    const list = byKid.get(k.kid);
    if (list === undefined) byKid.set(k.kid, [k]);
    else list.push(k);
  }
  const duplicateKids = [...byKid].filter(([, list]) => list.length > 1).map(([kid]) => kid);
  return Object.freeze({
    keys: Object.freeze(keys),
    byKid,
    skipped: Object.freeze(skipped),
    duplicateKids: Object.freeze(duplicateKids),
  });
}

function importJwk(jwk: unknown, algorithms: readonly string[]): JwksKey | string {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return 'not an object';
  const j = jwk as Record<string, unknown>;
  const kid = typeof j.kid === 'string' ? j.kid : undefined;
  const label = kid !== undefined ? `kid ${JSON.stringify(kid.slice(0, 80))}` : 'no kid';
  if (j.kty !== 'RSA' && j.kty !== 'EC' && j.kty !== 'OKP')
    return `${label}: kty ${JSON.stringify(j.kty)} is not RSA, EC or OKP`;
  if ('d' in j || 'p' in j || 'priv' in j)
    return `${label}: holds private key material; publish only public keys`;
  if (j.use !== undefined && j.use !== 'sig') return `${label}: "use" is ${JSON.stringify(j.use)}, not "sig"`;
  if (j.alg !== undefined && (typeof j.alg !== 'string' || !algorithms.includes(j.alg))) {
    return `${label}: alg ${JSON.stringify(j.alg)} is not one of the allowed algorithms`;
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: j as JsonWebKey, format: 'jwk' });
  } catch (err) {
    return `${label}: cannot be imported (${(err as Error).message})`;
  }
  const alg = typeof j.alg === 'string' ? j.alg : undefined;
  if (!algorithms.some((a) => keyFitsAlgorithm(key, a)))
    return `${label}: fits none of the allowed algorithms`;
  const spki = key.export({ type: 'spki', format: 'der' }).toString('base64');
  const fingerprint = createHash('sha256')
    .update(`${kid ?? ''}|${alg ?? ''}|${spki}`)
    .digest('base64url');
  return Object.freeze({ kid, alg, key, fingerprint });
}

/**
 * The keys of `set` a token's signature is checked against: every key under its `kid` that fits
 * its algorithm (a JWKS may publish several under one kid); without a kid, the one key of the set
 * that fits ('ambiguous' when several do). Otherwise why none is.
 */
export function keysForToken(
  set: KeySet,
  kid: string | undefined,
  alg: string,
): readonly JwksKey[] | 'no-kid-match' | 'no-fit' | 'ambiguous' {
  const candidates = kid !== undefined ? set.byKid.get(kid) : set.keys;
  if (candidates === undefined || candidates.length === 0) return 'no-kid-match';
  const fitting = candidates.filter(
    (k) => (k.alg === undefined || k.alg === alg) && keyFitsAlgorithm(k.key, alg),
  );
  if (fitting.length === 0) return 'no-fit';
  if (kid === undefined && fitting.length > 1) return 'ambiguous';
  return fitting;
}

const CURVE_OF: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' };

/** Whether `key`'s type (and curve) can verify signatures made with JWS algorithm `alg`. */
export function keyFitsAlgorithm(key: KeyObject, alg: string): boolean {
  const type = key.asymmetricKeyType;
  if (alg.startsWith('RS') || alg.startsWith('PS')) return type === 'rsa';
  const curve = CURVE_OF[alg];
  if (curve !== undefined) return type === 'ec' && key.asymmetricKeyDetails?.namedCurve === curve;
  if (alg === 'EdDSA' || alg === 'Ed25519') return type === 'ed25519';
  return false;
}

/** Reads a JWKS file of bounded size; throws a plain Error with the reason. */
export async function readJwksFile(path: string): Promise<string> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    throw new Error(
      `cannot read JWKS file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  if (data.length > MAX_JWKS_BYTES)
    throw new Error(`JWKS file ${path} is larger than ${MAX_JWKS_BYTES} bytes`);
  return data.toString('utf8');
}

/** URL source: longest time between two fetches of the JWKS, by default. */
export const DEFAULT_JWKS_REFRESH_MS = 5 * 60_000;
/** URL source: a key set that could not be refreshed for this long is no longer used, by default. */
export const DEFAULT_JWKS_MAX_AGE_MS = 60 * 60_000;
/** URL source: how soon a failed scheduled fetch is tried again (or the refresh interval if shorter). */
export const JWKS_RETRY_MS = 30_000;
/** Least time between two scheduled JWKS fetches, however short the server's Cache-Control max-age. */
export const MIN_JWKS_REFRESH_MS = 10_000;

/**
 * How long a fetched JWKS may be used before it is fetched again, in ms, from its Cache-Control
 * header: `max-age` (`no-cache` and `no-store` count as 0), or undefined when the header says
 * nothing about it. A malformed max-age counts as 0 (RFC 9111 §4.2.1: treat as stale).
 */
export function cacheControlMaxAgeMs(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  let maxAge: number | undefined;
  for (const part of header.split(',')) {
    const [name = '', value] = part.trim().split('=', 2);
    const directive = name.trim().toLowerCase();
    if (directive === 'no-cache' || directive === 'no-store') return 0;
    if (directive === 'max-age') {
      const v = (value ?? '').trim().replace(/^"(.*)"$/, '$1');
      maxAge = /^\d{1,10}$/.test(v) ? Number(v) * 1000 : 0;
    }
  }
  return maxAge;
}

/**
 * When to fetch a JWKS again, in ms after a successful fetch: the server's max-age when it is
 * shorter than `refreshIntervalMs`, but not below MIN_JWKS_REFRESH_MS (unless the interval is).
 */
export function jwksRefreshDelayMs(maxAgeMs: number | undefined, refreshIntervalMs: number): number {
  return Math.min(refreshIntervalMs, Math.max(maxAgeMs ?? Infinity, MIN_JWKS_REFRESH_MS));
}

/** A JWKS document as fetched, with what its server said about caching it. */
export interface FetchedJwks {
  readonly text: string;
  /** from the Cache-Control header (cacheControlMaxAgeMs) */
  readonly maxAgeMs: number | undefined;
}

/**
 * GETs a JWKS over HTTPS (never plain HTTP; createJwksKeyStore refuses other URLs) trusting `caPem`
 * (system roots when absent), through the one bounded request helper. Rejects with a FetchError
 * (ERR_FETCH_FAILED; its message names the URL, for the log only) on a network error, a status other
 * than 200 (redirects are not followed), a body over MAX_JWKS_BYTES, or after `timeoutMs` (ms).
 * `signal` aborts the request.
 */
export async function fetchJwks(
  url: URL,
  options: {
    readonly caPem?: string;
    readonly bearerToken?: string;
    readonly timeoutMs: number;
    readonly signal?: AbortSignal;
  },
): Promise<FetchedJwks> {
  const res = await requestBounded(url, {
    headers: { accept: 'application/json, application/jwk-set+json' },
    bearerToken: options.bearerToken,
    timeoutMs: options.timeoutMs,
    maxBytes: MAX_JWKS_BYTES,
    ...(options.caPem !== undefined ? { tls: { ca: options.caPem } } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
  });
  return {
    text: res.body.toString('utf8'),
    maxAgeMs: cacheControlMaxAgeMs(res.headers['cache-control']),
  };
}
