import type { Logger } from 'pino';
import { UsageError, type Clock } from '../../ca/index.js';
import type { AuthenticatedAccount } from './authenticator.js';
import { createFileVersionTracker, lookAtContents } from '../file-watch.js';
import { AuthenticatorUnavailableError, InvalidTokenError } from './errors.js';
import { FetchError, requestBounded, type BoundedResponse } from '../../trust-bundles/index.js';
import { callerPodOf, parseServiceAccountUsername, quote, redactToken } from './common.js';
import { apiServerAgent, type KubeConnection } from '../../trust-bundles/index.js';

/** The API path TokenReviews are created at, below the server URL. */
export const TOKEN_REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
/** Largest TokenReview response read, in bytes. */
export const MAX_TOKEN_REVIEW_RESPONSE_BYTES = 256 * 1024;

/** Sends TokenReviews to one API server (a keep-alive agent; its own bearer token re-read from a file). */
export interface TokenReviewClient {
  /**
   * POSTs a TokenReview of `token` for `audience`; resolves with the parsed answer (a 2xx JSON body),
   * rejects with AuthenticatorUnavailableError (network, timeout, `signal`, non-2xx, not JSON)
   */
  review(token: string, signal: AbortSignal): Promise<unknown>;
  /** requests sent so far */
  readonly requests: number;
  close(): void;
}

export function createTokenReviewClient(o: {
  readonly connection: KubeConnection;
  readonly clock: Clock;
  readonly audience: string;
  readonly maxSockets: number;
  readonly timeoutMs: number;
  readonly tokenFileRefreshMs: number;
  readonly logger?: Logger | undefined;
}): TokenReviewClient {
  const conn = o.connection;
  const url = tokenReviewUrl(conn);
  const { clock, audience, timeoutMs, tokenFileRefreshMs, logger } = o;
  const agent = apiServerAgent(conn, o.maxSockets);
  let bearer: string | undefined = conn.token;
  // the token file on the one file-watching mechanism, looked at on use
  const tokenFile = createFileVersionTracker({ clock, intervalMs: tokenFileRefreshMs });
  let requests = 0;

  /** The bearer token for the API server; a token file is re-read at most every tokenFileRefreshMs. */
  async function callerToken(): Promise<string | undefined> {
    if (conn.tokenFile === undefined) return conn.token;
    if (tokenFile.due()) {
      const look = await lookAtContents([conn.tokenFile]);
      if (look.ok) {
        if (tokenFile.decide(look) === 'changed') {
          bearer = (look.value[0] ?? '').trim();
          tokenFile.settle(look.fingerprint, 'accepted');
        }
        tokenFile.looked();
      } else {
        const err = look.error;
        if (bearer === undefined) {
          throw new AuthenticatorUnavailableError(
            `cannot read the API server token file ${conn.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
            { reason: 'credentials' },
          );
        }
        logger?.warn(
          { event: 'token_file_unreadable', file: conn.tokenFile, err: (err as Error).message },
          'keeping the API server token read before',
        );
        tokenFile.looked();
      }
    }
    return bearer;
  }

  async function review(token: string, signal: AbortSignal): Promise<unknown> {
    const auth = await callerToken();
    const body = JSON.stringify({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token, audiences: [audience] },
    });
    requests++;
    let res: BoundedResponse;
    try {
      res = await requestBounded(url, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        bearerToken: auth !== '' ? auth : undefined,
        agent,
        timeoutMs,
        maxBytes: MAX_TOKEN_REVIEW_RESPONSE_BYTES,
        acceptStatus: () => true,
        signal,
      });
    } catch (err) {
      throw requestFailed(err, token, signal);
    }
    return answerOf(res, token);
  }

  return {
    review,
    get requests() {
      return requests;
    },
    close() {
      agent.destroy();
    },
  };
}

/** The TokenReview URL below the API server's; a server that is not an https URL is refused. */
function tokenReviewUrl(conn: KubeConnection): URL {
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
  return url;
}

/** A request that got no answer: cancelled, timed out or unreachable (the message for the log only). */
function requestFailed(err: unknown, token: string, signal: AbortSignal): AuthenticatorUnavailableError {
  return new AuthenticatorUnavailableError(redactToken((err as Error).message, token), {
    reason: signal.aborted
      ? 'cancelled'
      : err instanceof FetchError && err.reason === 'timeout'
        ? 'timeout'
        : 'unreachable',
  });
}

/** The parsed body of a 2xx answer; other statuses and bodies that are not JSON are unavailability. */
function answerOf(res: BoundedResponse, token: string): unknown {
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

/**
 * The service account of a TokenReview answer for `audience`: InvalidTokenError when it is not one
 * (not authenticated, not a service account, `audience` not in status.audiences),
 * AuthenticatorUnavailableError when the answer is malformed. With `callerPod`, the pod of
 * `status.user.extra` (`authentication.kubernetes.io/pod-name` and `pod-uid`) too, when it names one.
 */
export function interpretTokenReview(
  answer: unknown,
  token: string,
  audience: string,
  callerPod = false,
): AuthenticatedAccount {
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
  const pod = callerPod ? podOfExtra((user as { extra?: unknown }).extra) : undefined;
  return pod !== undefined ? Object.freeze({ ...account, pod }) : account;
}

/** The pod of a TokenReview's user.extra (each value a list of strings: one is taken, not several). */
function podOfExtra(extra: unknown): AuthenticatedAccount['pod'] {
  if (typeof extra !== 'object' || extra === null) return undefined;
  const one = (key: string): unknown => {
    const v = (extra as Record<string, unknown>)[key];
    return Array.isArray(v) && v.length === 1 ? v[0] : undefined;
  };
  return callerPodOf(
    one('authentication.kubernetes.io/pod-name'),
    one('authentication.kubernetes.io/pod-uid'),
  );
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
