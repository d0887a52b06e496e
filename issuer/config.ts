import { availableParallelism } from 'node:os';
import {
  DEFAULTS,
  UsageError,
  isDns1123Subdomain,
  parseDuration,
  parseRfc3339,
  validateIdentityDomain,
  type IdentityDomain,
  type LeafKeyType,
  type ServiceAccountRef,
} from '../ca/index.js';
import { DEFAULT_JWKS_MAX_AGE_MS, DEFAULT_JWKS_REFRESH_MS } from './authn/index.js';
import { DEFAULT_RENEWAL_CACHE_BYTES } from './renewal-cache.js';
import { parseServiceAccounts } from './service-accounts.js';
import { DEFAULT_RENEW_SPREAD_MS, type RenewalHint } from './renewal-hint.js';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** `host:port`, an IPv6 host in brackets (a bind address, a status report's listener). */
export function formatHostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export type AuthConfig =
  | {
      readonly kind: 'jwt';
      readonly jwksFile?: string;
      readonly jwksUrl?: string;
      readonly jwksCaFile?: string;
      readonly jwksTokenFile?: string;
      /** --jwks-url only: longest time between two fetches, and the age past which fetched keys are not used */
      readonly jwksRefreshMs?: number;
      readonly jwksMaxAgeMs?: number;
      readonly issuer: string;
      readonly audience: string;
    }
  | {
      readonly kind: 'token-review';
      readonly kubeconfig?: string;
      readonly audience: string;
      /** how long a successful TokenReview is reused, ms; 0: never (--token-review-cache) */
      readonly cacheTtlMs: number;
    };

/** Everything `lanyard serve` needs, validated and frozen. Durations in milliseconds. */
export interface IssuerConfig {
  readonly issuerDir: string;
  readonly trustAnchorsPath?: string;
  /** PEM certificates served after the issuer certificate of tls.crt (--intermediates), watched like it */
  readonly intermediatesPath?: string;
  /** --renew-after/--renew-spread: answers bring renewals forward into [after, after + spreadMs] */
  readonly renewalHint?: RenewalHint;
  readonly listen: HostPort;
  readonly adminListen: HostPort;
  readonly cluster: string;
  readonly domain: IdentityDomain;
  readonly auth: AuthConfig;
  readonly leafLifetimeMs: number;
  readonly clockSkewMs: number;
  readonly leafKeyTypes: readonly LeafKeyType[];
  readonly maxInFlight: number;
  /** Certify calls in flight from one peer address (one process) */
  readonly maxInFlightPerPeer: number;
  readonly shutdownGraceMs: number;
  readonly pollIntervalMs: number;
  /** serving TLS; serverName: the DNS name clients ask for (--tls-server-name; absent: identityServiceName(domain)) */
  readonly tls?: { readonly certPath: string; readonly keyPath: string; readonly serverName?: string };
  readonly logLevel: string;
  /** processes serving Certify (node:cluster workers); 1 = this process alone */
  readonly workers: number;
  /** estimated bytes each process keeps in its renewal caches, CSRs and token successes together */
  readonly renewalCacheBytes: number;
  /** the Istio CA API (CreateCertificate) on its own TLS listener; absent: off (--istio-listen) */
  readonly istio?: IstioConfig;
}

/** --istio-listen and the flags that go with it. */
export interface IstioConfig {
  readonly listen: HostPort;
  /** the audience Istio's tokens carry (--istio-token-audience, default istio-ca) */
  readonly tokenAudience: string;
  /** the accounts that may ask for ImpersonatedIdentity (ztunnel), --istio-trusted-node-accounts */
  readonly trustedNodeAccounts: readonly ServiceAccountRef[];
  /** the longest validity_duration accepted, ms (--istio-max-ttl, default 24h) */
  readonly maxTtlMs: number;
  /**
   * --kubeconfig: the Kubernetes API of the impersonation node check (with trustedNodeAccounts);
   * absent: in-cluster credentials
   */
  readonly kubeconfig?: string;
}

/** Raw option values as commander hands them over (flags or LANYARD_* environment variables). */
export interface ServeFlags {
  issuerDir: string;
  trustAnchors?: string;
  intermediates?: string;
  /** RFC 3339 */
  renewAfter?: string;
  renewSpread?: number;
  listen: string;
  adminListen: string;
  cluster: string;
  trustDomain: string;
  controlNamespace: string;
  auth: string;
  jwksFile?: string;
  jwksUrl?: string;
  jwksCaFile?: string;
  jwksTokenFile?: string;
  jwksRefresh?: number;
  jwksMaxAge?: number;
  tokenIssuer?: string;
  tokenAudience: string;
  kubeconfig?: string;
  /** a duration, or 0 */
  tokenReviewCache?: string;
  leafLifetime?: number;
  clockSkew?: number;
  leafKeyTypes: string;
  maxInFlight: string;
  maxInFlightPerPeer?: string;
  shutdownGrace?: number;
  pollInterval?: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsServerName?: string;
  logLevel: string;
  /** a positive integer or "auto" (one per available core); default 1 */
  workers?: string;
  /** bytes, KiB, MiB or GiB (e.g. 40MiB) */
  renewalCacheMemory?: string;
  /** HOST:PORT; absent: the Istio CA API is off */
  istioListen?: string;
  istioTokenAudience?: string;
  /** NS/SA,... */
  istioTrustedNodeAccounts?: string;
  istioMaxTtl?: number;
}

export const SERVE_DEFAULTS = Object.freeze({
  listen: '0.0.0.0:8080',
  adminListen: '127.0.0.1:9990',
  cluster: 'default',
  audience: 'identity.l5d.io',
  tokenReviewCache: '5s',
  maxInFlight: 1024,
  shutdownGraceMs: 10_000,
  pollIntervalMs: 2_000,
  /** --jwks-url: fetched again at least this often (a shorter Cache-Control max-age wins) */
  jwksRefreshMs: DEFAULT_JWKS_REFRESH_MS,
  /** --jwks-url: keys that could not be refreshed for this long are no longer used */
  jwksMaxAgeMs: DEFAULT_JWKS_MAX_AGE_MS,
  /** per process, the CSR and token renewal caches together: ≈ 66,000 pods */
  renewalCacheMemory: `${DEFAULT_RENEWAL_CACHE_BYTES / 1024 / 1024}MiB`,
  istioTokenAudience: 'istio-ca',
  istioMaxTtlMs: 24 * 60 * 60 * 1000,
});

export function parseHostPort(s: string, flag: string): HostPort {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:]*)):(\d{1,5})$/.exec(s);
  const port = Number(m?.[3]);
  if (m === null || port > 65535)
    throw new UsageError(`${flag} "${s}" must be HOST:PORT (e.g. 0.0.0.0:8080, [::1]:8080)`);
  return Object.freeze({ host: m[1] ?? (m[2] === '' ? '0.0.0.0' : (m[2] as string)), port });
}

