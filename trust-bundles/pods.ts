// The running Linkerd proxies of a cluster and the trust anchors each read at start, from the Kubernetes
// PodList schema (GET /api/v1/pods): the container named linkerd-proxy, its env
// LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS (an inline `value` PEM; `valueFrom` cannot be read here).
import { parseCertificatesPem, type CertificateInfo } from '../ca/index.js';
import { PodListError } from './errors.js';

export const PROXY_CONTAINER = 'linkerd-proxy';
export const TRUST_ANCHORS_ENV = 'LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS';

export interface PodRef {
  readonly cluster: string;
  readonly namespace: string;
  readonly name: string;
}

/** One pod with a proxy: the anchors it trusts, or 'unknown' (valueFrom, or a value that does not parse). */
export interface ProxyPod extends PodRef {
  readonly anchors: readonly CertificateInfo[] | 'unknown';
}

/** What was learnt of one cluster's pods. */
export type ClusterPods =
  | { readonly kind: 'listed'; readonly pods: readonly ProxyPod[] }
  | { readonly kind: 'unavailable'; readonly code: string };

type Rec = Record<string, unknown>;
const isRecord = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * One page of a PodList: its proxy pods and the continue token (undefined on the last page). Refused
 * with ERR_PODS_INVALID when it is not JSON or not a PodList; pods and containers of unexpected shapes
 * within it are skipped or 'unknown', never a crash.
 */
export function parsePodListPage(
  cluster: string,
  text: string,
  memo: AnchorsMemo = new Map(),
): { pods: ProxyPod[]; continueToken?: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new PodListError('ERR_PODS_INVALID', `cluster ${cluster}: the pod list is not JSON`);
  }
  if (!isRecord(doc) || doc.kind !== 'PodList' || !Array.isArray(doc.items))
    throw new PodListError('ERR_PODS_INVALID', `cluster ${cluster}: the answer is not a PodList`);
  const meta = isRecord(doc.metadata) ? doc.metadata : {};
  const cont = typeof meta.continue === 'string' && meta.continue !== '' ? meta.continue : undefined;
  const pods = (doc.items as unknown[]).flatMap((item) => proxyPod(cluster, item, memo));
  return { pods, ...(cont !== undefined ? { continueToken: cont } : {}) };
}

function proxyPod(cluster: string, item: unknown, memo: AnchorsMemo): ProxyPod[] {
  if (!isRecord(item) || !isRecord(item.metadata) || !isRecord(item.spec)) return [];
  const { name, namespace } = item.metadata;
  if (typeof name !== 'string' || typeof namespace !== 'string') return [];
  const containers = Array.isArray(item.spec.containers) ? (item.spec.containers as unknown[]) : [];
  const proxy = containers.find((c) => isRecord(c) && c.name === PROXY_CONTAINER);
  if (!isRecord(proxy)) return [];
  const env = Array.isArray(proxy.env) ? (proxy.env as unknown[]) : [];
  const entry = env.find((e) => isRecord(e) && e.name === TRUST_ANCHORS_ENV);
  return [{ cluster, namespace, name, anchors: anchorsOf(entry, memo) }];
}

/**
 * The anchors parsed per env value, for one listing: the pods of a mesh share a few values, so each is
 * parsed once. Bounded: past MAX_MEMO_ENTRIES distinct values, new ones are parsed without being kept.
 */
export type AnchorsMemo = Map<string, ProxyPod['anchors']>;
export const MAX_MEMO_ENTRIES = 256;

function anchorsOf(entry: unknown, memo: AnchorsMemo): ProxyPod['anchors'] {
  if (!isRecord(entry) || typeof entry.value !== 'string') return 'unknown';
  const value = entry.value;
  const known = memo.get(value);
  if (known !== undefined) return known;
  let anchors: ProxyPod['anchors'];
  try {
    const certs = parseCertificatesPem(value, TRUST_ANCHORS_ENV);
    anchors = certs.length > 0 ? certs : 'unknown';
  } catch {
    anchors = 'unknown';
  }
  if (memo.size < MAX_MEMO_ENTRIES) memo.set(value, anchors);
  return anchors;
}
