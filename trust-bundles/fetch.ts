import {
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type RequestOptions,
} from 'node:http';
import { request as httpsRequest, type Agent as HttpsAgent } from 'node:https';
import { FetchError } from './errors.js';

export { FetchError, type FetchFailure } from './errors.js';

export const FETCH_LIMITS = {
  /** largest body accepted: a bundle of thousands of anchors, or a status document, fits easily */
  maxBytes: 1024 * 1024,
  /** redirects followed, each only within the same scheme, host and port */
  maxRedirects: 3,
} as const;

/** TLS settings of an https request (ignored for http). */
export interface BoundedTls {
  /** trust these CA certificates (PEM) instead of the system roots */
  readonly ca?: string | Buffer;
  /** client certificate and key (PEM), for mutual TLS */
  readonly cert?: string;
  readonly key?: string;
  /** the server name to verify instead of the URL's host */
  readonly servername?: string;
}

export type HttpMethod = 'GET' | 'POST';

export interface BoundedRequestOptions {
  /** default GET */
  readonly method?: HttpMethod;
  readonly headers?: Readonly<Record<string, string>>;
  /** sent as `Authorization: Bearer <token>` when given */
  readonly bearerToken?: string | undefined;
  /** the request body (its Content-Length is set) */
  readonly body?: string | Buffer;
  /** for the whole exchange, ms: connecting, every redirect, the headers and the whole body */
  readonly timeoutMs: number;
  /** largest body accepted, bytes (default FETCH_LIMITS.maxBytes) */
  readonly maxBytes?: number;
  /**
   * redirects followed, each only to the same origin; more fail with reason 'redirect'. Undefined: a
   * redirect is an answer like any other (see acceptStatus)
   */
  readonly maxRedirects?: number;
  /** the statuses whose answer is read and returned; others fail with reason 'status'. Default: 200 */
  readonly acceptStatus?: (status: number) => boolean;
  readonly tls?: BoundedTls;
  /** an https agent (keep-alive, its own TLS settings) for an https URL */
  readonly agent?: HttpsAgent;
  /** aborts the exchange (reason 'cancelled') */
  readonly signal?: AbortSignal;
}

/** An answer read within the limits. */
export interface BoundedResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/**
 * The one bounded HTTP client of Lanyard: the bundle fetches (`certify --bundle-url`, `check`,
 * `rotate`), the JWKS fetch and the TokenReview requests. Bounded in every direction a hostile or
 * broken server could push: a deadline for the whole exchange (a server trickling one byte at a time
 * cannot hold it open), a body size limit (a declared Content-Length over it is refused before
 * reading), and redirects followed only within the URL's own origin (scheme, host and port; so never
 * from https to http), at most `maxRedirects` of them. Every failure is a FetchError with a reason;
 * its message may name the URL and the socket error, so callers that answer remote parties map it to
 * their own error and keep the message for their log.
 */
export async function requestBounded(url: URL, o: BoundedRequestOptions): Promise<BoundedResponse> {
  const method = o.method ?? 'GET';
  const ac = new AbortController();
  let stopped: FetchError | undefined;
  const stop = (e: FetchError): void => {
    stopped ??= e;
    ac.abort(e);
  };
  const timer = setTimeout(() => {
    stop(
      new FetchError(`${method} ${url.href}: no complete answer within ${o.timeoutMs} ms`, {
        reason: 'timeout',
      }),
    );
  }, o.timeoutMs);
  const onCancel = (): void => {
    stop(new FetchError(`${method} ${url.href}: cancelled`, { reason: 'cancelled' }));
  };
  o.signal?.addEventListener('abort', onCancel, { once: true });
  if (o.signal?.aborted === true) onCancel();
  try {
    return await followRedirects(url, method, o, ac.signal, () => stopped);
  } catch (err) {
    // an aborted exchange fails with why it was aborted, not with the socket error the abort caused
    throw stopped ?? err;
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onCancel);
  }
}

export interface BoundedGetOptions {
  /** for the whole exchange, ms: connecting, every redirect, the headers and the whole body */
  readonly timeoutMs: number;
  /** largest body accepted, bytes (default FETCH_LIMITS.maxBytes) */
  readonly maxBytes?: number;
  /** redirects followed, each only to the same origin (default FETCH_LIMITS.maxRedirects) */
  readonly maxRedirects?: number;
  /** https only: trust these CA certificates (PEM) instead of the system roots */
  readonly ca?: string | Buffer;
  /** the Accept header */
  readonly accept?: string;
  /** aborts the exchange (reason 'cancelled') */
  readonly signal?: AbortSignal;
}

