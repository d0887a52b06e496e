import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { testCert } from './tls-cert.js';

/**
 * TokenReview API stand-in: a local HTTPS server answering
 * POST /apis/authentication.k8s.io/v1/tokenreviews the way the Kubernetes API server does —
 * it authenticates the caller (bearer token, or a client certificate when `clientCaPem` is given),
 * validates the TokenReview, intersects the requested audiences with the token's, and answers
 * 201 Created with a TokenReview whose status says whether the token is authenticated. Errors are
 * Kubernetes `Status` objects. It is not a Kubernetes implementation, only enough for tests.
 */
export interface TokenReviewStandIn {
  /** https://127.0.0.1:PORT */
  readonly url: string;
  /** the stand-in's certificate, to trust as the API server CA */
  readonly caPem: string;
  /** the bearer token the stand-in accepts from its caller */
  readonly callerToken: string;
  /** makes `token` authenticate as `username` (system:serviceaccount:ns:sa) for `audiences` */
  addToken(token: string, username: string, audiences?: readonly string[]): void;
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

export async function startTokenReviewStandIn(
  options: { readonly callerToken?: string; readonly clientCaPem?: string } = {},
): Promise<TokenReviewStandIn> {
  const cert = testCert('server');
  const callerToken = options.callerToken ?? 'stand-in-caller-token';
  const tokens = new Map<string, { username: string; audiences: readonly string[] }>();
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
          : STAND_IN_API_AUDIENCES;
      const known = tokens.get(token);
      const granted = known?.audiences.filter((a) => requested.includes(a)) ?? [];
      const out: Record<string, unknown> = {
        kind: 'TokenReview',
        apiVersion: 'authentication.k8s.io/v1',
        metadata: { creationTimestamp: null },
        spec: r.spec,
      };
      if (known === undefined) {
        out.status = {
          user: {},
          error: '[invalid bearer token, square/go-jose: error in cryptographic primitive]',
        };
      } else if (granted.length === 0) {
        out.status = {
          user: {},
          error: `[invalid bearer token, token audiences ${JSON.stringify(known.audiences)} is invalid for the target audiences ${JSON.stringify(requested)}]`,
        };
      } else {
        const ns = known.username.split(':')[2] ?? '';
        out.status = {
          authenticated: true,
          user: {
            username: known.username,
            uid: '00000000-0000-4000-8000-000000000000',
            groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
          },
          audiences: granted,
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
    addToken(token, username, audiences = ['identity.l5d.io']) {
      tokens.set(token, { username, audiences: [...audiences] });
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
