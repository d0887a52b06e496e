import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { testCert } from './tls-cert.js';

/**
 * Kubernetes Pod API stand-in: a local HTTPS server that checks the caller's bearer token and answers,
 * in the API server's v1 schema:
 * - GET /api/v1/pods (all namespaces) and GET /api/v1/namespaces/NS/pods: a PodList page by page, as
 *   the API server does with `limit` and `continue` (metadata.continue set on every page but the last;
 *   an unknown continue token is 410 Gone, a Status object), filtered by `fieldSelector`: comma-joined
 *   exact-match requirements on spec.nodeName and spec.serviceAccountName (the only fields served;
 *   any other is 400 BadRequest, as the API server answers a field it does not know);
 * - GET /api/v1/namespaces/NS/pods/NAME: the Pod, or 404 NotFound (a Status object with
 *   details.{name, kind: pods}); any other path: 404 with the text body `404 page not found`.
 * Each pod carries metadata.{name, namespace, uid, deletionTimestamp?}, spec.{containers[].{name,
 * env[]}, serviceAccountName, nodeName?} and status.phase. It is not a Kubernetes implementation, only
 * enough for tests; `override` makes it answer anything at all instead.
 */
export interface PodListStandIn {
  /** https://127.0.0.1:PORT */
  readonly url: string;
  /** the stand-in's certificate, to trust as the API server CA */
  readonly caPem: string;
  readonly callerToken: string;
  /** the `limit` of each list request received */
  readonly limits: readonly (string | null)[];
  /** the path and query of every request received, authorized or not */
  readonly requests: readonly string[];
  /** replaces the pods served */
  setPods(pods: readonly StandInPod[]): void;
  /**
   * answers with this instead: a status and body, or 'hang' (never answers); only the requests whose
   * path and query `when` accepts, when given
   */
  override(
    answer: { readonly status: number; readonly body: string } | 'hang' | undefined,
    when?: (pathAndQuery: string) => boolean,
  ): void;
  close(): Promise<void>;
}

export interface StandInPod {
  readonly namespace: string;
  readonly name: string;
  readonly containers: readonly {
    readonly name: string;
    readonly env?: readonly ({ name: string; value: string } | { name: string; valueFrom: unknown })[];
  }[];
  /** metadata.uid; default a fixed one derived from namespace/name */
  readonly uid?: string;
  /** spec.serviceAccountName; default "default" (as the API server's admission sets it) */
  readonly serviceAccountName?: string;
  /** spec.nodeName; absent: not scheduled */
  readonly nodeName?: string;
  /** status.phase; default Running */
  readonly phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
  /** metadata.deletionTimestamp (RFC 3339): the pod is being deleted */
  readonly deletionTimestamp?: string;
}

/** The uid the stand-in gives a pod without one. */
export function standInPodUid(p: Pick<StandInPod, 'namespace' | 'name'>): string {
  return `uid-${p.namespace}-${p.name}`;
}

/** A pod as the API server encodes it. */
function podJson(p: StandInPod): unknown {
  return {
    metadata: {
      name: p.name,
      namespace: p.namespace,
      uid: p.uid ?? standInPodUid(p),
      ...(p.deletionTimestamp !== undefined ? { deletionTimestamp: p.deletionTimestamp } : {}),
    },
    spec: {
      containers: p.containers,
      serviceAccountName: p.serviceAccountName ?? 'default',
      ...(p.nodeName !== undefined ? { nodeName: p.nodeName } : {}),
    },
    status: { phase: p.phase ?? 'Running' },
  };
}

