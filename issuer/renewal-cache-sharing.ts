// Renewal cache entries shared between the workers of `lanyard serve --workers N`. node:cluster hands
// a proxy's (re)connection to any worker, so a renewal often lands on a worker that did not see the
// first call; without sharing, each worker would verify every CSR and token once more. A worker batches
// the entries it verifies (a CSR entry; a token success with its own expiry) and sends them to the
// primary at most every 100 ms or every SHARE_MAX_BATCH entries, in one IPC message; the primary
// forwards the message to the other workers, which insert the entries into their own caches (their
// own budget and LRU) without verifying them again: the workers are one service, with one policy.
import cluster, { type Worker } from 'node:cluster';
import type { Clock, LeafKeyType, Scheduler } from '../ca/index.js';
import { CsrEntry, type KeptSuccess, type RenewalCaches } from './renewal-cache.js';

/** Longest time an entry waits before it is sent, ms. */
export const SHARE_INTERVAL_MS = 100;
/** Entries that make a batch go at once. */
export const SHARE_MAX_BATCH = 256;

/** A CSR entry on the wire: key (base64), DNS name, commonName (0: none, 1: '', 2: the DNS name), key type, SKI+SPKI (base64). */
type CsrWire = [string, string, 0 | 1 | 2, LeafKeyType, string];
/**
 * A token success on the wire: key (base64), namespace, name, expiry and when it was verified (epoch
 * ms), what vouched for it (the JWKS key's fingerprint; null: nothing, TokenReview). A success that
 * names the caller's pod is never shared: only the Linkerd authenticator's cache is the process's,
 * and it never carries a pod (createAuthenticator refuses a shared cache with callerPod).
 */
type TokenWire = [string, string, string, number, number, string | null];

/** worker → primary → the other workers */
export interface RenewalCacheBatch {
  readonly type: 'renewal-cache';
  readonly csr: CsrWire[];
  readonly token: TokenWire[];
  /** the sender cleared its token cache at this instant (epoch ms): the receivers clear theirs too */
  readonly tokenClearedAtMs?: number;
}

export interface RenewalCacheSharing {
  /** inserts what another worker sent */
  receive(batch: RenewalCacheBatch): void;
  /** sends what is pending now */
  flush(): void;
  /** stops sharing (a draining worker's clear is not sent); what is pending is dropped */
  close(): void;
}

/**
 * Shares `caches` with the other workers through `send`. Token successes keep their own expiry.
 *
 * A worker takes a token success only if it would have answered it itself: a JWT success carries the
 * fingerprint of the JWKS key that verified it, and is taken only while the receiver's own key set
 * holds that key (`caches.token.vouches`), so a worker that dropped a key never answers a token of it
 * that a worker which has not yet noticed verified. A TokenReview success (no key) is taken with its
 * own expiry, at most the sender's --token-review-cache after the API server answered it: the same
 * bound as on the worker that asked, so sharing does not lengthen how long a revoked token works.
 *
 * A clear() (a JWT signing key lost or changed) must not be undone by entries verified before it: the
 * clearing worker drops what it has pending and tells the others at once (tokenClearedAtMs); every
 * worker then clears too, keeps nothing from its own verifications in progress, and refuses token
 * entries verified (sender's clock: one host, one clock) before the latest clear it knows of.
 */
export function shareRenewalCaches(o: {
  readonly caches: RenewalCaches;
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  readonly send: (batch: RenewalCacheBatch) => void;
  readonly maxBatch?: number;
  readonly intervalMs?: number;
}): RenewalCacheSharing {
  const { caches, clock } = o;
  const maxBatch = o.maxBatch ?? SHARE_MAX_BATCH;
  let csr: CsrWire[] = [];
  let token: TokenWire[] = [];
  let cancel: (() => void) | undefined;
  let closed = false;

  function flush(clearedAtMs?: number): void {
    cancel?.();
    cancel = undefined;
    if (closed || (csr.length + token.length === 0 && clearedAtMs === undefined)) return;
    const batch: RenewalCacheBatch = {
      type: 'renewal-cache',
      csr,
      token,
      ...(clearedAtMs !== undefined ? { tokenClearedAtMs: clearedAtMs } : {}),
    };
    csr = [];
    token = [];
    o.send(batch);
  }
  function added(): void {
    if (csr.length + token.length >= maxBatch) flush();
    else cancel ??= o.scheduler.after(o.intervalMs ?? SHARE_INTERVAL_MS, flush);
  }

  caches.csr.listen({
    kept(key, e) {
      csr.push([b64(key), e.dnsName, cnCode(e), e.keyType, b64(e.key)]);
      added();
    },
    cleared: () => undefined,
  });
  caches.token.listen({
    kept(key, e, by) {
      // an entry with no expiry (a token that is not a JWT, kept without ttl: not the service's
      // authenticators, JWTs must carry exp) is not shared; JSON would make its Infinity null
      if (!Number.isFinite(e.expiresAtMs) || e.account.pod !== undefined) return;
      const { namespace, name } = e.account;
      token.push([b64(key), namespace, name, e.expiresAtMs, clock.now().getTime(), by ?? null]);
      added();
    },
    cleared(atMs) {
      token = [];
      flush(atMs);
    },
  });

  return {
    receive(batch) {
      if (closed) return;
      if (batch.tokenClearedAtMs !== undefined) caches.token.forgetBefore(batch.tokenClearedAtMs);
      for (const [key, dnsName, cn, keyType, keyBytes] of batch.csr)
        caches.csr.set(
          bin(key),
          new CsrEntry(dnsName, cn === 0 ? undefined : cn === 1 ? '' : dnsName, keyType, bin(keyBytes)),
        );
      receiveTokens(caches.token, batch.token, clock.now().getTime());
    },
    flush: () => {
      flush();
    },
    close() {
      closed = true;
      cancel?.();
      cancel = undefined;
      csr = [];
      token = [];
    },
  };
}

/** Another worker's token successes into `cache`: those it would have answered itself (see above). */
function receiveTokens(cache: RenewalCaches['token'], wire: readonly TokenWire[], now: number): void {
  for (const [key, namespace, name, expiresAtMs, keptAtMs, by] of wire) {
    if (keptAtMs <= cache.clearedAtMs || expiresAtMs <= now) continue;
    if (!cache.vouches(by ?? undefined)) continue;
    const kept: KeptSuccess = { account: Object.freeze({ namespace, name }), expiresAtMs };
    cache.set(bin(key), kept);
  }
}

/**
 * The primary: a worker's batch to every other connected worker, best effort. A worker killed
 * outright still looks connected until the primary sees its 'disconnect': the send's error (EPIPE)
 * goes to the callback, not to an 'error' event that would crash the primary.
 */
export function forwardRenewalCacheBatch(
  from: Worker,
  batch: RenewalCacheBatch,
  workers: Iterable<Worker | undefined> = Object.values(cluster.workers ?? {}),
): void {
  for (const w of workers)
    if (w !== undefined && w !== from && w.isConnected()) w.send(batch, undefined, undefined, ignore);
}

/** what a best-effort send does with its error: a batch lost is only entries verified once more */
export const ignore = (): void => undefined;

const b64 = (latin1: string): string => Buffer.from(latin1, 'latin1').toString('base64');
const bin = (base64: string): string => Buffer.from(base64, 'base64').toString('latin1');
const cnCode = (e: CsrEntry): 0 | 1 | 2 => (e.commonName === undefined ? 0 : e.commonName === '' ? 1 : 2);
