// The impersonation node check of the Istio CA API (ztunnel's ImpersonatedIdentity), against the
// Kubernetes Pod API: the ImpersonationCheck of issuer/istio-certify.ts.
import {
  isDns1123Subdomain,
  systemScheduler,
  type Clock,
  type Scheduler,
  type ServiceAccountRef,
} from '../ca/index.js';
import { AuthenticatorUnavailableError, raceSignal, type AuthenticatedAccount } from './authn/index.js';
import { IstioRequestError } from './errors.js';
import { createPodReader, type PodFacts, type PodReader, type PodReadLimits } from './impersonation-pods.js';
import type { ImpersonationCheck } from './istio-certify.js';
import { LruCache } from './lru.js';
import type { KubeConnection } from '../trust-bundles/index.js';

export interface ImpersonationLimits extends PodReadLimits {
  /** ms for the whole check (both reads, every page), besides the call's own deadline */
  readonly timeoutMs: number;
  /** checks in flight at most (identical ones count once); more are refused as unavailable, never queued */
  readonly maxConcurrent: number;
  /** checks in flight at most for one caller pod uid, so that one caller cannot take every slot */
  readonly maxConcurrentPerCaller: number;
  /**
   * how long an allowed (caller pod uid, target account) is allowed again without asking, and a
   * caller pod's node is known without reading the pod, ms; 0: never
   */
  readonly cacheTtlMs: number;
  /** entries of each cache (allowed pairs, caller pods' nodes) at most, least recently used forgotten first */
  readonly cacheEntries: number;
}

export const IMPERSONATION_LIMITS: ImpersonationLimits = Object.freeze({
  timeoutMs: 5_000,
  requestTimeoutMs: 5_000,
  // the API server stores objects up to 1.5 MiB; their JSON is about as large
  maxPodBytes: 2 * 1024 * 1024,
  // the list is of the target account's pods on one node: normally one small page answers
  pageSize: 10,
  // a node runs at most a few hundred pods (kubelet's default maxPods is 110)
  maxPages: 10,
  maxPageBytes: 4 * 1024 * 1024,
  maxSockets: 16,
  maxConcurrent: 64,
  maxConcurrentPerCaller: 8,
  tokenFileRefreshMs: 60_000,
  cacheTtlMs: 15_000,
  cacheEntries: 10_000,
});

export interface ImpersonationStats {
  /** Pod API requests sent (pages counted once each check, not each page) */
  readonly requests: number;
  /** checks allowed from the cache of allowed pairs, without a request */
  readonly cacheHits: number;
  /** caller pods whose node was known without reading the pod */
  readonly callerPodCacheHits: number;
  /** checks answered (each waiter of a merged check counts) */
  readonly allowed: number;
  readonly denied: number;
  readonly unavailable: number;
  /** checks in flight (identical ones once) */
  readonly inFlight: number;
}

