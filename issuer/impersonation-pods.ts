// The two reads of the Kubernetes Pod API the impersonation check makes (issuer/impersonation.ts):
// one pod (GET /api/v1/namespaces/NS/pods/NAME) and the pods of one service account on one node (GET
// /api/v1/namespaces/NS/pods?fieldSelector=spec.nodeName=NODE,spec.serviceAccountName=SA, page by
// page with limit/continue; both are selectable Pod fields).
// Every answer is read with trust-bundles' requestBounded: bounded in time (the caller's signal and
// its own timeout) and size. Failures are AuthenticatorUnavailableError (UNAVAILABLE): their messages
// name the API server and are for the issuer's log; callers get a fixed text (issuer/grpc/status.ts).
import { type Clock } from '../ca/index.js';
import { readTextFile } from '../ca/store/index.js';
import { AuthenticatorUnavailableError, type UnavailableReason } from './authn/index.js';
import {
  apiServerAgent,
  FetchError,
  KUBE_TOKEN_MAX_BYTES,
  requestBounded,
  type KubeConnection,
} from '../trust-bundles/index.js';

/** What the check needs of a pod (v1 Pod: metadata, spec, status). */
export interface PodFacts {
  readonly namespace: string | undefined;
  readonly uid: string | undefined;
  readonly serviceAccountName: string | undefined;
  /** spec.nodeName; undefined while not scheduled */
  readonly nodeName: string | undefined;
  /** status.phase: Pending, Running, Succeeded, Failed, Unknown */
  readonly phase: string | undefined;
}

export interface PodReadLimits {
  /** ms for one request (connecting, headers and the whole body) */
  readonly requestTimeoutMs: number;
  /** bytes of one pod at most */
  readonly maxPodBytes: number;
  /** pods per page of a list (the `limit` query parameter) */
  readonly pageSize: number;
  /** pages of one list read at most; more: unavailable (the answer could not be known) */
  readonly maxPages: number;
  /** bytes of one page at most */
  readonly maxPageBytes: number;
  /** requests in flight at most (keep-alive sockets to the API server) */
  readonly maxSockets: number;
  /** least time between re-reads of the connection's token file, ms */
  readonly tokenFileRefreshMs: number;
}

export interface PodReader {
  /** the pod, or undefined when the API server says 404 with a Status of reason NotFound (for a pod) */
  getPod(namespace: string, name: string, signal: AbortSignal): Promise<PodFacts | undefined>;
  /**
   * whether some pod of `namespace` on `node` running as `serviceAccount` satisfies `match` (checked
   * again: the selector is the API server's, not a promise); stops at the first that does. `node` and
   * `serviceAccount` must be DNS-1123 names (nothing to escape in a field selector).
   */
  someNodePod(
    of: { readonly namespace: string; readonly node: string; readonly serviceAccount: string },
    match: (pod: PodFacts) => boolean,
    signal: AbortSignal,
  ): Promise<boolean>;
  /** closes the keep-alive sockets */
  close(): void;
}

export function createPodReader(o: {
  readonly connection: KubeConnection;
  readonly clock: Clock;
  readonly limits: PodReadLimits;
}): PodReader {
  const { connection: conn, clock, limits } = o;
  const agent = apiServerAgent(conn, limits.maxSockets);
  const bearer = bearerSource(conn, clock, limits.tokenFileRefreshMs);

  async function get(url: URL, maxBytes: number, signal: AbortSignal, what: string) {
    const token = await bearer();
    try {
      return await requestBounded(url, {
        timeoutMs: limits.requestTimeoutMs,
        maxBytes,
        headers: { accept: 'application/json' },
        bearerToken: token,
        acceptStatus: (s) => s === 200 || s === 404 || s === 410,
        agent,
        signal,
      });
    } catch (err) {
      throw unavailable(`${what}: ${(err as Error).message}`, reasonOf(err, signal), err);
    }
  }

  return {
    async getPod(namespace, name, signal) {
      const url = new URL(`${conn.server}/api/v1/namespaces/${seg(namespace)}/pods/${seg(name)}`);
      const res = await get(url, limits.maxPodBytes, signal, 'reading the caller pod');
      if (res.status === 404) {
        if (isPodNotFound(parseJson(res.body, 'Status'))) return undefined;
        throw badAnswer('a 404 that is not a NotFound Status for a pod');
      }
      return podFacts(parseJson(res.body, 'Pod'));
    },
    async someNodePod({ namespace, node, serviceAccount }, match, signal) {
      const seen = new Set<string>();
      let cont: string | undefined;
      let restarted = false;
      for (let page = 0; page < limits.maxPages; page++) {
        const url = new URL(`${conn.server}/api/v1/namespaces/${seg(namespace)}/pods`);
        url.searchParams.set(
          'fieldSelector',
          `spec.nodeName=${node},spec.serviceAccountName=${serviceAccount}`,
        );
        url.searchParams.set('limit', String(limits.pageSize));
        if (cont !== undefined) url.searchParams.set('continue', cont);
        const res = await get(url, limits.maxPageBytes, signal, 'listing the pods on a node');
        // the API server lists a namespace that does not exist as empty: a 404 is not its answer
        if (res.status === 404) throw badAnswer('a 404 to a list of pods');
        if (res.status === 410) {
          // the continue token expired (the API server compacted its history): start over, once
          if (cont === undefined || restarted) throw badAnswer('410 Gone to a list of pods');
          restarted = true;
          seen.clear();
          cont = undefined;
          page = -1;
          continue;
        }
        const list = parseJson(res.body, 'PodList') as { items?: unknown; metadata?: { continue?: unknown } };
        if (!Array.isArray(list.items)) throw badAnswer('a PodList without items');
        if (list.items.some((item) => match(podFacts(item)))) return true;
        const next = list.metadata?.continue;
        if (typeof next !== 'string' || next === '') return false;
        if (seen.has(next)) throw badAnswer('the API server repeated a continue token');
        seen.add(next);
        cont = next;
      }
      throw unavailable(
        `more than ${limits.maxPages} pages of ${limits.pageSize} pods on one node`,
        'bad-response',
      );
    },
    close() {
      agent.destroy();
    },
  };
}

