import { createServer } from 'node:https';
import { createServer as createTcpServer } from 'node:net';
import { testCert } from './tls-cert.js';

/** A local HTTPS server publishing a JWKS at /openid/v1/jwks, like an API server's discovery endpoint. */
export interface JwksServer {
  /** https://127.0.0.1:PORT/openid/v1/jwks */
  readonly url: string;
  /** the server's certificate, to trust as its CA */
  readonly caPem: string;
  /** GET requests served so far */
  readonly hits: number;
  /** what the next requests get: a JWKS object (200), or a status and raw body; with extra headers */
  serve(
    answer: { readonly keys: readonly object[] } | { readonly status: number; readonly body: string },
    headers?: Readonly<Record<string, string>>,
  ): void;
  /** answer 401 unless the request carries `Authorization: Bearer <token>` (undefined: no check) */
  requireBearer(token: string | undefined): void;
  /** the Authorization header of the last request */
  readonly lastAuthorization: string | undefined;
  /** leaves new requests unanswered until release() */
  hold(): void;
  release(): void;
  close(): Promise<void>;
}

export async function startJwksServer(initial: { readonly keys: readonly object[] }): Promise<JwksServer> {
  const cert = testCert('server');
  let answer: { status: number; body: string; headers: Readonly<Record<string, string>> } = {
    status: 200,
    body: JSON.stringify(initial),
    headers: {},
  };
  let hits = 0;
  let holding = false;
  let held: (() => void)[] = [];
  let bearer: string | undefined;
  let lastAuthorization: string | undefined;
  const server = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    hits++;
    lastAuthorization = req.headers.authorization;
    const reply = (): void => {
      if (bearer !== undefined && req.headers.authorization !== `Bearer ${bearer}`) {
        res.writeHead(401).end();
        return;
      }
      if (req.url !== '/openid/v1/jwks' || req.method !== 'GET') {
        res.writeHead(404).end();
        return;
      }
      res
        .writeHead(answer.status, { 'content-type': 'application/jwk-set+json', ...answer.headers })
        .end(answer.body);
    };
    if (holding) held.push(reply);
    else reply();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const s: JwksServer = {
    url: `https://127.0.0.1:${port}/openid/v1/jwks`,
    caPem: cert.certPem,
    get hits() {
      return hits;
    },
    get lastAuthorization() {
      return lastAuthorization;
    },
    requireBearer(token) {
      bearer = token;
    },
    serve(a, headers = {}) {
      answer =
        'keys' in a
          ? { status: 200, body: JSON.stringify(a), headers }
          : { status: a.status, body: a.body, headers };
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
    async close() {
      s.release();
      server.closeAllConnections();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
  return s;
}

/** A TCP port on 127.0.0.1 that nothing listens on (bound, then closed). */
export async function closedPort(): Promise<number> {
  const srv = createTcpServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) =>
    srv.close(() => {
      resolve();
    }),
  );
  return port;
}
