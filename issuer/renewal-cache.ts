// The renewal caches of one process: verified CSRs (issuer/certify.ts) and token successes
// (authn/caching-authenticator.ts), bounded together by one memory budget (--renewal-cache-memory).
// Entries are compact (binary keys, no Buffer or KeyObject per entry) and their size is estimated
// from their shape: a fixed cost per entry measured with --expose-gc (test/support/renewal-cache-bytes.ts,
// checked by test/issuer/renewal-cache.test.ts) plus the lengths of their strings.
import type { LeafKeyType, ParsedCsr, ServiceAccountRef, requestLeaf } from '../ca/index.js';
import { LruCache } from './lru.js';

/**
 * A verified CSR as the renewal cache keeps it: what a renewal needs and nothing else. It entered
 * the cache only after its names passed requestLeaf (one DNS name, a commonName absent, empty or equal
 * to it, nothing else) and its caller was authorized, so these fields give back exactly the names
 * the CSR holds; the key type the policy allowed when it was parsed; and, in one latin1 string, the
 * 20-byte key identifier of the canonical SPKI (the leaf's SKI) followed by that SPKI.
 */
export class CsrEntry {
  constructor(
    readonly dnsName: string,
    /** undefined, '' or dnsName (the same string then) */
    readonly commonName: string | undefined,
    readonly keyType: LeafKeyType,
    /** keyIdentifier(SPKI) (20 bytes), then the SPKI DER, as latin1 */
    readonly key: string,
  ) {}
}

/** Bytes of a key identifier (ca keyIdentifier: a SHA-1). */
const SKI_BYTES = 20;

const NONE: readonly string[] = Object.freeze([]);

/**
 * The cache entry of a CSR whose names passed requestLeaf: one DNS name, a commonName absent, empty
 * or equal to it, nothing else (undefined for any other shape, which is then not kept). Not its
 * KeyObject (≈ 3 KB of native memory each) nor its DER.
 */
export function csrEntryOf(csr: ParsedCsr & { readonly keyType: LeafKeyType }): CsrEntry | undefined {
  const dnsName = csr.dnsNames[0];
  const cn = csr.commonName;
  if (
    dnsName === undefined ||
    csr.dnsNames.length !== 1 ||
    (cn !== undefined && cn !== '' && cn !== dnsName) ||
    csr.otherSubjectAttributes +
      csr.uris.length +
      csr.ipAddresses.length +
      csr.emails.length +
      csr.otherNames >
      0
  )
    return undefined;
  if (csr.subjectKeyId.length !== SKI_BYTES) return undefined;
  const key = Buffer.concat([csr.subjectKeyId, csr.spki]).toString('latin1');
  return new CsrEntry(dnsName, cn === dnsName ? dnsName : cn, csr.keyType, key);
}

/** A cached CSR as requestLeaf reads it: the same names, the key type, SPKI and key identifier. */
export function csrOfEntry(e: CsrEntry): Parameters<typeof requestLeaf>[0] {
  const key = Buffer.from(e.key, 'latin1');
  return {
    commonName: e.commonName,
    otherSubjectAttributes: 0,
    emptyOrganizations: 0,
    dnsNames: [e.dnsName],
    uris: NONE,
    ipAddresses: NONE,
    emails: NONE,
    otherNames: 0,
    keyType: e.keyType,
    spki: key.subarray(SKI_BYTES),
    subjectKeyId: key.subarray(0, SKI_BYTES),
  };
}

/**
 * A token success: the account (with the pod the token names, when its authenticator was asked for
 * it: AuthenticatedAccount, issuer/authn), until when it may answer (epoch ms, exclusive).
 */
export interface KeptSuccess {
  readonly account: ServiceAccountRef & { readonly pod?: { readonly name: string; readonly uid?: string } };
  readonly expiresAtMs: number;
}

/**
 * Heap bytes of an entry besides its strings, measured with --expose-gc on Node 20 (V8 without
 * pointer compression; test/support/renewal-cache-bytes.ts): the entry's objects (a CsrEntry; a
 * KeptSuccess, its HeapNumber expiry and its account object) and its share of the Map's table.
 */
export const CSR_ENTRY_FIXED_BYTES = 112;
export const TOKEN_ENTRY_FIXED_BYTES = 144;

/** Heap bytes of a flat one-byte string of `length` characters (16-byte header, 8-byte aligned). */
export function stringBytes(length: number): number {
  return (16 + length + 7) & ~7;
}

export function csrEntryBytes(key: string, e: CsrEntry): number {
  const cn = e.commonName === undefined || e.commonName === e.dnsName ? 0 : stringBytes(e.commonName.length);
  return (
    CSR_ENTRY_FIXED_BYTES +
    stringBytes(key.length) +
    stringBytes(e.dnsName.length) +
    cn +
    stringBytes(e.key.length)
  );
}

/** Heap bytes of an account's pod object (two fields), besides its strings: estimated, not measured. */
export const POD_FIXED_BYTES = 40;