/** GETs `url` with requestBounded and returns its body as text when the answer is 200. */
export async function getBounded(url: URL, o: BoundedGetOptions): Promise<string> {
  const res = await requestBounded(url, {
    timeoutMs: o.timeoutMs,
    maxRedirects: o.maxRedirects ?? FETCH_LIMITS.maxRedirects,
    headers: { accept: o.accept ?? '*/*' },
    ...(o.maxBytes !== undefined ? { maxBytes: o.maxBytes } : {}),
    ...(o.ca !== undefined ? { tls: { ca: o.ca } } : {}),
    ...(o.signal !== undefined ? { signal: o.signal } : {}),
  });
  return res.body.toString('utf8');
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** One exchange after another while the answers redirect within the origin (when allowed). */
async function followRedirects(
  url: URL,
  method: HttpMethod,
  o: BoundedRequestOptions,
  signal: AbortSignal,
  stopped: () => FetchError | undefined,
): Promise<BoundedResponse> {
  const maxRedirects = o.maxRedirects;
  const exchange = { ...o, method, maxBytes: o.maxBytes ?? FETCH_LIMITS.maxBytes, signal };
  let current = url;
  for (let hop = 0; ; hop++) {
    const before = stopped();
    if (before !== undefined) throw before;
    const answer = await exchangeOnce(current, exchange);
    if (answer.kind === 'response') return answer.response;
    if (maxRedirects === undefined || hop >= maxRedirects)
      throw new FetchError(`${method} ${url.href}: more than ${maxRedirects ?? 0} redirects`, {
        reason: 'redirect',
      });
    current = sameOriginTarget(current, answer.location, method);
  }
}

/** The URL a redirect points to, when it stays within the origin of `from`. */
function sameOriginTarget(from: URL, location: string, method: HttpMethod): URL {
  let next: URL;
  try {
    next = new URL(location, from);
  } catch (err) {
    throw new FetchError(`${method} ${from.href} redirects to an invalid location`, {
      reason: 'redirect',
      cause: err,
    });
  }
  if (next.origin !== from.origin)
    throw new FetchError(
      `${method} ${from.href} redirects to another origin (${next.origin}); not followed`,
      {
        reason: 'redirect',
      },
    );
  return next;
}

type Answer =
  | { readonly kind: 'response'; readonly response: BoundedResponse }
  | { readonly kind: 'redirect'; readonly location: string };

interface Exchange extends BoundedRequestOptions {
  readonly method: HttpMethod;
  readonly maxBytes: number;
  readonly signal: AbortSignal;
}

function exchangeOnce(url: URL, o: Exchange): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      reject(new FetchError(`${url.href} is not an http(s) URL`, { reason: 'unreachable' }));
      return;
    }
    const https = url.protocol === 'https:';
    const options: RequestOptions & BoundedTls = {
      method: o.method,
      headers: requestHeaders(o),
      signal: o.signal,
      ...(https ? (o.tls ?? {}) : {}),
      ...(https && o.agent !== undefined ? { agent: o.agent } : {}),
    };
    const onResponse = (res: IncomingMessage): void => {
      answer(res, url, o, resolve, reject);
    };
    const req = https ? httpsRequest(url, options, onResponse) : httpRequest(url, options, onResponse);
    req.on('error', (err: NodeJS.ErrnoException) => {
      reject(
        new FetchError(`${o.method} ${url.href} failed: ${err.code ?? err.message}`, {
          reason: 'unreachable',
          cause: err,
        }),
      );
    });
    req.end(o.body);
  });
}

function requestHeaders(o: Exchange): Record<string, string | number> {
  return {
    ...o.headers,
    ...(o.bearerToken !== undefined ? { authorization: `Bearer ${o.bearerToken}` } : {}),
    ...(o.body !== undefined ? { 'content-length': Buffer.byteLength(o.body) } : {}),
  };
}

/** Settles one exchange from its response: a redirect, a status refused, or the body read within maxBytes. */
function answer(
  res: IncomingMessage,
  url: URL,
  o: Exchange,
  resolve: (a: Answer) => void,
  reject: (e: FetchError) => void,
): void {
  const status = res.statusCode ?? 0;
  if (o.maxRedirects !== undefined && REDIRECTS.has(status)) {
    const location = res.headers.location;
    res.destroy();
    if (location === undefined)
      reject(
        new FetchError(`${o.method} ${url.href} answered ${status} without a Location`, { reason: 'status' }),
      );
    else resolve({ kind: 'redirect', location });
    return;
  }
  if (!(o.acceptStatus ?? isOk)(status)) {
    res.destroy();
    reject(new FetchError(`${o.method} ${url.href} answered HTTP ${status}`, { reason: 'status' }));
    return;
  }
  readBody(res, url, o).then((body) => {
    resolve({ kind: 'response', response: { status, headers: res.headers, body } });
  }, reject);
}

const isOk = (status: number): boolean => status === 200;

/** The whole body, at most `maxBytes` (a larger declared Content-Length is refused before reading). */
function readBody(res: IncomingMessage, url: URL, o: Exchange): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const tooLarge = (): FetchError =>
      new FetchError(`${o.method} ${url.href}: the answer is larger than ${o.maxBytes} bytes`, {
        reason: 'too-large',
      });
    const declared = Number(res.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > o.maxBytes) {
      res.destroy();
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    res.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > o.maxBytes) {
        over = true;
        res.destroy();
        reject(tooLarge());
      } else chunks.push(chunk);
    });
    res.on('end', () => {
      if (!over) resolve(Buffer.concat(chunks));
    });
    const cut = (err?: Error): void => {
      if (!over && !res.complete)
        reject(
          new FetchError(`${o.method} ${url.href}: the connection closed before the whole answer arrived`, {
            reason: 'unreachable',
            ...(err !== undefined ? { cause: err } : {}),
          }),
        );
    };
    res.on('error', cut);
    res.on('close', () => {
      cut();
    });
  });
}
