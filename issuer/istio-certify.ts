import {
  InvalidRequestError,
  ISTIO_KEY_POLICY,
  authorizeIstioLeaf,
  encodePem,
  issueLeaf,
  parseCsrLenient,
  parseSpiffeIdentity,
  requestIstioLeaf,
  snapshotIssuer,
  workloadIdentity,
  type AuthorizedLeafRequest,
  type Clock,
  type IdentityDomain,
  type IssuedLeaf,
  type IssuerCredential,
  type LeafPolicy,
  type LeafRequestNames,
  type ServiceAccountRef,
  type WorkloadIdentity,
} from '../ca/index.js';
import { InvalidTokenError, type AuthenticatedAccount, type Authenticator } from './authn/index.js';
import type { CredentialSource } from './credentials.js';
import { IstioRequestError } from './errors.js';

/** istiod's default workload certificate lifetime, used when validity_duration is 0 or negative. */
const ISTIO_DEFAULT_TTL_MS = 24 * 60 * 60 * 1000;

/** One CreateCertificate request, as the transport read it. */
export interface IstioCertifyInput {
  /** the `authorization: Bearer` token's bytes; empty when the header is absent */
  readonly token: Uint8Array;
  /** the `csr` field: PEM PKCS#10 */
  readonly csr: Uint8Array;
  /** validity_duration, seconds; ≤ 0 means the default */
  readonly validitySeconds: number;
  /** metadata `ImpersonatedIdentity` (a SPIFFE ID), when present and not empty */
  readonly impersonatedIdentity?: string | undefined;
}

export interface IstioCertifyResult {
  readonly leaf: IssuedLeaf;
  /** the identity the leaf names (the impersonated one, if any) */
  readonly identity: WorkloadIdentity;
  /** the authenticated caller (differs from `identity` under impersonation) */
  readonly caller: ServiceAccountRef;
  readonly issuerSkid: string | undefined;
  readonly now: Date;
  /**
   * the answer's cert_chain: the leaf, each served intermediate as its own element, then every trust
   * anchor of the bundle concatenated as one last element (PEM)
   */
  readonly certChain: readonly string[];
}

/**
 * May `caller` have a certificate for `target`? Called only for a caller whose token verified and who
 * is listed in trustedNodeAccounts; resolves when allowed, rejects (ERR_IMPERSONATION_DENIED)
 * otherwise, or ERR_AUTHENTICATOR_UNAVAILABLE when it cannot tell. Istio's rule: `target` has a pod
 * on the node of the caller's pod (`caller.pod`, as its token names it; issuer/impersonation.ts
 * checks it against the Kubernetes API).
 */
export type ImpersonationCheck = (o: {
  readonly caller: AuthenticatedAccount;
  readonly target: ServiceAccountRef;
  readonly signal: AbortSignal;
}) => Promise<void>;

/** The default ImpersonationCheck: nothing is checked, so nothing is allowed. */
const refuseImpersonation: ImpersonationCheck = () =>
  Promise.reject(
    new IstioRequestError('ERR_IMPERSONATION_DENIED', 'impersonation is not available on this issuer'),
  );

export interface IstioCertifierOptions {
  readonly clock: Clock;
  readonly credentials: CredentialSource;
  /** verifies tokens for the Istio audience (--istio-token-audience) */
  readonly authenticator: Authenticator;
  /** the clock skew of every leaf (its lifetime comes from the request) */
  readonly policy: LeafPolicy;
  readonly domain: IdentityDomain;
  /** --istio-max-ttl: the longest validity_duration accepted, ms */
  readonly maxTtlMs: number;
  /** --istio-trusted-node-accounts: the callers that may ask for ImpersonatedIdentity */
  readonly trustedNodeAccounts?: readonly ServiceAccountRef[];
  /** the node check for a trusted caller; refuseImpersonation by default */
  readonly impersonation?: ImpersonationCheck;
  /** observes each certificate issued, before it is returned; must not throw */
  readonly onIssued?: (result: IstioCertifyResult) => void;
}

export type IstioCertify = (
  input: IstioCertifyInput,
  opts: { signal: AbortSignal; peer?: string },
) => Promise<IstioCertifyResult>;

/**
 * The CreateCertificate use case, in the stages of createCertifier (issuer/certify.ts):
 *
 * 1. snapshot: one credential generation and one `now`;
 * 2. parse: the CSR present, the TTL within --istio-max-ttl (ERR_TTL_TOO_LONG), the CSR read with
 *    ISTIO_KEY_POLICY (a refused key verified for nothing) and its names checked: exactly one URI
 *    (requestIstioLeaf, ERR_CSR_IDENTITY), all before the token;
 * 3. authorize: the token (none: ERR_TOKEN_INVALID, reason `missing`) → service account → SPIFFE ID;
 *    under ImpersonatedIdentity, the caller must be a trusted node account and pass the
 *    ImpersonationCheck (ERR_IMPERSONATION_DENIED), asked only after the CSR's URI is found to be
 *    that identity (ERR_CSR_IDENTITY) and its key allowed, so a request refused anyway costs no
 *    Kubernetes API request;
 * 4–5. issue and verify (issueLeaf): the URI-only leaf, lifetime = the TTL, clamped to the chain.
 *
 * Renewal caches are not used: istio-agent makes a new key for every certificate.
 */