export async function startPodListStandIn(initial: readonly StandInPod[]): Promise<PodListStandIn> {
  const cert = testCert('server');
  const callerToken = 'stand-in-pods-token';
  let pods = initial;
  let overridden: { status: number; body: string } | 'hang' | undefined;
  let overrideWhen: ((pathAndQuery: string) => boolean) | undefined;
  const limits: (string | null)[] = [];
  const requests: string[] = [];
  const send = (res: ServerResponse, code: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const statusBody = (code: number, reason: string, details?: object): unknown => ({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    reason,
    ...(details !== undefined ? { details } : {}),
    code,
  });
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    requests.push(req.url ?? '/');
    const applies = overrideWhen === undefined || overrideWhen(req.url ?? '/');
    if (overridden === 'hang' && applies) return;
    if (overridden !== undefined && overridden !== 'hang' && applies) {
      res.writeHead(overridden.status, { 'content-type': 'application/json' });
      res.end(overridden.body);
      return;
    }
    const url = new URL(req.url ?? '/', 'https://stand-in');
    if (req.headers.authorization !== `Bearer ${callerToken}`) {
      send(res, 401, statusBody(401, 'Unauthorized'));
      return;
    }
    const route = routeOf(req.method, url.pathname);
    if (route === undefined) {
      // the API server's answer to a path it does not serve: not a Status
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('404 page not found\n');
      return;
    }
    if (route.name !== undefined) {
      const pod = pods.find((p) => p.namespace === route.namespace && p.name === route.name);
      if (pod === undefined) send(res, 404, statusBody(404, 'NotFound', { name: route.name, kind: 'pods' }));
      else send(res, 200, { kind: 'Pod', apiVersion: 'v1', ...(podJson(pod) as object) });
      return;
    }
    const selected = fieldSelection(url.searchParams.get('fieldSelector'));
    if (selected === undefined) {
      send(res, 400, statusBody(400, 'BadRequest'));
      return;
    }
    const listed = pods.filter(
      (p) => (route.namespace === undefined || p.namespace === route.namespace) && selected(p),
    );
    limits.push(url.searchParams.get('limit'));
    const limit = Math.max(1, Number(url.searchParams.get('limit') ?? listed.length) || listed.length);
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
      metadata: { resourceVersion: '1', ...(end < listed.length ? { continue: `page-${end}` } : {}) },
      items: listed.slice(start, end).map(podJson),
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
    requests,
    setPods: (p) => {
      pods = p;
    },
    override: (a, when) => {
      overridden = a;
      overrideWhen = when;
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

/** Pod fields the stand-in selects on (the API server serves more: spec.restartPolicy, status.phase, ...). */
const SELECTABLE: Readonly<Record<string, (p: StandInPod) => string>> = {
  'spec.nodeName': (p) => p.nodeName ?? '',
  'spec.serviceAccountName': (p) => p.serviceAccountName ?? 'default',
};

/**
 * A `fieldSelector` as the API server reads it: comma-joined requirements `field=value`,
 * `field==value` (exact match) or `field!=value`, all of which must hold; an empty selector selects
 * everything. Undefined (400 BadRequest) for a field not served or a requirement without operator.
 */
function fieldSelection(selector: string | null): ((p: StandInPod) => boolean) | undefined {
  if (selector === null || selector === '') return () => true;
  const tests: ((p: StandInPod) => boolean)[] = [];
  for (const term of selector.split(',')) {
    const m = /^([^=!]+)(==|=|!=)(.*)$/.exec(term);
    const field = m === null ? undefined : SELECTABLE[m[1] as string];
    if (m === null || field === undefined) return undefined;
    const value = m[3] as string;
    const equal = m[2] !== '!=';
    tests.push((p) => (field(p) === value) === equal);
  }
  return (p) => tests.every((t) => t(p));
}

/** The Pod API path: the list of all pods, a namespace's list, or one pod; undefined for anything else. */
function routeOf(
  method: string | undefined,
  path: string,
): { namespace?: string; name?: string } | undefined {
  if (method !== 'GET') return undefined;
  if (path === '/api/v1/pods') return {};
  const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods(?:\/([^/]+))?$/.exec(path);
  if (m === null) return undefined;
  const namespace = decodeURIComponent(m[1] as string);
  return m[2] === undefined ? { namespace } : { namespace, name: decodeURIComponent(m[2]) };
}

/** A kubeconfig for the stand-in: its CA, its bearer token. */
export function writeStandInKubeconfig(path: string, api: PodListStandIn): void {
  const ca = Buffer.from(api.caPem).toString('base64');
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      'current-context: stand-in',
      'clusters:',
      '- name: stand-in',
      '  cluster:',
      `    server: ${api.url}`,
      `    certificate-authority-data: ${ca}`,
      'users:',
      '- name: issuer',
      '  user:',
      `    token: ${api.callerToken}`,
      'contexts:',
      '- name: stand-in',
      '  context: { cluster: stand-in, user: issuer }',
      '',
    ].join('\n'),
  );
}