export function buildIssuerConfig(f: ServeFlags): IssuerConfig {
  const domain = validateIdentityDomain({ trustDomain: f.trustDomain, controlNamespace: f.controlNamespace });
  const auth = buildAuthConfig(f);
  const leafKeyTypes = parseLeafKeyTypes(f.leafKeyTypes);
  const { maxInFlight, maxInFlightPerPeer } = parseInFlightLimits(f);
  const tls = buildTlsConfig(f);
  const renewalHint = buildRenewalHint(f);
  const istio = buildIstioConfig(f, tls);
  return Object.freeze({
    issuerDir: f.issuerDir,
    ...(f.trustAnchors !== undefined ? { trustAnchorsPath: f.trustAnchors } : {}),
    ...(f.intermediates !== undefined ? { intermediatesPath: f.intermediates } : {}),
    ...(renewalHint !== undefined ? { renewalHint } : {}),
    listen: parseHostPort(f.listen, '--listen'),
    adminListen: parseHostPort(f.adminListen, '--admin-listen'),
    cluster: f.cluster,
    domain,
    auth,
    leafLifetimeMs: f.leafLifetime ?? DEFAULTS.leafLifetimeMs,
    clockSkewMs: f.clockSkew ?? DEFAULTS.clockSkewMs,
    leafKeyTypes,
    maxInFlight,
    maxInFlightPerPeer,
    shutdownGraceMs: f.shutdownGrace ?? SERVE_DEFAULTS.shutdownGraceMs,
    pollIntervalMs: f.pollInterval ?? SERVE_DEFAULTS.pollIntervalMs,
    ...(tls !== undefined ? { tls } : {}),
    logLevel: f.logLevel,
    workers: parseWorkers(f.workers ?? '1'),
    renewalCacheBytes: parseMemorySize(
      f.renewalCacheMemory ?? SERVE_DEFAULTS.renewalCacheMemory,
      '--renewal-cache-memory',
    ),
    ...(istio !== undefined ? { istio } : {}),
  });
}

/**
 * --istio-listen (needs --tls-cert/--tls-key: Istio's agents speak TLS only) with its audience,
 * trusted node accounts and maximum TTL; the other three without --istio-listen are a usage error.
 */