export interface NodeImpersonationCheck {
  readonly check: ImpersonationCheck;
  stats(): ImpersonationStats;
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
 * 3. some pod of the target's namespace on that node (a list with fieldSelector
 *    `spec.nodeName=NODE,spec.serviceAccountName=SA`, limit `pageSize`) runs as the target service account and has not
 *    finished (Succeeded, Failed). Pods being deleted count (ztunnel needs certificates for pods in
 *    graceful termination) and so do Pending ones (ztunnel asks as the pod's sandbox starts); istiod
 *    allows any pod scheduled on the node. Else ERR_IMPERSONATION_DENIED.
 *
 * An API server that cannot be reached, is too slow (`timeoutMs` for the whole check, and the call's
 * signal), answers too much or nonsense, or more than `maxConcurrent` checks at once (identical
 * checks in flight are one: later callers wait for the first's answer), or more than
 * `maxConcurrentPerCaller` for one caller pod uid:
 * ERR_AUTHENTICATOR_UNAVAILABLE (UNAVAILABLE), never a refusal. Denials name pods in their message,
 * which only the issuer's log sees (the caller gets a fixed text).
 *
 * An allowed (caller pod uid, target) pair is allowed again for `cacheTtlMs` without a request, and a
 * caller pod found valid is not read again for as long (a pod uid names one pod, on one node, forever).
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
  const allowed = createTtlCache<true>(limits, clock);
  const callerNodes = createTtlCache<string>(limits, clock);
  const runs = createMergedRuns(limits, scheduler);
  const stats = { requests: 0, cacheHits: 0, callerPodCacheHits: 0, allowed: 0, denied: 0, unavailable: 0 };

  /** the node of the caller's pod, from the cache or the API server; refused when it vouches for nothing */
  async function nodeOf(caller: AuthenticatedAccount, pod: CallerPodWithUid, signal: AbortSignal) {
    const key = `${pod.uid} ${caller.namespace}/${caller.name} ${pod.name}`;
    const kept = callerNodes.get(key);
    if (kept !== undefined) {
      stats.callerPodCacheHits++;
      return kept;
    }
    stats.requests++;
    const own = await reader.getPod(caller.namespace, pod.name, signal);
    const node = callerNode(own, pod.uid, caller.name);
    if (typeof node !== 'string') throw denied(`the caller pod ${caller.namespace}/${pod.name} ${node.why}`);
    callerNodes.set(key, node);
    return node;
  }

  async function decide(
    caller: AuthenticatedAccount,
    pod: CallerPodWithUid,
    target: ServiceAccountRef,
    signal: AbortSignal,
  ) {
    const node = await nodeOf(caller, pod, signal);
    stats.requests++;
    const found = await reader.someNodePod(
      { namespace: target.namespace, node, serviceAccount: target.name },
      (p) => isLiveTargetPod(p, target, node),
      signal,
    );
    const where = `the node of ${caller.namespace}/${pod.name} (${node})`;
    if (!found) throw denied(`no unfinished pod of ${target.namespace}/${target.name} is on ${where}`);
  }

  const check: ImpersonationCheck = async ({ caller, target, signal }) => {
    const pod = caller.pod;
    if (pod?.uid === undefined) {
      stats.denied++;
      throw denied("the caller's token names no pod uid");
    }
    const { uid } = pod;
    // the caller's account too, though a pod uid implies it: a cache hit skips the pod read that checks it
    const key = `${uid} ${caller.namespace}/${caller.name} ${pod.name} ${target.namespace}/${target.name}`;
    if (allowed.get(key) !== undefined) {
      stats.cacheHits++;
      stats.allowed++;
      return;
    }
    try {
      await runs.run(key, uid, (s) => decide(caller, { name: pod.name, uid }, target, s), signal);
    } catch (err) {
      if (err instanceof IstioRequestError) stats.denied++;
      else stats.unavailable++;
      throw err;
    }
    stats.allowed++;
    allowed.set(key, true);
  };

  return {
    check,
    stats: () => ({ ...stats, inFlight: runs.inFlight() }),
    close() {
      allowed.clear();
      callerNodes.clear();
      runs.close();
      reader.close();
    },
  };
}

/** Values kept for limits.cacheTtlMs (none when 0), at most limits.cacheEntries, least recently used dropped. */
function createTtlCache<V>(
  limits: Pick<ImpersonationLimits, 'cacheTtlMs' | 'cacheEntries'>,
  clock: Clock,
): { get(key: string): V | undefined; set(key: string, value: V): void; clear(): void } {
  const kept = new LruCache<string, { value: V; untilMs: number }>(Math.max(1, limits.cacheEntries));
  return {
    get(key) {
      const e = kept.get(key);
      if (e === undefined) return undefined;
      if (clock.now().getTime() < e.untilMs) return e.value;
      kept.delete(key);
      return undefined;
    },
    set(key, value) {
      if (limits.cacheTtlMs > 0) kept.set(key, { value, untilMs: clock.now().getTime() + limits.cacheTtlMs });
    },
    clear: () => {
      kept.clear();
    },
  };
}

type CallerPodWithUid = { readonly name: string; readonly uid: string };

/** A check in flight and the callers waiting for it. */
interface Shared {
  readonly done: Promise<void>;
  readonly cancel: AbortController;
  waiters: number;
}

/**
 * Checks in flight, merged by key: a caller whose check is already running waits for its answer
 * (each with its own signal); the work stops when its last waiter is gone. At most maxConcurrent
 * run at once, maxConcurrentPerCaller of one caller pod uid; more are refused (overloaded).
 */
function createMergedRuns(
  limits: Pick<ImpersonationLimits, 'maxConcurrent' | 'maxConcurrentPerCaller' | 'timeoutMs'>,
  scheduler: Scheduler,
): {
  run(
    key: string,
    uid: string,
    fn: (signal: AbortSignal) => Promise<void>,
    signal: AbortSignal,
  ): Promise<void>;
  inFlight(): number;
  close(): void;
} {
  const running = new Map<string, Shared>();
  const perCaller = new Map<string, number>();
  let inFlight = 0;

  function start(key: string, uid: string, fn: (signal: AbortSignal) => Promise<void>): Shared {
    const mine = perCaller.get(uid) ?? 0;
    if (inFlight >= limits.maxConcurrent || mine >= limits.maxConcurrentPerCaller)
      throw new AuthenticatorUnavailableError(
        `impersonation check: ${inFlight} checks in flight (${mine} for this caller pod) already`,
        { reason: 'overloaded' },
      );
    inFlight++;
    perCaller.set(uid, mine + 1);
    const cancel = new AbortController();
    const done = withDeadline(cancel, scheduler, limits.timeoutMs, fn).finally(() => {
      inFlight--;
      if (running.get(key) === shared) running.delete(key);
      const left = (perCaller.get(uid) ?? 1) - 1;
      if (left > 0) perCaller.set(uid, left);
      else perCaller.delete(uid);
    });
    const shared: Shared = { done, cancel, waiters: 0 };
    running.set(key, shared);
    return shared;
  }

  return {
    async run(key, uid, fn, signal) {
      const shared = running.get(key) ?? start(key, uid, fn);
      shared.waiters++;
      try {
        await raceSignal(shared.done, signal);
      } finally {
        // the last waiter gone: the work stops (a later identical check starts its own)
        if (--shared.waiters === 0) {
          shared.cancel.abort();
          if (running.get(key) === shared) running.delete(key);
        }
      }
    },
    inFlight: () => inFlight,
    close() {
      for (const shared of running.values()) shared.cancel.abort();
    },
  };
}

/**
 * `fn` with `cancel`'s signal, which also aborts after `timeoutMs`; what fails after the timeout
 * (other than a refusal) is ERR_AUTHENTICATOR_UNAVAILABLE, reason timeout.
 */
async function withDeadline(
  cancel: AbortController,
  scheduler: Scheduler,
  timeoutMs: number,
  fn: (signal: AbortSignal) => Promise<void>,
): Promise<void> {
  let timedOut = false;
  const cancelTimer = scheduler.after(timeoutMs, () => {
    timedOut = true;
    cancel.abort();
  });
  try {
    await fn(cancel.signal);
  } catch (err) {
    if (timedOut && !(err instanceof IstioRequestError))
      throw new AuthenticatorUnavailableError(
        `impersonation check: no answer from the Kubernetes API within ${timeoutMs} ms`,
        { reason: 'timeout', cause: err },
      );
    throw err;
  } finally {
    cancelTimer();
  }
}

/** The caller pod's node, or why the pod does not vouch for its caller. */
function callerNode(pod: PodFacts | undefined, uid: string, account: string): string | { why: string } {
  if (pod === undefined) return { why: 'does not exist' };
  if (pod.uid !== uid) return { why: "is not the token's (its uid differs)" };
  if (pod.serviceAccountName !== account) return { why: "does not run as the token's service account" };
  if (isFinished(pod)) return { why: `has finished (${String(pod.phase)})` };
  if (pod.nodeName === undefined) return { why: 'is not scheduled on a node' };
  // it goes into the list's fieldSelector: a node name (a DNS-1123 subdomain), nothing else
  if (!isDns1123Subdomain(pod.nodeName))
    throw new AuthenticatorUnavailableError(
      'impersonation check: the Kubernetes API answered a caller pod whose spec.nodeName is not a node name',
      { reason: 'bad-response' },
    );
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
