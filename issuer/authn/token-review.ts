import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import type { Logger } from 'pino';
import {
  AuthenticatorUnavailableError,
  InvalidTokenError,
  UsageError,
  type Clock,
  type ServiceAccountRef,
} from '../../ca/index.js';
import { LruCache } from '../lru.js';
import type { AuthenticateOptions, Authenticator } from './authenticator.js';
import {
  DEFAULT_TOKEN_AUDIENCE,
  checkTokenSize,
  parseServiceAccountUsername,
  quote,
  redactToken,
  throwIfAborted,
  tokenCacheKey,
  tokenText,
  unverifiedJwtExpMs,
  type CachedAccount,
} from './common.js';
import type { KubeConnection } from './kubeconfig.js';
import { createConcurrencyLimiter } from './limiter.js';

/** The API path TokenReviews are created at, below the server URL. */
export const TOKEN_REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
/** How long a successful review is reused by default, ms (`serve --token-review-cache`). */
export const DEFAULT_TOKEN_REVIEW_CACHE_MS = 5_000;
/** Largest TokenReview response read, in bytes. */
export const MAX_TOKEN_REVIEW_RESPONSE_BYTES = 256 * 1024;

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
  /** default 10 000 entries */
  readonly cache?: { readonly maxEntries: number };
  /** least time between re-reads of connection.tokenFile, ms; default 60 000 */
  readonly tokenFileRefreshMs?: number;
  readonly logger?: Logger;
}