function buildIstioConfig(f: ServeFlags, tls: IssuerConfig['tls']): IstioConfig | undefined {
  if (f.istioListen === undefined) {
    if (
      f.istioTokenAudience !== undefined ||
      f.istioTrustedNodeAccounts !== undefined ||
      f.istioMaxTtl !== undefined
    )
      throw new UsageError(
        '--istio-token-audience, --istio-trusted-node-accounts and --istio-max-ttl go with --istio-listen',
      );
    return undefined;
  }
  if (tls === undefined)
    throw UsageError.forOption(
      '--istio-listen',
      'needs --tls-cert and --tls-key (Istio agents connect with TLS)',
    );
  const tokenAudience = f.istioTokenAudience ?? SERVE_DEFAULTS.istioTokenAudience;
  if (tokenAudience === '') throw UsageError.forOption('--istio-token-audience', 'must not be empty');
  const maxTtlMs = f.istioMaxTtl ?? SERVE_DEFAULTS.istioMaxTtlMs;
  if (maxTtlMs < 1000) throw UsageError.forOption('--istio-max-ttl', 'must be at least 1s');
  return Object.freeze({
    listen: parseHostPort(f.istioListen, '--istio-listen'),
    tokenAudience,
    trustedNodeAccounts: parseServiceAccounts(
      f.istioTrustedNodeAccounts ?? '',
      '--istio-trusted-node-accounts',
    ),
    maxTtlMs,
    ...(f.kubeconfig !== undefined ? { kubeconfig: f.kubeconfig } : {}),
  });
}

/**
 * --renew-after (RFC 3339) and --renew-spread (default 10m); undefined: no hint. A spread given
 * without --renew-after would be ignored: a usage error instead.
 */
function buildRenewalHint(f: ServeFlags): RenewalHint | undefined {
  if (f.renewAfter === undefined) {
    if (f.renewSpread !== undefined)
      throw UsageError.forOption(
        '--renew-spread',
        'needs --renew-after (it spreads the renewals that hint brings forward)',
      );
    return undefined;
  }
  const after = parseRfc3339(f.renewAfter);
  if (after === undefined)
    throw UsageError.forOption(
      '--renew-after',
      `"${f.renewAfter}" is not an RFC 3339 time (e.g. 2026-07-01T12:00:00Z)`,
    );
  return Object.freeze({ after, spreadMs: f.renewSpread ?? DEFAULT_RENEW_SPREAD_MS });
}

/** --auth and the flags that go with it. */
function buildAuthConfig(f: ServeFlags): AuthConfig {
  if (f.auth === 'jwt') return buildJwtAuthConfig(f);
  if (f.auth === 'token-review') {
    if (f.jwksRefresh !== undefined || f.jwksMaxAge !== undefined)
      throw new UsageError('--jwks-refresh and --jwks-max-age go with --auth jwt and --jwks-url');
    return {
      kind: 'token-review',
      audience: f.tokenAudience,
      cacheTtlMs: parseTokenReviewCache(f.tokenReviewCache ?? SERVE_DEFAULTS.tokenReviewCache),
      ...(f.kubeconfig !== undefined ? { kubeconfig: f.kubeconfig } : {}),
    };
  }
  throw new UsageError(`--auth "${f.auth}" is not one of jwt, token-review`);
}

/** --auth jwt: one JWKS source, its refresh and maximum age (URL only), and the token issuer. */
function buildJwtAuthConfig(f: ServeFlags): AuthConfig {
  if ((f.jwksFile === undefined) === (f.jwksUrl === undefined)) {
    throw new UsageError('--auth jwt needs exactly one of --jwks-file FILE or --jwks-url URL');
  }
  const jwksRefreshMs = f.jwksRefresh ?? SERVE_DEFAULTS.jwksRefreshMs;
  const jwksMaxAgeMs = f.jwksMaxAge ?? SERVE_DEFAULTS.jwksMaxAgeMs;
  if (f.jwksUrl === undefined && (f.jwksRefresh !== undefined || f.jwksMaxAge !== undefined))
    throw new UsageError(
      '--jwks-refresh and --jwks-max-age go with --jwks-url (a --jwks-file is re-read when it changes)',
    );
  if (jwksRefreshMs < 1_000) throw new UsageError('--jwks-refresh must be at least 1s');
  if (jwksMaxAgeMs <= jwksRefreshMs)
    throw new UsageError(
      '--jwks-max-age must be longer than --jwks-refresh (several times, to ride out failed fetches)',
    );
  if (f.tokenIssuer === undefined || f.tokenIssuer === '') {
    throw new UsageError(
      '--auth jwt needs --token-issuer (the "iss" of your cluster\'s service-account tokens)',
    );
  }
  return {
    kind: 'jwt',
    issuer: f.tokenIssuer,
    audience: f.tokenAudience,
    ...(f.jwksFile !== undefined ? { jwksFile: f.jwksFile } : {}),
    ...(f.jwksUrl !== undefined ? { jwksUrl: f.jwksUrl, jwksRefreshMs, jwksMaxAgeMs } : {}),
    ...(f.jwksCaFile !== undefined ? { jwksCaFile: f.jwksCaFile } : {}),
    ...(f.jwksTokenFile !== undefined ? { jwksTokenFile: f.jwksTokenFile } : {}),
  };
}