/** The Pod facts of a decoded v1 Pod (fields of the wrong type read as absent). */
function podFacts(pod: unknown): PodFacts {
  const rec = (v: unknown): Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  const p = rec(pod);
  const metadata = rec(p.metadata);
  const spec = rec(p.spec);
  return {
    namespace: str(metadata.namespace),
    uid: str(metadata.uid),
    serviceAccountName: str(spec.serviceAccountName),
    nodeName: str(spec.nodeName),
    phase: str(rec(p.status).phase),
  };
}

/** The connection's bearer token: fixed, or its file re-read at most every `refreshMs`. */
function bearerSource(
  conn: KubeConnection,
  clock: Clock,
  refreshMs: number,
): () => Promise<string | undefined> {
  const file = conn.tokenFile;
  if (file === undefined) return () => Promise.resolve(conn.token);
  let kept: { token: string; readAtMs: number } | undefined;
  return async () => {
    const nowMs = clock.now().getTime();
    if (kept !== undefined && nowMs - kept.readAtMs < refreshMs) return kept.token;
    try {
      kept = { token: (await readTextFile(file, KUBE_TOKEN_MAX_BYTES)).trim(), readAtMs: nowMs };
    } catch (err) {
      // a token read before keeps working until the file is readable again
      if (kept !== undefined) return kept.token;
      throw unavailable(
        `cannot read the API server token file: ${(err as Error).message}`,
        'credentials',
        err,
      );
    }
    return kept.token;
  };
}

const seg = (s: string): string => encodeURIComponent(s);

/**
 * Whether a decoded 404 body is the API server's "no such pod": a Status of reason NotFound whose
 * details.kind, when present, is `pods`. A 404 from anything else (a proxy, a path the server does not
 * serve) says nothing about the pod.
 */
function isPodNotFound(status: unknown): boolean {
  const st = status as { kind?: unknown; reason?: unknown; details?: { kind?: unknown } | null };
  if (st.kind !== 'Status' || st.reason !== 'NotFound') return false;
  const kind = typeof st.details === 'object' && st.details !== null ? st.details.kind : undefined;
  return kind === undefined || kind === 'pods';
}

function parseJson(body: Buffer, kind: string): unknown {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw badAnswer(`a ${kind} answer that is not JSON`);
  }
  const k = (doc as { kind?: unknown } | null)?.kind;
  if (typeof doc !== 'object' || doc === null || (k !== undefined && k !== kind))
    throw badAnswer(`an answer that is not a ${kind}`);
  return doc;
}

function reasonOf(err: unknown, signal: AbortSignal): UnavailableReason {
  if (signal.aborted) return 'cancelled';
  if (!(err instanceof FetchError)) return 'unreachable';
  if (err.reason === 'timeout') return 'timeout';
  if (err.reason === 'status') return 'refused';
  if (err.reason === 'too-large') return 'bad-response';
  return 'unreachable';
}

function badAnswer(what: string): AuthenticatorUnavailableError {
  return unavailable(`the Kubernetes API answered the pod check with ${what}`, 'bad-response');
}

function unavailable(
  message: string,
  reason: UnavailableReason,
  cause?: unknown,
): AuthenticatorUnavailableError {
  return new AuthenticatorUnavailableError(
    `impersonation check: ${message}`,
    cause !== undefined ? { reason, cause } : { reason },
  );
}