export interface TokenReviewAuthenticatorStats {
  /** authentications answered from the cache */
  readonly cacheHits: number;
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
 * Not authenticated, or authenticated without `audience` in status.audiences → InvalidTokenError; network failure, timeout, a non-2xx answer (401/403 too:
 * those are about Lanyard's own credentials) or a malformed answer → AuthenticatorUnavailableError.
 */
export function createTokenReviewAuthenticator(
  options: TokenReviewAuthenticatorOptions,
): TokenReviewAuthenticator {
  const conn = options.connection;
  let url: URL;
  try {
    url = new URL(`${conn.server.replace(/\/+$/, '')}${TOKEN_REVIEW_PATH}`);
  } catch {
    throw new UsageError(`API server ${JSON.stringify(conn.server)} is not a URL`);
  }
  if (url.protocol !== 'https:') throw new UsageError(`API server ${conn.server} is not https`);
  if ((conn.clientCertPem === undefined) !== (conn.clientKeyPem === undefined)) {
    throw new UsageError('a client certificate and its key go together');
  }
  if (conn.token === undefined && conn.tokenFile === undefined && conn.clientCertPem === undefined) {
    throw new UsageError('the API server connection has neither a bearer token nor a client certificate');
  }
  const audience = options.audience ?? DEFAULT_TOKEN_AUDIENCE;
  if (audience === '') throw new UsageError('the TokenReview authenticator needs a non-empty audience');
  const clock = options.clock;
  const maxConcurrent = options.maxConcurrent ?? 16;
  const timeoutMs = positive(options.timeoutMs ?? 5_000, 'timeoutMs');
  const cacheTtlMs = nonNegative(options.cacheTtlMs ?? DEFAULT_TOKEN_REVIEW_CACHE_MS, 'cacheTtlMs');
  const tokenFileRefreshMs = positive(options.tokenFileRefreshMs ?? 60_000, 'tokenFileRefreshMs');
  const logger = options.logger;
  const limiter = createConcurrencyLimiter({
    maxConcurrent,
    maxQueue: options.maxQueue ?? 1000,
    what: 'TokenReview requests',
  });
  const cache = new LruCache<string, CachedAccount>(options.cache?.maxEntries ?? 10_000);
  const agent = new Agent({
    keepAlive: true,
    maxSockets: maxConcurrent,
    ...(conn.caPem !== undefined ? { ca: conn.caPem } : {}),
    ...(conn.clientCertPem !== undefined ? { cert: conn.clientCertPem } : {}),
    ...(conn.clientKeyPem !== undefined ? { key: conn.clientKeyPem } : {}),
    ...(conn.tlsServerName !== undefined ? { servername: conn.tlsServerName } : {}),
  });
  const stats = { cacheHits: 0, requests: 0 };
  let bearer: { token: string | undefined; readAtMs: number } = { token: conn.token, readAtMs: -Infinity };
  let closed = false;

  /** The bearer token for the API server; a token file is re-read at most every tokenFileRefreshMs. */
  async function callerToken(): Promise<string | undefined> {
    if (conn.tokenFile === undefined) return conn.token;
    const nowMs = clock.now().getTime();
    if (nowMs - bearer.readAtMs >= tokenFileRefreshMs) {
      try {
        const t = (await readFile(conn.tokenFile, 'utf8')).trim();
        bearer = { token: t, readAtMs: nowMs };
      } catch (err) {
        if (bearer.token === undefined) {
          throw new AuthenticatorUnavailableError(
            `cannot read the API server token file ${conn.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
            { reason: 'credentials' },
          );
        }
        logger?.warn(
          { event: 'token_file_unreadable', file: conn.tokenFile, err: (err as Error).message },
          'keeping the API server token read before',
        );
        bearer = { token: bearer.token, readAtMs: nowMs };
      }
    }
    return bearer.token;
  }

  async function review(token: string, signal: AbortSignal): Promise<unknown> {
    const auth = await callerToken();
    const body = JSON.stringify({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token, audiences: [audience] },
    });
    stats.requests++;
    let res: { status: number; body: Buffer };
    try {
      res = await post(
        url,
        body,
        {
          'content-type': 'application/json',
          accept: 'application/json',
          ...(auth !== undefined && auth !== '' ? { authorization: `Bearer ${auth}` } : {}),
        },
        { agent, timeoutMs, signal },
      );
    } catch (err) {
      const message = redactToken((err as Error).message, token);
      throw new AuthenticatorUnavailableError(message, {
        reason: signal.aborted ? 'cancelled' : /timed out/.test(message) ? 'timeout' : 'unreachable',
      });
    }
    if (res.status === 401) {
      throw new AuthenticatorUnavailableError(
        "the API server rejected Lanyard's own credentials (HTTP 401); check the service-account token or the kubeconfig user",
        { reason: 'refused' },
      );
    }
    if (res.status === 403) {
      throw new AuthenticatorUnavailableError(
        'Lanyard may not create tokenreviews (HTTP 403); bind its service account to the system:auth-delegator ClusterRole',
        { reason: 'refused' },
      );
    }
    if (res.status < 200 || res.status > 299) {
      throw new AuthenticatorUnavailableError(
        `the API server answered the TokenReview with HTTP ${res.status}${statusMessage(res.body, token)}`,
        { reason: 'bad-response' },
      );
    }
    try {
      return JSON.parse(res.body.toString('utf8')) as unknown;
    } catch {
      throw new AuthenticatorUnavailableError(
        'the API server answered the TokenReview with something that is not JSON',
        { reason: 'bad-response' },
      );
    }
  }

  /** The service account of a TokenReview answer, or the reason it is not one. */
  function interpret(answer: unknown, token: string): ServiceAccountRef {
    const garbage = (what: string): AuthenticatorUnavailableError =>
      new AuthenticatorUnavailableError(`the API server's TokenReview answer is malformed: ${what}`, {
        reason: 'bad-response',
      });
    if (typeof answer !== 'object' || answer === null) throw garbage('not an object');
    const a = answer as { kind?: unknown; status?: unknown };
    if (a.kind !== undefined && a.kind !== 'TokenReview') throw garbage(`kind is ${quote(a.kind)}`);
    if (typeof a.status !== 'object' || a.status === null) throw garbage('no status');
    const status = a.status as {
      authenticated?: unknown;
      user?: unknown;
      audiences?: unknown;
      error?: unknown;
    };
    if (status.authenticated !== true) {
      const why =
        typeof status.error === 'string' && status.error !== ''
          ? `: ${quote(redactToken(status.error, token), 200)}`
          : '';
      throw new InvalidTokenError(`the API server did not authenticate the token${why}`, {
        reason: 'not-authenticated',
      });
    }
    const user = status.user;
    const username =
      typeof user === 'object' && user !== null ? (user as { username?: unknown }).username : undefined;
    if (typeof username !== 'string') throw garbage('authenticated without a user name');
    const account = parseServiceAccountUsername(username);
    if (account === undefined) {
      throw new InvalidTokenError(
        `the token authenticates ${quote(username)}, not system:serviceaccount:<namespace>:<name> with DNS-1123 labels`,
        { reason: 'subject' },
      );
    }
    // Kubernetes: an authenticated answer without audiences (JSON leaves the empty list out) means
    // the token is valid for the API server itself; only a listed audience binds it to ours.
    if (status.audiences !== undefined && !Array.isArray(status.audiences))
      throw garbage('status.audiences is not a list');
    if (status.audiences === undefined || !status.audiences.includes(audience)) {
      throw new InvalidTokenError(
        status.audiences === undefined || status.audiences.length === 0
          ? `the API server authenticated the token without listing the audience ${quote(audience)} (no status.audiences: the token is valid for the API server only)`
          : `the token's audiences ${quote(status.audiences)} do not include ${quote(audience)}`,
        { reason: 'audience' },
      );
    }
    return account;
  }

  return {
    name: 'token-review',
    async authenticate(token: Uint8Array, opts: AuthenticateOptions): Promise<ServiceAccountRef> {
      checkTokenSize(token);
      const key = tokenCacheKey(token);
      const hit = cache.get(key);
      if (hit !== undefined) {
        if (clock.now().getTime() < hit.expiresAtMs) {
          stats.cacheHits++;
          return hit.account;
        }
        cache.delete(key);
      }
      if (closed)
        throw new AuthenticatorUnavailableError('the TokenReview authenticator is closed', {
          reason: 'closed',
        });
      throwIfAborted(opts.signal);
      const text = tokenText(token);
      const release = await limiter.acquire(opts.signal);
      let answer: unknown;
      try {
        answer = await review(text, opts.signal);
      } finally {
        release();
      }
      const account = interpret(answer, text);
      const nowMs = clock.now().getTime();
      const expiresAtMs = Math.min(nowMs + cacheTtlMs, unverifiedJwtExpMs(text) ?? Infinity);
      if (cacheTtlMs > 0 && expiresAtMs > nowMs) cache.set(key, { account, expiresAtMs });
      return account;
    },
    stats: () => ({ ...stats, inFlight: limiter.inFlight, queued: limiter.queued }),
    close() {
      closed = true;
      cache.clear();
      agent.destroy();
      return Promise.resolve();
    },
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

/** The `message` of a Kubernetes Status body, for an error message. */
function statusMessage(body: Buffer, token: string): string {
  try {
    const s = JSON.parse(body.toString('utf8')) as { message?: unknown };
    return typeof s.message === 'string' ? `: ${quote(redactToken(s.message, token), 200)}` : '';
  } catch {
    return '';
  }
}

/**
 * POSTs `body` and collects the answer (at most MAX_TOKEN_REVIEW_RESPONSE_BYTES). Rejects with a
 * plain Error on a network error, after `timeoutMs` (ms), or when `signal` aborts.
 */
function post(
  url: URL,
  body: string,
  headers: Record<string, string>,
  o: { readonly agent: Agent; readonly timeoutMs: number; readonly signal: AbortSignal },
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | undefined, value?: { status: number; body: Buffer }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal.removeEventListener('abort', onAbort);
      if (err !== undefined) {
        req.destroy();
        reject(err);
      } else resolve(value as { status: number; body: Buffer });
    };
    const onAbort = (): void => {
      finish(new Error('the TokenReview request was cancelled by the caller'));
    };
    const req = request(
      url,
      { method: 'POST', agent: o.agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_TOKEN_REVIEW_RESPONSE_BYTES) {
            finish(
              new Error(`the TokenReview answer is larger than ${MAX_TOKEN_REVIEW_RESPONSE_BYTES} bytes`),
            );
          } else chunks.push(c);
        });
        res.on('error', (err) => {
          finish(new Error(`reading the TokenReview answer failed: ${err.message}`));
        });
        res.on('end', () => {
          finish(undefined, { status: res.statusCode ?? 0, body: Buffer.concat(chunks) });
        });
      },
    );
    const timer = setTimeout(() => {
      finish(new Error(`the TokenReview request to ${url.host} timed out after ${o.timeoutMs} ms`));
    }, o.timeoutMs);
    req.on('error', (err) => {
      finish(new Error(`the TokenReview request to ${url.host} failed: ${err.message}`));
    });
    if (o.signal.aborted) onAbort();
    else o.signal.addEventListener('abort', onAbort, { once: true });
    req.end(body);
  });
}