/** --leaf-key-types: a comma-separated list of p256, p384. */
function parseLeafKeyTypes(s: string): LeafKeyType[] {
  const leafKeyTypes = s.split(',').map((k) => k.trim());
  for (const k of leafKeyTypes)
    if (k !== 'p256' && k !== 'p384') throw new UsageError(`--leaf-key-types: "${k}" is not p256 or p384`);
  return leafKeyTypes as LeafKeyType[];
}

/** --max-in-flight, and --max-in-flight-per-peer (default: half of it, at least 1). */
function parseInFlightLimits(f: ServeFlags): { maxInFlight: number; maxInFlightPerPeer: number } {
  const maxInFlight = Number(f.maxInFlight);
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1)
    throw new UsageError('--max-in-flight must be a positive integer');
  const maxInFlightPerPeer =
    f.maxInFlightPerPeer === undefined
      ? Math.max(1, Math.floor(maxInFlight / 2))
      : Number(f.maxInFlightPerPeer);
  if (!Number.isInteger(maxInFlightPerPeer) || maxInFlightPerPeer < 1)
    throw new UsageError('--max-in-flight-per-peer must be a positive integer');
  return { maxInFlight, maxInFlightPerPeer };
}

/** --tls-cert, --tls-key (together) and --tls-server-name; undefined: plaintext. */
function buildTlsConfig(f: ServeFlags): IssuerConfig['tls'] {
  if ((f.tlsCert === undefined) !== (f.tlsKey === undefined))
    throw new UsageError('--tls-cert and --tls-key go together');
  if (f.tlsServerName !== undefined && f.tlsCert === undefined)
    throw new UsageError('--tls-server-name goes with --tls-cert and --tls-key');
  if (f.tlsServerName !== undefined && !isDns1123Subdomain(f.tlsServerName))
    throw new UsageError(`--tls-server-name "${f.tlsServerName}" is not a DNS name`);
  if (f.tlsCert === undefined || f.tlsKey === undefined) return undefined;
  return {
    certPath: f.tlsCert,
    keyPath: f.tlsKey,
    ...(f.tlsServerName !== undefined ? { serverName: f.tlsServerName } : {}),
  };
}

/** The longest --token-review-cache: a deleted pod's token is accepted for at most this long. */
export const MAX_TOKEN_REVIEW_CACHE_MS = 10 * 60_000;

/** --token-review-cache: "0" (no reuse) or a duration of at most MAX_TOKEN_REVIEW_CACHE_MS. */
export function parseTokenReviewCache(s: string): number {
  if (/^\s*0+(?:ms|s|m|h|d)?\s*$/.test(s)) return 0;
  let ms: number;
  try {
    ms = parseDuration(s);
  } catch {
    throw new UsageError(`--token-review-cache "${s}" must be 0 or a duration such as 5s or 1m`);
  }
  if (ms > MAX_TOKEN_REVIEW_CACHE_MS)
    throw new UsageError(
      `--token-review-cache "${s}" is longer than ${MAX_TOKEN_REVIEW_CACHE_MS / 60_000} min: a deleted pod's token would be accepted that long`,
    );
  return ms;
}

/** "auto" → one worker per available core (at most 16); otherwise 1..64. */
export function parseWorkers(s: string): number {
  if (s === 'auto') return Math.min(availableParallelism(), 16);
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1 || n > 64)
    throw new UsageError(`--workers must be "auto" or an integer from 1 to 64, not "${s}"`);
  return n;
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** A memory size: a whole number of bytes, or of KiB, MiB or GiB (e.g. 40MiB); at most 1 TiB. */
export function parseMemorySize(s: string, flag: string): number {
  const m = /^(\d{1,13})(KiB|MiB|GiB)?$/.exec(s.trim());
  const bytes = m === null ? NaN : Number(m[1]) * (SIZE_UNITS[m[2] ?? ''] ?? NaN);
  if (!(bytes >= 1 && bytes <= 1024 ** 4))
    throw UsageError.forOption(flag, `"${s}" is not a size such as 40MiB, 512KiB, 1GiB or 1048576 (bytes)`);
  return bytes;
}

/**
 * The DNS identity a Linkerd proxy expects of its identity service (`LINKERD2_PROXY_IDENTITY_SVC_NAME`):
 * `linkerd-identity.<ns>.serviceaccount.identity.<ns>.<trust-domain>`.
 */
export function identityServiceName(domain: IdentityDomain): string {
  const ns = domain.controlNamespace;
  return `linkerd-identity.${ns}.serviceaccount.identity.${ns}.${domain.trustDomain}`;
}
