import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { testCert } from './tls-cert.js';

/**
 * Kubernetes API stand-in for GET /api/v1/pods (all namespaces): a local HTTPS server that checks the
 * caller's bearer token and answers a v1 PodList page by page, as the API server does with `limit` and
 * `continue` (metadata.continue set on every page but the last; an unknown continue token is 410 Gone,
 * a Status object). Each pod carries spec.containers[].{name, env[]}. It is not a Kubernetes
 * implementation, only enough for tests; `override` makes it answer anything at all instead.
 */
export interface PodListStandIn {
  /** https://127.0.0.1:PORT */
  readonly url: string;
  /** the stand-in's certificate, to trust as the API server CA */
  readonly caPem: string;
  readonly callerToken: string;
  /** the `limit` of each request received */
  readonly limits: readonly (string | null)[];
  /** answers with this instead: a status and body, or 'hang' (never answers) */
  override(answer: { readonly status: number; readonly body: string } | 'hang' | undefined): void;
  close(): Promise<void>;
}

export interface StandInPod {
  readonly namespace: string;
  readonly name: string;
  readonly containers: readonly {
    readonly name: string;
    readonly env?: readonly ({ name: string; value: string } | { name: string; valueFrom: unknown })[];
  }[];
}

export async function startPodListStandIn(pods: readonly StandInPod[]): Promise<PodListStandIn> {
  const cert = testCert('server');
  const callerToken = 'stand-in-pods-token';
  let overridden: { status: number; body: string } | 'hang' | undefined;
  const limits: (string | null)[] = [];
  const send = (res: ServerResponse, code: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const statusBody = (code: number, reason: string): unknown => ({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    reason,
    code,
  });
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    if (overridden === 'hang') return;
    if (overridden !== undefined) {
      res.writeHead(overridden.status, { 'content-type': 'application/json' });
      res.end(overridden.body);
      return;
    }
    const url = new URL(req.url ?? '/', 'https://stand-in');
    if (req.headers.authorization !== `Bearer ${callerToken}`) {
      send(res, 401, statusBody(401, 'Unauthorized'));
      return;
    }
    if (req.method !== 'GET' || url.pathname !== '/api/v1/pods') {
      send(res, 404, statusBody(404, 'NotFound'));
      return;
    }
    limits.push(url.searchParams.get('limit'));
    const limit = Math.max(1, Number(url.searchParams.get('limit') ?? pods.length) || pods.length);
    const cont = url.searchParams.get('continue');
    const start = cont === null ? 0 : Number(/^page-(\d+)$/.exec(cont)?.[1] ?? NaN);
    if (Number.isNaN(start)) {
      send(res, 410, statusBody(410, 'Expired'));
      return;
    }
    const end = start + limit;
    send(res, 200, {
      kind: 'PodList',
      apiVersion: 'v1',
      metadata: { resourceVersion: '1', ...(end < pods.length ? { continue: `page-${end}` } : {}) },
      items: pods.slice(start, end).map((p) => ({
        metadata: { name: p.name, namespace: p.namespace },
        spec: { containers: p.containers },
      })),
    });
  };
  const server: Server = createServer({ cert: cert.certPem, key: cert.keyPem }, handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    url: `https://127.0.0.1:${address.port}`,
    caPem: cert.certPem,
    callerToken,
    limits,
    override: (a) => {
      overridden = a;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
}
