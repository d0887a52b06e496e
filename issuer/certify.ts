import { createHash } from 'node:crypto';
import {
  CredentialError,
  InvalidRequestError,
  PolicyError,
  checkCsrNames,
  checkKeyAllowed,
  issueLeaf,
  parseCsrLenient,
  quoteForMessage,
  workloadIdentity,
  type Clock,
  type IdentityDomain,
  type IssuedLeaf,
  type LeafPolicy,
  type LenientCsr,
  type ParsedCsr,
  type WorkloadIdentity,
} from '../ca/index.js';
import type { Authenticator } from './authn/index.js';
import type { CredentialSource } from './credentials.js';
import type { IssuanceLedger } from './ledger.js';
import { LruCache } from './lru.js';

export interface CertifyInput {
  readonly identity: string;
  readonly token: Uint8Array;
  readonly csr: Uint8Array;
}

export interface CertifyResult {
  readonly leaf: IssuedLeaf;
  readonly identity: WorkloadIdentity;
  readonly issuerSkid: string | undefined;
}

export interface CertifierOptions {
  readonly clock: Clock;
  readonly credentials: CredentialSource;
  readonly authenticator: Authenticator;
  readonly policy: LeafPolicy;
  readonly domain: IdentityDomain;
  readonly ledger: IssuanceLedger;
  /**
   * parsed, verified CSRs kept for renewals (proxies resend the same CSR); entries. Only CSRs of
   * authenticated callers whose identity and key passed are kept.
   */
  readonly csrCacheSize?: number;
  /** for tests: called with each CSR that was parsed rather than found in the cache */
  readonly onCsrParsed?: (csr: LenientCsr) => void;
}

/** A verified CSR as the renewal cache keeps it. */
type CachedCsr = Omit<ParsedCsr, 'publicKey'>;

export type Certify = (
  input: CertifyInput,
  /** peer: the caller's transport address, for the authenticator's per-caller limits */
  opts: { signal: AbortSignal; peer?: string },
) => Promise<CertifyResult>;

/**
 * The Certify use case, as a fixed sequence: credential snapshot → request fields → CSR (parse and,
 * for a key the CA accepts, proof of possession) → CSR names → token → identity match → key type →
 * sign → verify. Each failure is a LanyardError whose code the transport maps to a status. A key the
 * CA refuses is reported only after the token and the identity passed.
 */
export function createCertifier(o: CertifierOptions): Certify {
  // Entries keep what a renewal needs (names, key type, SPKI), not the CSR's KeyObject: ≈ 3 KB of
  // native memory each, which 10,000 entries would turn into ≈ 34 MB.
  const csrCache = new LruCache<string, CachedCsr>(o.csrCacheSize ?? 10_000);

  return async function certify(input, { signal, peer }) {
    // One snapshot for the whole call: a reload meanwhile cannot mix generations.
    const cred = o.credentials.current();
    const now = o.clock.now();
    if (cred === undefined || now.getTime() >= cred.chainNotAfter.getTime()) {
      throw new CredentialError(
        'ERR_ISSUER_UNAVAILABLE',
        cred === undefined ? 'no valid issuer credential is loaded' : 'the issuer credential has expired',
      );
    }
    if (input.identity.length === 0)
      throw new InvalidRequestError('ERR_INVALID_REQUEST', 'identity is missing');
    if (input.token.length === 0) throw new InvalidRequestError('ERR_INVALID_REQUEST', 'token is missing');
    if (input.csr.length === 0)
      throw new InvalidRequestError('ERR_INVALID_REQUEST', 'certificate_signing_request is missing');
    // Renewals resend the same CSR. It enters the cache only once its caller has authenticated, so
    // unauthenticated calls cannot fill it.
    const csrKey = createHash('sha256').update(input.csr).digest('base64');
    const cached = csrCache.get(csrKey);
    const csr: LenientCsr | CachedCsr = cached ?? parseCsrLenient(input.csr, o.policy);
    if (cached === undefined) o.onCsrParsed?.(csr as LenientCsr);
    checkCsrNames(csr, input.identity);
    const account = await o.authenticator.authenticate(input.token, {
      signal,
      ...(peer !== undefined ? { peer } : {}),
    });
    const identity = workloadIdentity(o.domain, account);
    if (identity.dns !== input.identity) {
      throw new PolicyError(
        'ERR_IDENTITY_MISMATCH',
        `the token is for service account ${account.namespace}/${account.name} (${identity.dns}), not for the requested identity ${quoteForMessage(input.identity)}`,
      );
    }
    // a key refused while parsing (ERR_CSR_UNSUPPORTED_KEY, ERR_CSR_WEAK_KEY), judged only now
    if (csr.keyType === 'unsupported') throw csr.keyError;
    checkKeyAllowed(csr.keyType, o.policy);
    if (cached === undefined) {
      // eslint-disable-next-line @typescript-eslint/no-unused-vars -- the key object is left out on purpose
      const { publicKey: _verified, ...entry } = csr as ParsedCsr;
      csrCache.set(csrKey, entry);
    }
    const leaf = issueLeaf(cred, { csr, identity, policy: o.policy, now: o.clock.now() });
    o.ledger.record(leaf.anchor, leaf.notAfter);
    return { leaf, identity, issuerSkid: cred.issuerKeyIdHex };
  };
}