export function createIstioCertifier(o: IstioCertifierOptions): IstioCertify {
  const { clock, credentials, authenticator, policy, domain, maxTtlMs, onIssued } = o;
  const trusted = new Set((o.trustedNodeAccounts ?? []).map((a) => `${a.namespace}/${a.name}`));
  const impersonation = o.impersonation ?? refuseImpersonation;
  const defaultTtlMs = Math.min(ISTIO_DEFAULT_TTL_MS, maxTtlMs);
  const servedPem = servedPemOf();

  function parse(input: IstioCertifyInput): { names: LeafRequestNames; ttlMs: number } {
    if (input.csr.length === 0) throw new InvalidRequestError('ERR_INVALID_REQUEST', 'csr is missing');
    const ttlMs = input.validitySeconds > 0 ? input.validitySeconds * 1000 : defaultTtlMs;
    if (ttlMs > maxTtlMs) {
      throw new IstioRequestError(
        'ERR_TTL_TOO_LONG',
        `validity_duration of ${input.validitySeconds} s is above the maximum of ${maxTtlMs / 1000} s`,
      );
    }
    return { names: requestIstioLeaf(parseCsrLenient(input.csr, ISTIO_KEY_POLICY)), ttlMs };
  }

  /** the account the leaf is for: the caller, or a trusted caller's ImpersonatedIdentity (not yet node-checked) */
  function subjectOf(caller: AuthenticatedAccount, impersonated: string | undefined): ServiceAccountRef {
    if (impersonated === undefined || impersonated === '') return caller;
    if (!trusted.has(`${caller.namespace}/${caller.name}`)) {
      throw new IstioRequestError(
        'ERR_IMPERSONATION_DENIED',
        `service account ${caller.namespace}/${caller.name} is not a trusted node account`,
      );
    }
    return parseSpiffeId(domain, impersonated);
  }

  async function authorize(
    request: { names: LeafRequestNames; ttlMs: number },
    input: IstioCertifyInput,
    opts: { signal: AbortSignal; peer?: string },
  ): Promise<{ authorized: AuthorizedLeafRequest; caller: ServiceAccountRef }> {
    if (input.token.length === 0)
      throw new InvalidTokenError('no bearer token was sent', { reason: 'missing' });
    const caller = await authenticator.authenticate(input.token, opts);
    const subject = subjectOf(caller, input.impersonatedIdentity);
    const identity = workloadIdentity(domain, subject);
    const leafPolicy: LeafPolicy = { ...policy, lifetimeMs: request.ttlMs };
    // the CSR's URI (ERR_CSR_IDENTITY) and key before the node check: a request refused anyway
    // costs the Kubernetes API nothing
    const authorized = authorizeIstioLeaf(request.names, identity, leafPolicy);
    if (subject !== caller) await impersonation({ caller, target: subject, signal: opts.signal });
    return { authorized, caller };
  }

  return async function istioCertify(input, opts) {
    // 1. snapshot
    const snapshot = snapshotIssuer(credentials.current(), clock.now());
    // 2. parse
    const request = parse(input);
    // 3. authorize
    const { authorized, caller } = await authorize(request, input, opts);
    // 4–5. issue, verify
    const leaf = issueLeaf(snapshot, authorized);
    const result: IstioCertifyResult = {
      leaf,
      identity: authorized.identity,
      caller,
      issuerSkid: snapshot.credential.issuerKeyIdHex,
      now: snapshot.now,
      certChain: [encodePem('CERTIFICATE', leaf.der), ...servedPem(snapshot.credential)],
    };
    onIssued?.(result);
    return result;
  };
}

/** `spiffe://<trust-domain>/ns/<ns>/sa/<sa>` of `domain` → the account; ERR_IMPERSONATION_DENIED otherwise. */
export function parseSpiffeId(domain: IdentityDomain, id: string): ServiceAccountRef {
  const identity = parseSpiffeIdentity(domain, id);
  if (identity !== undefined) return { namespace: identity.namespace, name: identity.name };
  throw new IstioRequestError(
    'ERR_IMPERSONATION_DENIED',
    'ImpersonatedIdentity is not a SPIFFE ID of this trust domain',
  );
}

/**
 * The answer's tail (intermediates, then the bundle as one element), which depends only on the
 * credential: kept per credential, in the certifier's own map.
 */
function servedPemOf(): (cred: IssuerCredential) => readonly string[] {
  const cache = new WeakMap<IssuerCredential, readonly string[]>();
  return (cred) => {
    let tail = cache.get(cred);
    if (tail === undefined) {
      tail = Object.freeze([
        ...cred.chainDer.map((d) => encodePem('CERTIFICATE', d)),
        cred.anchors.map((a) => encodePem('CERTIFICATE', a.der)).join(''),
      ]);
      cache.set(cred, tail);
    }
    return tail;
  };
}
