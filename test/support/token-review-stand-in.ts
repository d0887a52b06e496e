import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { systemClock, type Clock } from '../../ca/index.js';
import { testCert } from './tls-cert.js';

/**
 * TokenReview API stand-in: a local HTTPS server answering
 * POST /apis/authentication.k8s.io/v1/tokenreviews the way the Kubernetes API server does —
 * it authenticates the caller (bearer token, or a client certificate when `clientCaPem` is given),
 * validates the TokenReview, intersects the requested audiences with the token's (a token without
 * audiences, like a legacy Secret token, counts as one for the API audiences, as
 * k8s.io/kubernetes pkg/serviceaccount does), refuses an expired token or one whose pod was deleted,
 * and answers 201 Created with a TokenReview whose status says whether the token is authenticated
 * (`status.audiences` omitted when empty: the Go type has `omitempty`). Errors are Kubernetes
 * `Status` objects. It is not a Kubernetes implementation, only enough for tests.
 */
export interface TokenReviewStandIn {
  /** https://127.0.0.1:PORT */
  readonly url: string;
  /** the stand-in's certificate, to trust as the API server CA */
  readonly caPem: string;
  /** the bearer token the stand-in accepts from its caller */
  readonly callerToken: string;
  /**
   * makes `token` authenticate as `username` (system:serviceaccount:ns:sa) for `audiences` (empty:
   * a legacy token, valid for the API audiences only); until `expiresAt` when given
   */
  addToken(token: string, username: string, audiences?: readonly string[], expiresAt?: Date): void;
  /**
   * A projected service-account token as the API server's TokenRequest makes it: a compact JWS
   * (RS256 header, claims aud, exp, iat, nbf, iss, sub, kubernetes.io), registered so that reviews
   * authenticate it as `username`. The signature is random bytes: only this stand-in checks it.
   * Defaults: audience identity.l5d.io, 1 h, now from the stand-in's clock.
   */
  issueToken(
    username: string,
    o?: { readonly audiences?: readonly string[]; readonly ttlMs?: number; readonly now?: Date },
  ): string;
  /** the pod `token` is bound to was deleted: reviews of it are refused from now on */
  deletePod(token: string): void;
  /** answers every request with this status and body instead (undefined: behave normally) */
  override(answer: { readonly status: number; readonly body: string } | undefined): void;
  /** keeps new requests waiting (counted in `inFlight`) until release() */
  hold(): void;
  release(): void;
  /** TokenReview requests received, in flight now, and the most in flight at once */
  readonly requests: number;
  readonly inFlight: number;
  readonly maxInFlight: number;
  /** the last TokenReview body received */
  readonly lastReview: unknown;
  /** the Authorization header of the last request, if any */
  readonly lastAuthorization: string | undefined;
  close(): Promise<void>;
}

/** Audiences the API server assumes when a TokenReview names none (its --api-audiences). */
export const STAND_IN_API_AUDIENCES = ['https://kubernetes.default.svc.cluster.local'];

/** A compact JWT with these claims and a random signature (as RS256 would give), not registered anywhere. */
export function jwtShapedToken(
  username: string,
  o: { readonly audiences?: readonly string[]; readonly ttlMs?: number; readonly now: Date },
): string {
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const nowS = Math.floor(o.now.getTime() / 1000);
  const [, , namespace = '', name = ''] = username.split(':');
  const header = { alg: 'RS256', kid: 'stand-in-signing-key' };
  const aud = [...(o.audiences ?? ['identity.l5d.io'])];
  const claims = {
    // a legacy Secret token has no audience
    ...(aud.length > 0 ? { aud } : {}),
    exp: nowS + Math.floor((o.ttlMs ?? 3_600_000) / 1000),
    iat: nowS,
    nbf: nowS,
    iss: 'https://kubernetes.default.svc.cluster.local',
    sub: username,
    'kubernetes.io': {
      namespace,
      serviceaccount: { name, uid: randomUUID() },
      pod: { name: `${name}-0`, uid: randomUUID() },
    },
  };
  return `${b64(header)}.${b64(claims)}.${randomBytes(256).toString('base64url')}`;
}

