// Lists a cluster's pods through its Kubernetes API (GET /api/v1/pods, all namespaces, page by page with
// limit/continue), each page bounded in size and time by requestBounded. Any failure becomes the
// cluster's 'unavailable' standing with a stable code: `rotate status` then says what it cannot know.
import { readFile } from 'node:fs/promises';
import { FileError, isLanyardError } from '../ca/index.js';
import { PodListError } from './errors.js';
import { requestBounded } from './fetch.js';
import { loadKubeConfig, type KubeConnection } from './kubeconfig.js';
import { parsePodListPage, type ClusterPods, type ProxyPod } from './pods.js';

export const POD_LIST_LIMITS = Object.freeze({
  /** pods per page (the `limit` query parameter) */
  pageSize: 500,
  /** pages read at most (500 × 200 = 100,000 pods) */
  maxPages: 200,
  /** bytes of one page at most */
  maxPageBytes: 16 * 1024 * 1024,
  /** ms for one page */
  timeoutMs: 10_000,
});

export interface PodListOptions {
  readonly pageSize?: number;
  readonly maxPages?: number;
  readonly maxPageBytes?: number;
  readonly timeoutMs?: number;
}

/** The proxies of the cluster `kubeconfigPath` reaches (its current context), or why they cannot be known. */
export async function listClusterPods(
  cluster: string,
  kubeconfigPath: string,
  options: PodListOptions = {},
): Promise<ClusterPods> {
  try {
    const conn = await loadKubeConfig(kubeconfigPath);
    return { kind: 'listed', pods: await listProxyPods(cluster, conn, options) };
  } catch (err) {
    if (isLanyardError(err)) return { kind: 'unavailable', code: err.code };
    throw err;
  }
}

/** Every page of GET /api/v1/pods; ERR_PODS_INVALID past maxPages or on a page that is not a PodList. */
export async function listProxyPods(
  cluster: string,
  conn: KubeConnection,
  options: PodListOptions = {},
): Promise<ProxyPod[]> {
  const limits = { ...POD_LIST_LIMITS, ...options };
  const token = conn.tokenFile !== undefined ? await readToken(conn.tokenFile) : conn.token;
  const pods: ProxyPod[] = [];
  let cont: string | undefined;
  for (let page = 0; page < limits.maxPages; page++) {
    const url = new URL(`${conn.server}/api/v1/pods`);
    url.searchParams.set('limit', String(limits.pageSize));
    if (cont !== undefined) url.searchParams.set('continue', cont);
    const res = await requestBounded(url, {
      timeoutMs: limits.timeoutMs,
      maxBytes: limits.maxPageBytes,
      headers: { accept: 'application/json' },
      bearerToken: token,
      tls: {
        ...(conn.caPem !== undefined ? { ca: conn.caPem } : {}),
        ...(conn.clientCertPem !== undefined ? { cert: conn.clientCertPem } : {}),
        ...(conn.clientKeyPem !== undefined ? { key: conn.clientKeyPem } : {}),
        ...(conn.tlsServerName !== undefined ? { servername: conn.tlsServerName } : {}),
      },
    });
    const parsed = parsePodListPage(cluster, res.body.toString('utf8'));
    pods.push(...parsed.pods);
    if (parsed.continueToken === undefined) return pods;
    cont = parsed.continueToken;
  }
  throw new PodListError(
    'ERR_PODS_INVALID',
    `cluster ${cluster}: more than ${limits.maxPages} pages of pods`,
  );
}

async function readToken(path: string): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (err) {
    throw new FileError(
      'ERR_FILE_NOT_FOUND',
      `cannot read the kubeconfig user tokenFile: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
}
