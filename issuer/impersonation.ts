// The impersonation node check of the Istio CA API (ztunnel's ImpersonatedIdentity), against the
// Kubernetes Pod API: the ImpersonationCheck of issuer/istio-certify.ts.
import {
  isDns1123Subdomain,
  systemScheduler,
  type Clock,
  type Scheduler,
  type ServiceAccountRef,
} from '../ca/index.js';
import { AuthenticatorUnavailableError, type AuthenticatedAccount } from './authn/index.js';
import { IstioRequestError } from './errors.js';
import { createPodReader, type PodFacts, type PodReader, type PodReadLimits } from './impersonation-pods.js';
import type { ImpersonationCheck } from './istio-certify.js';
import { LruCache } from './lru.js';
import type { KubeConnection } from '../trust-bundles/index.js';

export interface ImpersonationLimits extends PodReadLimits {
  /** ms for the whole check (both reads, every page), besides the call's own deadline */
  readonly timeoutMs: number;
  /** checks in flight at most; more are refused as unavailable, never queued */
  readonly maxConcurrent: number;
  /** how long an allowed (caller pod uid, target account) is allowed again without asking, ms; 0: never */
  readonly cacheTtlMs: number;
  /** allowed pairs kept at most, least recently used forgotten first */
  readonly cacheEntries: number;
}

export const IMPERSONATION_LIMITS: ImpersonationLimits = Object.freeze({
  timeoutMs: 5_000,
  requestTimeoutMs: 5_000,
  // the API server stores objects up to 1.5 MiB; their JSON is about as large
  maxPodBytes: 2 * 1024 * 1024,
  pageSize: 100,
  // a node runs at most a few hundred pods (kubelet's default maxPods is 110)
  maxPages: 10,
  maxPageBytes: 16 * 1024 * 1024,
  maxSockets: 16,
  maxConcurrent: 64,
  tokenFileRefreshMs: 60_000,
  cacheTtlMs: 15_000,
  cacheEntries: 10_000,
});

export interface NodeImpersonationCheck {
  readonly check: ImpersonationCheck;
  stats(): { readonly requests: number; readonly cacheHits: number; readonly inFlight: number };
  close(): void;
}

/**
 * Istio's rule for ImpersonatedIdentity (istiod's node authorizer), for a caller already verified and
 * already known to be a trusted node account:
 *
 * 1. the caller's token names its pod and that pod's uid (`caller.pod`), else ERR_IMPERSONATION_DENIED
 *    without a request (istiod compares the pod's uid with the token's exactly: none never matches);
 * 2. that pod (GET, in the caller's namespace) exists, has the token's uid, runs as the caller's
 *    service account, has not finished (Succeeded, Failed), and is scheduled: its spec.nodeName is
 *    the caller's node (a pod being deleted still counts: ztunnel serves it until it is gone);
 * 3. some pod of the target's namespace on that node runs as the target service account and has not
 *    finished (Succeeded, Failed). Pods being deleted count (ztunnel needs certificates for pods in
 *    graceful termination) and so do Pending ones (ztunnel asks as the pod's sandbox starts); istiod
 *    allows any pod scheduled on the node. Else ERR_IMPERSONATION_DENIED.
 *
 * An API server that cannot be reached, is too slow (`timeoutMs` for the whole check, and the call's
 * signal), answers too much or nonsense, or more than `maxConcurrent` checks at once:
 * ERR_AUTHENTICATOR_UNAVAILABLE (UNAVAILABLE), never a refusal. Denials name pods in their message,
 * which only the issuer's log sees (the caller gets a fixed text).
 *
 * An allowed (caller pod uid, target) pair is allowed again for `cacheTtlMs` without a request (a pod
 * uid names one pod, on one node, forever).
 * So a target pod that left the node is still vouched for during at most cacheTtlMs (istiod's own
 * pod informer lags too).
 */
