import { createHash } from 'node:crypto';
import {
  CredentialError,
  InvalidRequestError,
  PolicyError,
  checkCsrNames,
  checkKeyAllowed,
  issueLeaf,
  parseCsr,
  workloadIdentity,
  type Clock,
  type IdentityDomain,
  type IssuedLeaf,
  type LeafPolicy,
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
  /** parsed, verified CSRs kept for renewals (proxies resend the same CSR); entries */
  readonly csrCacheSize?: number;
}

export type Certify = (input: CertifyInput, opts: { signal: AbortSignal }) => Promise<CertifyResult>;

/**
 * The Certify use case, as a fixed sequence: credential snapshot → request fields → CSR (parse and
 * proof of possession) → CSR names → token → identity match → key type → sign → verify. Each
 * failure is a LanyardError whose code the transport maps to a status.
 */
export function createCertifier(o: CertifierOptions): Certify {
  const csrCache = new LruCache<string, ParsedCsr>(o.csrCacheSize ?? 10_000);

  function readCsr(der: Uint8Array): ParsedCsr {
    const key = createHash('sha256').update(der).digest('base64');
    const hit = csrCache.get(key);
    if (hit !== undefined) return hit;
    const csr = parseCsr(der);
    csrCache.set(key, csr);
    return csr;
  }

  return async function certify(input, { signal }) {
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
    const csr = readCsr(input.csr);
    checkCsrNames(csr, input.identity);
    const account = await o.authenticator.authenticate(input.token, { signal });
    const identity = workloadIdentity(o.domain, account);
    if (identity.dns !== input.identity) {
      throw new PolicyError(
        'ERR_IDENTITY_MISMATCH',
        `the token is for service account ${account.namespace}/${account.name} (${identity.dns}), not for the requested identity ${input.identity}`,
      );
    }
    checkKeyAllowed(csr.keyType, o.policy);
    const leaf = issueLeaf(cred, { csr, identity, policy: o.policy, now: o.clock.now() });
    o.ledger.record(leaf.anchor, leaf.notAfter);
    return { leaf, identity, issuerSkid: cred.issuerKeyIdHex };
  };
}
