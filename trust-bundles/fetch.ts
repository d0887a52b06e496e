import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { FetchError } from './errors.js';

export { FetchError, type FetchFailure } from './errors.js';

export const FETCH_LIMITS = {
  /** largest body accepted: a bundle of thousands of anchors, or a status document, fits easily */
  maxBytes: 1024 * 1024,
  /** redirects followed, each only within the same scheme, host and port */
  maxRedirects: 3,
} as const;

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

/**
 * The one HTTP client of the bundle fetches (`certify --bundle-url`, `check`, `rotate`): GETs `url` and
 * returns its body as text when the answer is 200. Bounded in every direction a hostile or broken
 * server could push: a deadline for the whole exchange (a server trickling one byte at a time cannot
 * hold it open), a body size limit (a declared Content-Length over it is refused before reading), and
 * redirects followed only within the URL's own origin (scheme, host and port; so never from https to
 * http), at most `maxRedirects` of them. Every failure is a FetchError with a reason.
 */
export async function getBounded(url: URL, o: BoundedGetOptions): Promise<string> {
  const maxBytes = o.maxBytes ?? FETCH_LIMITS.maxBytes;
  const maxRedirects = o.maxRedirects ?? FETCH_LIMITS.maxRedirects;
  const ac = new AbortController();
  let stopped: FetchError | undefined;
  const stop = (e: FetchError): void => {
    stopped ??= e;
    ac.abort(e);
  };
  const timer = setTimeout(() => {
    stop(
      new FetchError(`GET ${url.href}: no complete answer within ${o.timeoutMs} ms`, { reason: 'timeout' }),
    );
  }, o.timeoutMs);
  const onCancel = (): void => {
    stop(new FetchError(`GET ${url.href}: cancelled`, { reason: 'cancelled' }));
  };
  o.signal?.addEventListener('abort', onCancel, { once: true });
  if (o.signal?.aborted === true) onCancel();
  try {
    let current = url;
    for (let hop = 0; ; hop++) {
      if (stopped !== undefined) throw stopped;
      const answer = await getOnce(current, { ...o, maxBytes, signal: ac.signal });
      if (answer.kind === 'body') return answer.body;
      if (hop >= maxRedirects)
        throw new FetchError(`GET ${url.href}: more than ${maxRedirects} redirects`, { reason: 'redirect' });
      let next: URL;
      try {
        next = new URL(answer.location, current);
      } catch (err) {
        throw new FetchError(`GET ${current.href} redirects to an invalid location`, {
          reason: 'redirect',
          cause: err,
        });
      }
      if (next.origin !== current.origin)
        throw new FetchError(
          `GET ${current.href} redirects to another origin (${next.origin}); not followed`,
          { reason: 'redirect' },
        );
      current = next;
    }
  } catch (err) {
    // an aborted exchange fails with why it was aborted, not with the socket error the abort caused
    throw stopped ?? err;
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onCancel);
  }
}

type Answer =
  { readonly kind: 'body'; readonly body: string } | { readonly kind: 'redirect'; readonly location: string };

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function getOnce(
  url: URL,
  o: { ca?: string | Buffer; accept?: string; maxBytes: number; signal: AbortSignal },
): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      reject(new FetchError(`${url.href} is not an http(s) URL`, { reason: 'unreachable' }));
      return;
    }
    const options: RequestOptions & { ca?: string | Buffer } = {
      method: 'GET',
      headers: { accept: o.accept ?? '*/*' },
      signal: o.signal,
      ...(url.protocol === 'https:' && o.ca !== undefined ? { ca: o.ca } : {}),
    };
    const onResponse = (res: IncomingMessage): void => {
      const status = res.statusCode ?? 0;
      if (REDIRECTS.has(status)) {
        const location = res.headers.location;
        res.destroy();
        if (location === undefined)
          reject(
            new FetchError(`GET ${url.href} answered ${status} without a Location`, { reason: 'status' }),
          );
        else resolve({ kind: 'redirect', location });
        return;
      }
      if (status !== 200) {
        res.destroy();
        reject(new FetchError(`GET ${url.href} answered HTTP ${status}`, { reason: 'status' }));
        return;
      }
      const tooLarge = (): FetchError =>
        new FetchError(`GET ${url.href}: the answer is larger than ${o.maxBytes} bytes`, {
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
        if (!over) resolve({ kind: 'body', body: Buffer.concat(chunks).toString('utf8') });
      });
      const cut = (err?: Error): void => {
        if (!over && !res.complete)
          reject(
            new FetchError(`GET ${url.href}: the connection closed before the whole answer arrived`, {
              reason: 'unreachable',
              ...(err !== undefined ? { cause: err } : {}),
            }),
          );
      };
      res.on('error', cut);
      res.on('close', () => {
        cut();
      });
    };
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, options, onResponse)
        : httpRequest(url, options, onResponse);
    req.on('error', (err: NodeJS.ErrnoException) => {
      reject(
        new FetchError(`GET ${url.href} failed: ${err.code ?? err.message}`, {
          reason: 'unreachable',
          cause: err,
        }),
      );
    });
    req.end();
  });
}