export async function startTokenReviewStandIn(
  options: {
    readonly callerToken?: string;
    readonly clientCaPem?: string;
    /** reads `now` for token expiry (default: the system clock) */
    readonly clock?: Clock;
    /** the API server's --api-audiences (default STAND_IN_API_AUDIENCES); [] for none */
    readonly apiAudiences?: readonly string[];
    /**
     * false: an API server from before TokenReview audiences (Kubernetes < 1.13): it ignores
     * spec.audiences, authenticates every token it knows and never sets status.audiences
     */
    readonly audienceAware?: boolean;
  } = {},
): Promise<TokenReviewStandIn> {
  const cert = testCert('server');
  const callerToken = options.callerToken ?? 'stand-in-caller-token';
  const clock = options.clock ?? systemClock;
  const apiAudiences = options.apiAudiences ?? STAND_IN_API_AUDIENCES;
  const audienceAware = options.audienceAware ?? true;
  const tokens = new Map<
    string,
    { username: string; audiences: readonly string[]; expiresAtMs: number; podDeleted: boolean }
  >();
  let overridden: { status: number; body: string } | undefined;
  let holding = false;
  let held: (() => void)[] = [];
  let requests = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let lastReview: unknown;
  let lastAuthorization: string | undefined;

  function send(res: ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }
  function status(res: ServerResponse, code: number, reason: string, message: string): void {
    send(res, code, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      code,
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (req.url !== '/apis/authentication.k8s.io/v1/tokenreviews') {
      status(res, 404, 'NotFound', 'the server could not find the requested resource');
      return;
    }
    if (req.method !== 'POST') {
      status(res, 405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
      return;
    }
    lastAuthorization = req.headers.authorization;
    // an https server's sockets are TLS sockets; `authorized` says the client certificate verified
    const byCert =
      options.clientCaPem !== undefined && (req.socket as Partial<TLSSocket>).authorized === true;
    if (!byCert && req.headers.authorization !== `Bearer ${callerToken}`) {
      status(res, 401, 'Unauthorized', 'Unauthorized');
      return;
    }
    requests++;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      if (holding) await new Promise<void>((r) => held.push(r));
      if (overridden !== undefined) {
        res.writeHead(overridden.status, { 'content-type': 'application/json' });
        res.end(overridden.body);
        return;
      }
      if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
        status(res, 415, 'UnsupportedMediaType', 'the body of the request was in an unknown format');
        return;
      }
      let review: unknown;
      try {
        review = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        status(res, 400, 'BadRequest', 'the request body is not JSON');
        return;
      }
      lastReview = review;
      const r = review as {
        apiVersion?: unknown;
        kind?: unknown;
        spec?: { token?: unknown; audiences?: unknown };
      };
      if (r.apiVersion !== 'authentication.k8s.io/v1' || r.kind !== 'TokenReview') {
        status(res, 400, 'BadRequest', 'the object is not an authentication.k8s.io/v1 TokenReview');
        return;
      }
      const token = r.spec?.token;
      if (typeof token !== 'string' || token === '') {
        status(res, 400, 'BadRequest', 'token is required for TokenReview in authentication');
        return;
      }
      const requested =
        Array.isArray(r.spec?.audiences) && r.spec.audiences.length > 0
          ? (r.spec.audiences as string[])
          : [...apiAudiences];
      const known = tokens.get(token);
      // a token without audiences (legacy) stands for the API audiences
      const tokenAudiences =
        known === undefined || known.audiences.length > 0 ? known?.audiences : apiAudiences;
      const granted = audienceAware ? (tokenAudiences?.filter((a) => requested.includes(a)) ?? []) : [];
      const out: Record<string, unknown> = {
        kind: 'TokenReview',
        apiVersion: 'authentication.k8s.io/v1',
        metadata: { creationTimestamp: null },
        spec: r.spec,
      };
      const refuse = (error: string): void => {
        out.status = { user: {}, error: `[invalid bearer token, ${error}]` };
      };
      if (known === undefined) {
        refuse('square/go-jose: error in cryptographic primitive');
      } else if (clock.now().getTime() >= known.expiresAtMs) {
        refuse('square/go-jose/jwt: validation failed, token is expired (exp)');
      } else if (known.podDeleted) {
        refuse('pod not found');
      } else if (audienceAware && granted.length === 0 && apiAudiences.length > 0) {
        refuse(
          `token audiences ${JSON.stringify(tokenAudiences)} is invalid for the target audiences ${JSON.stringify(requested)}`,
        );
      } else {
        const ns = known.username.split(':')[2] ?? '';
        out.status = {
          authenticated: true,
          user: {
            username: known.username,
            uid: '00000000-0000-4000-8000-000000000000',
            groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
          },
          // omitempty: an empty list is left out
          ...(granted.length > 0 ? { audiences: granted } : {}),
        };
      }
      send(res, 201, out);
    } finally {
      inFlight--;
    }
  }

  const server: Server = createServer(
    {
      cert: cert.certPem,
      key: cert.keyPem,
      ...(options.clientCaPem !== undefined
        ? { ca: options.clientCaPem, requestCert: true, rejectUnauthorized: false }
        : {}),
    },
    (req, res) => {
      handle(req, res).catch((err: unknown) => {
        status(res, 500, 'InternalError', String(err));
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;

  const standIn: TokenReviewStandIn = {
    url: `https://127.0.0.1:${port}`,
    caPem: cert.certPem,
    callerToken,
    addToken(token, username, audiences = ['identity.l5d.io'], expiresAt) {
      tokens.set(token, {
        username,
        audiences: [...audiences],
        expiresAtMs: expiresAt?.getTime() ?? Infinity,
        podDeleted: false,
      });
    },
    issueToken(username, o = {}) {
      const now = o.now ?? clock.now();
      const ttlMs = o.ttlMs ?? 3_600_000;
      const audiences = o.audiences ?? ['identity.l5d.io'];
      const token = jwtShapedToken(username, { audiences, ttlMs, now });
      standIn.addToken(token, username, audiences, new Date(now.getTime() + ttlMs));
      return token;
    },
    deletePod(token) {
      const t = tokens.get(token);
      if (t !== undefined) t.podDeleted = true;
    },
    override(answer) {
      overridden = answer === undefined ? undefined : { ...answer };
    },
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      const h = held;
      held = [];
      for (const r of h) r();
    },
    get requests() {
      return requests;
    },
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    get lastReview() {
      return lastReview;
    },
    get lastAuthorization() {
      return lastAuthorization;
    },
    async close() {
      standIn.release();
      server.closeAllConnections();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
  return standIn;
}