export function createNodeImpersonationCheck(o: {
  readonly connection: KubeConnection;
  readonly clock: Clock;
  readonly limits?: Partial<ImpersonationLimits>;
  readonly scheduler?: Scheduler;
  /** injected (tests); default: one on `connection` */
  readonly reader?: PodReader;
}): NodeImpersonationCheck {
  const limits: ImpersonationLimits = { ...IMPERSONATION_LIMITS, ...o.limits };
  const { clock } = o;
  const scheduler = o.scheduler ?? systemScheduler;
  const reader = o.reader ?? createPodReader({ connection: o.connection, clock, limits });
  const allowed = new LruCache<string, number>(Math.max(1, limits.cacheEntries));
  let inFlight = 0;
  let requests = 0;
  let cacheHits = 0;

  async function decide(caller: AuthenticatedAccount, target: ServiceAccountRef, signal: AbortSignal) {
    const pod = caller.pod;
    if (pod?.uid === undefined) throw denied("the caller's token names no pod uid");
    const podLabel = `${caller.namespace}/${pod.name}`;
    requests++;
    const own = await reader.getPod(caller.namespace, pod.name, signal);
    const node = callerNode(own, pod.uid, caller.name);
    if (typeof node !== 'string') throw denied(`the caller pod ${podLabel} ${node.why}`);
    // it goes into the list's fieldSelector: a node name (a DNS-1123 subdomain), nothing else
    if (!isDns1123Subdomain(node))
      throw new AuthenticatorUnavailableError(
        'impersonation check: the Kubernetes API answered a caller pod whose spec.nodeName is not a node name',
        { reason: 'bad-response' },
      );
    requests++;
    const found = await reader.someNodePod(
      target.namespace,
      node,
      (p) => isLiveTargetPod(p, target, node),
      signal,
    );
    if (!found)
      throw denied(
        `no unfinished pod of ${target.namespace}/${target.name} is on the node of ${podLabel} (${node})`,
      );
  }

  const check: ImpersonationCheck = async ({ caller, target, signal }) => {
    const uid = caller.pod?.uid;
    if (uid === undefined) throw denied("the caller's token names no pod uid");
    // the caller's account too, though a pod uid implies it: a cache hit skips the pod read that checks it
    const key = `${uid} ${caller.namespace}/${caller.name} ${target.namespace}/${target.name}`;
    const nowMs = clock.now().getTime();
    const until = allowed.get(key);
    if (until !== undefined && nowMs < until) {
      cacheHits++;
      return;
    }
    if (until !== undefined) allowed.delete(key);
    if (inFlight >= limits.maxConcurrent)
      throw new AuthenticatorUnavailableError(
        `impersonation check: ${limits.maxConcurrent} checks are in flight already`,
        { reason: 'overloaded' },
      );
    inFlight++;
    try {
      await withDeadline(signal, scheduler, limits.timeoutMs, (s) => decide(caller, target, s));
    } finally {
      inFlight--;
    }
    if (limits.cacheTtlMs > 0) allowed.set(key, clock.now().getTime() + limits.cacheTtlMs);
  };

  return {
    check,
    stats: () => ({ requests, cacheHits, inFlight }),
    close() {
      allowed.clear();
      reader.close();
    },
  };
}

/**
 * `fn` with a signal that aborts when `signal` does or after `timeoutMs`; what fails after the
 * timeout (other than a refusal) is ERR_AUTHENTICATOR_UNAVAILABLE, reason timeout.
 */
async function withDeadline(
  signal: AbortSignal,
  scheduler: Scheduler,
  timeoutMs: number,
  fn: (signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const deadline = new AbortController();
  const onCancel = (): void => {
    deadline.abort();
  };
  signal.addEventListener('abort', onCancel, { once: true });
  if (signal.aborted) deadline.abort();
  let timedOut = false;
  const cancelTimer = scheduler.after(timeoutMs, () => {
    timedOut = true;
    deadline.abort();
  });
  try {
    await fn(deadline.signal);
  } catch (err) {
    if (timedOut && !(err instanceof IstioRequestError))
      throw new AuthenticatorUnavailableError(
        `impersonation check: no answer from the Kubernetes API within ${timeoutMs} ms`,
        { reason: 'timeout', cause: err },
      );
    throw err;
  } finally {
    cancelTimer();
    signal.removeEventListener('abort', onCancel);
  }
}

/** The caller pod's node, or why the pod does not vouch for its caller. */
function callerNode(pod: PodFacts | undefined, uid: string, account: string): string | { why: string } {
  if (pod === undefined) return { why: 'does not exist' };
  if (pod.uid !== uid) return { why: "is not the token's (its uid differs)" };
  if (pod.serviceAccountName !== account) return { why: "does not run as the token's service account" };
  if (isFinished(pod)) return { why: `has finished (${String(pod.phase)})` };
  if (pod.nodeName === undefined) return { why: 'is not scheduled on a node' };
  return pod.nodeName;
}

/** A pod that lets the node's proxy speak for `target`: its account, on `node`, not finished. */
function isLiveTargetPod(p: PodFacts, target: ServiceAccountRef, node: string): boolean {
  return (
    p.serviceAccountName === target.name &&
    // the list is the target's namespace on the node; checked again rather than trusted
    (p.namespace === undefined || p.namespace === target.namespace) &&
    p.nodeName === node &&
    !isFinished(p)
  );
}

const isFinished = (p: PodFacts): boolean => p.phase === 'Succeeded' || p.phase === 'Failed';

function denied(message: string): IstioRequestError {
  return new IstioRequestError('ERR_IMPERSONATION_DENIED', `impersonation refused: ${message}`);
}
