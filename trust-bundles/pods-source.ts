// Lists a cluster's pods through its Kubernetes API (GET /api/v1/pods, all namespaces, page by page with
// limit/continue), each page bounded in size and time by requestBounded, the whole listing by one
// deadline, a number of pods and a number of bytes. Any failure becomes the
// cluster's 'unavailable' standing with a stable code: `rotate status` then says what it cannot know.
import { isLanyardError, systemScheduler, type Scheduler } from '../ca/index.js';
import { FetchError, PodListError } from './errors.js';
import { requestBounded } from './fetch.js';
import {
  KUBE_TOKEN_MAX_BYTES,
  kubeTlsOptions,
  loadKubeConfig,
  readText,
  type KubeConnection,
} from './kubeconfig.js';
import { parsePodListPage, type AnchorsMemo, type ClusterPods, type ProxyPod } from './pods.js';

export const POD_LIST_LIMITS = Object.freeze({
  /** pods per page (the `limit` query parameter) */
  pageSize: 500,
  /** pages read at most (500 × 200 = 100,000 pods) */
  maxPages: 200,
  /** bytes of one page at most */
  maxPageBytes: 16 * 1024 * 1024,
  /** ms for one page */
  timeoutMs: 10_000,
  /** ms for the whole listing, every page included */
  deadlineMs: 60_000,
  /** proxy pods kept at most */
  maxPods: 200_000,
  /** bytes of all pages together at most */
  maxTotalBytes: 256 * 1024 * 1024,
});

export interface PodListOptions {
  readonly pageSize?: number;
  readonly maxPages?: number;
  readonly maxPageBytes?: number;
  readonly timeoutMs?: number;
  readonly deadlineMs?: number;
  readonly maxPods?: number;
  readonly maxTotalBytes?: number;
  /** the timer of the whole listing's deadline (default: Node's timers) */
  readonly scheduler?: Scheduler;
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

/**
 * Every page of GET /api/v1/pods within one deadline for the whole listing (ERR_FETCH_FAILED past it);
 * ERR_PODS_INVALID past maxPages, maxPods or maxTotalBytes, on a continue token the server already
 * gave (a loop), or on a page that is not a PodList.
 */
export async function listProxyPods(
  cluster: string,
  conn: KubeConnection,
  options: PodListOptions = {},
): Promise<ProxyPod[]> {
  const limits = { ...POD_LIST_LIMITS, ...options };
  const ac = new AbortController();
  const cancel = (limits.scheduler ?? systemScheduler).after(limits.deadlineMs, () => {
    ac.abort();
  });
  try {
    return await listPages(cluster, conn, limits, ac.signal);
  } catch (err) {
    if (ac.signal.aborted)
      throw new FetchError(`cluster ${cluster}: the pods were not listed within ${limits.deadlineMs} ms`, {
        reason: 'timeout',
        cause: err,
      });
    throw err;
  } finally {
    cancel();
  }
}

async function listPages(
  cluster: string,
  conn: KubeConnection,
  limits: Required<Omit<PodListOptions, 'scheduler'>>,
  signal: AbortSignal,
): Promise<ProxyPod[]> {
  const invalid = (what: string): PodListError =>
    new PodListError('ERR_PODS_INVALID', `cluster ${cluster}: ${what}`);
  const token = conn.tokenFile !== undefined ? await readToken(conn.tokenFile) : conn.token;
  const pods: ProxyPod[] = [];
  const seen = new Set<string>();
  const anchorsMemo: AnchorsMemo = new Map();
  let bytes = 0;
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
      signal,
      tls: kubeTlsOptions(conn),
    });
    bytes += res.body.length;
    if (bytes > limits.maxTotalBytes)
      throw invalid(`the pod list is larger than ${limits.maxTotalBytes} bytes`);
    const parsed = parsePodListPage(cluster, res.body.toString('utf8'), anchorsMemo);
    pods.push(...parsed.pods);
    if (pods.length > limits.maxPods) throw invalid(`more than ${limits.maxPods} proxy pods`);
    if (parsed.continueToken === undefined) return pods;
    if (seen.has(parsed.continueToken)) throw invalid('the server repeated a continue token');
    seen.add(parsed.continueToken);
    cont = parsed.continueToken;
  }
  throw invalid(`more than ${limits.maxPages} pages of pods`);
}

async function readToken(path: string): Promise<string> {
  return (await readText(path, 'the kubeconfig user tokenFile', KUBE_TOKEN_MAX_BYTES)).trim();
}