export function tokenEntryBytes(key: string, e: KeptSuccess): number {
  const pod = e.account.pod;
  return (
    TOKEN_ENTRY_FIXED_BYTES +
    stringBytes(key.length) +
    stringBytes(e.account.namespace.length) +
    stringBytes(e.account.name.length) +
    (pod === undefined
      ? 0
      : POD_FIXED_BYTES +
        stringBytes(pod.name.length) +
        (pod.uid !== undefined ? stringBytes(pod.uid.length) : 0))
  );
}

/**
 * Estimated bytes of what one pod keeps with typical Linkerd names (a 10-character namespace and
 * service account, a 67-character DNS name, a P-256 key): a CSR entry and a token entry. Measured:
 * ≈ 360–385 and ≈ 245–260 bytes (10,000 to 100,000 entries).
 */
export const TYPICAL_POD_BYTES = { csr: 376, token: 256 } as const;

/**
 * Default --renewal-cache-memory, per process: 40 MiB, ≈ 66,000 pods of typical names (632 bytes
 * each), a 50,000-pod cluster with a third to spare.
 */
export const DEFAULT_RENEWAL_CACHE_BYTES = 40 * 1024 * 1024;

/** The budget's split: each cache its share of a typical pod's pair of entries. */
export function renewalCacheBudgets(totalBytes: number): { csr: number; token: number } {
  const csr = Math.floor(
    (totalBytes * TYPICAL_POD_BYTES.csr) / (TYPICAL_POD_BYTES.csr + TYPICAL_POD_BYTES.token),
  );
  return { csr: Math.max(1, csr), token: Math.max(1, totalBytes - csr) };
}

/** What a RenewalCache tells the worker that shares it (renewal-cache-sharing.ts). */
export interface RenewalCacheListener<V> {
  /** an entry this process verified was kept; `vouchedBy`: what vouched for it (RenewalCache.keep) */
  kept(key: string, value: V, vouchedBy: string | undefined): void;
  /** this process forgot everything (clearAt), at `atMs` */
  cleared(atMs: number): void;
}

/**
 * An LRU of one renewal cache, with what the metrics read (lookups by result; size, bytes and
 * evictions from LruCache) and the hooks the cluster worker shares entries through: `keep` and
 * `clearAt` are this process's own doings (told to the listener), `set` and `forgetBefore` what
 * other workers told it.
 */
export class RenewalCache<V> extends LruCache<string, V> {
  hits = 0;
  misses = 0;
  /** when the cache was last cleared, epoch ms: entries verified before it are not taken from other workers */
  clearedAtMs = -Infinity;
  /**
   * bumped by every clear (clearAt, forgetBefore): a verification in progress across one, this
   * process's clear or another worker's, keeps nothing (authn/caching-authenticator.ts)
   */
  generation = 0;
  /**
   * Token successes: whether one that another worker verified, vouched for by `by` (the fingerprint
   * of the JWKS key its signature verified with; undefined: no key, TokenReview), may be taken here.
   * Set by the authenticator that answers from this cache; by default none is.
   */
  vouches: (by: string | undefined) => boolean = vouchesForNothing;
  private listener: RenewalCacheListener<V> | undefined;

  /**
   * an entry this process verified (`vouchedBy`: see vouches): kept, and told to the listener (other
   * workers); false, and not told, when set() refused it
   */
  keep(key: string, value: V, vouchedBy?: string): boolean {
    if (!this.set(key, value)) return false;
    this.listener?.kept(key, value, vouchedBy);
    return true;
  }
  listen(listener: RenewalCacheListener<V>): void {
    this.listener = listener;
  }
  /** forgets everything (this process's decision, told to the listener); `nowMs`: when */
  clearAt(nowMs: number): void {
    this.forgetBefore(nowMs);
    this.listener?.cleared(nowMs);
  }
  /** forgets everything, and any entry verified before `atMs` that arrives later; verifications in progress keep nothing */
  forgetBefore(atMs: number): void {
    this.clear();
    this.generation++;
    this.clearedAtMs = Math.max(this.clearedAtMs, atMs);
  }
}

const vouchesForNothing = (): boolean => false;

/** The renewal caches of one process, sharing one memory budget. */
export interface RenewalCaches {
  readonly csr: RenewalCache<CsrEntry>;
  readonly token: RenewalCache<KeptSuccess>;
}

export function createRenewalCaches(totalBytes: number = DEFAULT_RENEWAL_CACHE_BYTES): RenewalCaches {
  const budget = renewalCacheBudgets(totalBytes);
  return {
    csr: new RenewalCache({ maxBytes: budget.csr, sizeOf: csrEntryBytes }),
    token: new RenewalCache({ maxBytes: budget.token, sizeOf: tokenEntryBytes }),
  };
}

/** A CSR cache of `maxEntries` entries (library callers that give a count), else of the default budget's share. */
export function createCsrCache(maxEntries: number | undefined): RenewalCache<CsrEntry> {
  return maxEntries !== undefined
    ? new RenewalCache({ maxEntries, sizeOf: csrEntryBytes })
    : createRenewalCaches().csr;
}
