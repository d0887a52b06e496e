import { createHash } from 'node:crypto';
import {
  InvalidRequestError,
  authorizeLeaf,
  issueLeaf,
  parseCsrLenient,
  requestLeaf,
  snapshotIssuer,
  workloadIdentity,
  type AuthorizedLeafRequest,
  type Clock,
  type IdentityDomain,
  type IssuedLeaf,
  type LeafKeyType,
  type LeafPolicy,
  type LeafRequestNames,
  type LenientCsr,
  type ServiceAccountRef,
  type WorkloadIdentity,
} from '../ca/index.js';
import type { Authenticator } from './authn/index.js';
import type { CredentialSource } from './credentials.js';
import { createCsrCache, csrEntryOf, csrOfEntry, type CsrEntry, type RenewalCache } from './renewal-cache.js';

export interface CertifyInput {
  readonly identity: string;
  readonly token: Uint8Array;
  readonly csr: Uint8Array;
}

export interface CertifyResult {
  readonly leaf: IssuedLeaf;
  readonly identity: WorkloadIdentity;
  readonly issuerSkid: string | undefined;
  /** the call's one `now` (the snapshot's): what the answer's valid_until is reckoned from */
  readonly now: Date;
}

export interface CertifierOptions {
  readonly clock: Clock;
  readonly credentials: CredentialSource;
  readonly authenticator: Authenticator;
  readonly policy: LeafPolicy;
  readonly domain: IdentityDomain;
  /**
   * observes each certificate issued, before it is returned (the composition root wires the issuance
   * record here); must not throw
   */
  readonly onIssued?: (result: CertifyResult) => void;
  /**
   * parsed, verified CSRs kept for renewals (proxies resend the same CSR): the process's cache
   * (createRenewalCaches: bounded by memory, counted in the metrics, shared across workers). Only
   * CSRs of authenticated callers whose identity and key passed are kept. Default: a cache of
   * csrCacheSize entries, or of the default memory budget's share.
   */
  readonly csrCache?: RenewalCache<CsrEntry>;
  /** entries, when no csrCache is given */
  readonly csrCacheSize?: number;
  /** for tests: called with each CSR that was parsed rather than found in the cache */
  readonly onCsrParsed?: (csr: LenientCsr) => void;
}

export type Certify = (
  input: CertifyInput,
  /** peer: the caller's transport address, for the authenticator's per-caller limits */
  opts: { signal: AbortSignal; peer?: string },
) => Promise<CertifyResult>;

/** The parse stage's hand-off: the request's names checked, and where its CSR came from. */
interface ParsedRequest {
  readonly names: LeafRequestNames;
  /** the renewal cache's key for this CSR */
  readonly cacheKey: string;
  /** the CSR when it was parsed by this call rather than found in the cache */
  readonly parsed: LenientCsr<LeafKeyType> | undefined;
}

/**
 * The Certify use case, as named stages with typed hand-offs (docs/api.md, "Checks, in order"):
 *
 * 1. snapshot: one credential generation and one `now` for the whole call (IssuerSnapshot), the chain
 *    checked unexpired once;
 * 2. parse: fields present; the CSR read by the DER reader, its key judged once (a refused key is
 *    refused without verifying anything, otherwise proof of possession); the CSR's names against the
 *    requested identity (LeafRequestNames), all before the token: an unauthenticated caller costs at
 *    most one CSR signature verification before its token is verified (a forged token with a known
 *    kid costs one more);
 * 3. authorize: token → service account → identity, which must be the requested one; then the key's
 *    verdict (AuthorizedLeafRequest, which only this stage can build);
 * 4–5. issue and verify (issueLeaf): name constraints, the leaf from the template and the policy,
 *    signed, verified against the trust anchors.
 *
 * Each failure is a LanyardError whose code the transport maps to a status.
 */
export function createCertifier(o: CertifierOptions): Certify {
  const { clock, credentials, authenticator, policy, domain, onIssued, onCsrParsed } = o;
  // Renewals resend the same CSR. It enters the cache only once its caller has been authorized, so
  // unauthenticated calls cannot fill it.
  const csrCache = o.csrCache ?? createCsrCache(o.csrCacheSize);

  function parse(input: CertifyInput): ParsedRequest {
    if (input.identity.length === 0)
      throw new InvalidRequestError('ERR_INVALID_REQUEST', 'identity is missing');
    if (input.token.length === 0) throw new InvalidRequestError('ERR_INVALID_REQUEST', 'token is missing');
    if (input.csr.length === 0)
      throw new InvalidRequestError('ERR_INVALID_REQUEST', 'certificate_signing_request is missing');
    const cacheKey = createHash('sha256').update(input.csr).digest('binary');
    const cached = csrCache.get(cacheKey);
    if (cached !== undefined) {
      csrCache.hits++;
      return { names: requestLeaf(csrOfEntry(cached), input.identity), cacheKey, parsed: undefined };
    }
    csrCache.misses++;
    const parsed = parseCsrLenient(input.csr, policy);
    onCsrParsed?.(parsed);
    return { names: requestLeaf(parsed, input.identity), cacheKey, parsed };
  }

  function authorize(request: ParsedRequest, account: ServiceAccountRef): AuthorizedLeafRequest {
    const authorized = authorizeLeaf(request.names, workloadIdentity(domain, account), policy);
    const parsed = request.parsed;
    if (parsed !== undefined && parsed.keyType !== 'unsupported') {
      const entry = csrEntryOf(parsed);
      if (entry !== undefined) csrCache.keep(request.cacheKey, entry);
    }
    return authorized;
  }

  return async function certify(input, opts) {
    // 1. snapshot: the only clock and credential reads of the call
    const snapshot = snapshotIssuer(credentials.current(), clock.now());
    // 2. parse
    const request = parse(input);
    // 3. authorize: the token, then the identity it proves and the key
    const account = await authenticator.authenticate(input.token, opts);
    const authorized = authorize(request, account);
    const result: CertifyResult = {
      // 4–5. issue, verify
      leaf: issueLeaf(snapshot, authorized),
      identity: authorized.identity,
      issuerSkid: snapshot.credential.issuerKeyIdHex,
      now: snapshot.now,
    };
    onIssued?.(result);
    return result;
  };
}
