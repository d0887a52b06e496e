import type { CsrKeyPolicy, CsrKeyType, CsrNames } from './csr.js';
import type { InvalidRequestError } from './errors.js';
import { PolicyError } from './errors.js';
import type { WorkloadIdentity } from './identity.js';
import { quoteForMessage, quoteListForMessage } from './quote.js';
import { DEFAULTS } from './profiles.js';

export type LeafKeyType = 'p256' | 'p384';

/**
 * Which leaf a request gets: `linkerd` (one DNS name, then the SPIFFE URI) or `istio` (the SPIFFE URI
 * alone). Both: empty subject, CA:FALSE, digitalSignature (+ keyEncipherment for an RSA key), both EKUs.
 */
export type LeafProfile = 'linkerd' | 'istio';

/** The Istio API's CSR keys: ECDSA P-256 or P-384, or RSA of 2048 to 4096 bits with exponent 65537. */
export const ISTIO_KEY_POLICY: CsrKeyPolicy = Object.freeze({
  allowedKeyTypes: Object.freeze(['p256', 'p384'] as const),
  allowedRsa: Object.freeze({ minBits: 2048, maxBits: 4096, exponent: 65537 }),
});

/** What the CA allows into a workload leaf. Durations in milliseconds. */
export interface LeafPolicy {
  /** requested lifetime; the leaf never outlives its issuer chain */
  readonly lifetimeMs: number;
  /** notBefore back-dating and notAfter slack */
  readonly clockSkewMs: number;
  readonly allowedKeyTypes: readonly LeafKeyType[];
}

export const DEFAULT_LEAF_POLICY: LeafPolicy = Object.freeze({
  lifetimeMs: DEFAULTS.leafLifetimeMs,
  clockSkewMs: DEFAULTS.clockSkewMs,
  allowedKeyTypes: Object.freeze(['p256'] as const),
});

/**
 * The CSR must ask for exactly one DNS name equal to `identity`, with an empty subject or a
 * commonName equal to it, and no IP, email, URI or other names. ERR_CSR_NAMES otherwise.
 */
export function checkCsrNames(csr: CsrNames, identity: string): void {
  const problems: string[] = [];
  if (csr.dnsNames.length !== 1 || csr.dnsNames[0] !== identity) {
    problems.push(
      `DNS SANs ${quoteListForMessage(csr.dnsNames)} are not exactly [${quoteForMessage(identity)}]`,
    );
  }
  if (csr.commonName !== undefined && csr.commonName !== '' && csr.commonName !== identity) {
    problems.push(`subject CN ${quoteForMessage(csr.commonName)} differs from the identity`);
  }
  if (csr.otherSubjectAttributes > 0) problems.push('subject has attributes other than CN');
  if (csr.ipAddresses.length > 0) problems.push('IP address SANs are not allowed');
  if (csr.emails.length > 0) problems.push('email SANs are not allowed');
  if (csr.uris.length > 0) problems.push('URI SANs are not allowed (the CA adds the SPIFFE ID itself)');
  if (csr.otherNames > 0) problems.push('other SAN types are not allowed');
  if (problems.length > 0)
    throw new PolicyError('ERR_CSR_NAMES', `CSR names not allowed: ${problems.join('; ')}`);
}

/** The key must be of a type the policy lists: ERR_KEY_NOT_ALLOWED otherwise. */
export function checkKeyAllowed(keyType: CsrKeyType, policy: LeafPolicy): LeafKeyType {
  const allowed = policy.allowedKeyTypes.find((k) => k === keyType);
  if (allowed === undefined) throw keyTypeRefusal(keyType, policy.allowedKeyTypes) as PolicyError;
  return allowed;
}

/** The error checkKeyAllowed throws for `keyType`, or undefined for a key type `allowed` lists. */
export function keyTypeRefusal(keyType: CsrKeyType, allowed: readonly CsrKeyType[]): PolicyError | undefined {
  if (allowed.includes(keyType)) return undefined;
  return new PolicyError(
    'ERR_KEY_NOT_ALLOWED',
    `key type ${keyType} is not allowed; use ${allowed.join(' or ')}`,
  );
}

/**
 * notBefore = now − skew; notAfter = min(now + lifetime + skew, chainNotAfter), both whole seconds.
 */
export function leafValidity(
  now: Date,
  policy: LeafPolicy,
  chainNotAfter: Date,
): { notBefore: Date; notAfter: Date } {
  const t = now.getTime();
  const notBefore = Math.floor((t - policy.clockSkewMs) / 1000) * 1000;
  const notAfter =
    Math.floor(Math.min(t + policy.lifetimeMs + policy.clockSkewMs, chainNotAfter.getTime()) / 1000) * 1000;
  return { notBefore: new Date(notBefore), notAfter: new Date(notAfter) };
}

/**
 * A CSR's key as judged once, when the CSR was read (parseCsrLenient with the policy, or judgeCsrKey):
 * either a key type the policy allows, with the CA's canonical SPKI of the verified key, or the
 * refusal to report once the caller has authenticated.
 */
export type JudgedCsrKey =
  | {
      readonly keyType: CsrKeyType;
      readonly spki: Buffer;
      /** keyIdentifier(spki), when the reader computed it (ParsedCsr.subjectKeyId) */
      readonly subjectKeyId?: Buffer;
    }
  | { readonly keyType: 'unsupported'; readonly keyError: InvalidRequestError | PolicyError };

/** The judgement parseCsrLenient makes while parsing, for a CSR that was read without a policy. */
export function judgeCsrKey(
  csr: CsrNames & { readonly keyType: CsrKeyType; readonly spki: Buffer },
  policy: LeafPolicy,
): CsrNames & JudgedCsrKey {
  const keyError = keyTypeRefusal(csr.keyType, policy.allowedKeyTypes);
  return keyError === undefined ? csr : { ...csr, keyType: 'unsupported', keyError };
}

/** Held by this module alone: the hand-offs below are built here and nowhere else. */
const POLICY_STAGE: unique symbol = Symbol('ca/policy');

function mintedHere(stage: typeof POLICY_STAGE): void {
  if (stage !== POLICY_STAGE) throw new TypeError('built outside the policy stage');
}

/**
 * What a caller asks for, before anyone knows who the caller is: an identity and a CSR that asks for
 * exactly that identity, its key judged. Built only by requestLeaf: the first half of authorization,
 * cheap enough to run before the token is checked.
 */
export class LeafRequestNames {
  declare private readonly brand: 'LeafRequestNames';
  /** use requestLeaf */
  constructor(
    stage: typeof POLICY_STAGE,
    /**
     * the identity the caller asked for, as it asked (not validated beyond the CSR's names): the DNS
     * identity (`linkerd`) or the CSR's one URI (`istio`)
     */
    readonly requested: string,
    readonly key: JudgedCsrKey,
    readonly profile: LeafProfile = 'linkerd',
  ) {
    mintedHere(stage);
  }
}

/**
 * A leaf the policy has authorized: the only input the issuing function (issueLeaf) accepts. Built
 * only by authorizeLeaf, from a request whose names were checked (LeafRequestNames), the identity the
 * caller proved, and the policy; so no leaf is signed for names or a key nobody checked. Of the CSR,
 * only the key is kept.
 */
export class AuthorizedLeafRequest {
  declare private readonly brand: 'AuthorizedLeafRequest';
  /** use authorizeLeaf */
  constructor(
    stage: typeof POLICY_STAGE,
    /** the CA's canonical SubjectPublicKeyInfo of the verified key: all a leaf takes from a CSR */
    readonly spki: Buffer,
    readonly keyType: CsrKeyType,
    /** the identity the leaf names (DNS SAN, then the SPIFFE URI; the URI alone for `istio`) */
    readonly identity: WorkloadIdentity,
    /** lifetime and clock skew of the leaf */
    readonly policy: LeafPolicy,
    /** keyIdentifier(spki) when known already (the leaf's SKI); the template computes it otherwise */
    readonly subjectKeyId: Buffer | undefined,
    readonly profile: LeafProfile = 'linkerd',
  ) {
    mintedHere(stage);
  }
}

/**
 * Authorization, first half, before the token: the CSR asks for exactly the `requested` identity
 * (checkCsrNames: ERR_CSR_NAMES otherwise).
 */
export function requestLeaf(csr: CsrNames & JudgedCsrKey, requested: string): LeafRequestNames {
  checkCsrNames(csr, requested);
  return new LeafRequestNames(POLICY_STAGE, requested, csr);
}

/**
 * Authorization, second half, once the caller's identity is known: it must be the identity the
 * request named (ERR_IDENTITY_MISMATCH); then the key, as judged when the CSR was read, must be one
 * the policy allows (ERR_CSR_UNSUPPORTED_KEY, ERR_CSR_WEAK_KEY or ERR_KEY_NOT_ALLOWED otherwise).
 */
export function authorizeLeaf(
  request: LeafRequestNames,
  identity: WorkloadIdentity,
  policy: LeafPolicy,
): AuthorizedLeafRequest {
  if (request.profile !== 'linkerd') throw new TypeError('an Istio request goes to authorizeIstioLeaf');
  if (identity.dns !== request.requested) {
    throw new PolicyError(
      'ERR_IDENTITY_MISMATCH',
      `the token is for service account ${identity.namespace}/${identity.name} (${identity.dns}), not for the requested identity ${quoteForMessage(request.requested)}`,
    );
  }
  return authorizedKey(request, identity, policy);
}

/** Both APIs' last step: the key, as judged when the CSR was read, then the authorized request. */
function authorizedKey(
  request: LeafRequestNames,
  identity: WorkloadIdentity,
  policy: LeafPolicy,
): AuthorizedLeafRequest {
  const key = request.key;
  if (key.keyType === 'unsupported') throw key.keyError;
  return new AuthorizedLeafRequest(
    POLICY_STAGE,
    key.spki,
    key.keyType,
    identity,
    policy,
    key.subjectKeyId,
    request.profile,
  );
}

/**
 * An Istio CSR's names: exactly one SAN, a URI, and nothing else (no DNS, IP, email or other names);
 * a subject that is empty, an empty commonName, or empty organizationNames (istio-agent's `O=`).
 * Returns the URI; ERR_CSR_IDENTITY otherwise. Which URI is allowed is known only after the token.
 */
function checkIstioCsrNames(csr: CsrNames): string {
  const problems: string[] = [];
  const uri = csr.uris[0];
  if (csr.uris.length !== 1)
    problems.push(`URI SANs ${quoteListForMessage(csr.uris)} are not exactly one SPIFFE ID`);
  if (csr.commonName !== undefined && csr.commonName !== '')
    problems.push(`subject CN ${quoteForMessage(csr.commonName)} is not allowed`);
  if (csr.otherSubjectAttributes > csr.emptyOrganizations)
    problems.push('subject has attributes other than an empty O');
  if (csr.dnsNames.length > 0) problems.push('DNS SANs are not allowed');
  if (csr.ipAddresses.length > 0) problems.push('IP address SANs are not allowed');
  if (csr.emails.length > 0) problems.push('email SANs are not allowed');
  if (csr.otherNames > 0) problems.push('other SAN types are not allowed');
  if (problems.length > 0 || uri === undefined)
    throw new PolicyError('ERR_CSR_IDENTITY', `CSR names not allowed: ${problems.join('; ')}`);
  return uri;
}

/** requestLeaf for the Istio API: the CSR names exactly one URI (checkIstioCsrNames), the identity asked for. */
export function requestIstioLeaf(csr: CsrNames & JudgedCsrKey): LeafRequestNames {
  return new LeafRequestNames(POLICY_STAGE, checkIstioCsrNames(csr), csr, 'istio');
}

/**
 * authorizeLeaf for the Istio API: the CSR's URI must be the SPIFFE ID of `identity` (the caller's,
 * or the one it may impersonate; ERR_CSR_IDENTITY otherwise); then the key as judged with
 * ISTIO_KEY_POLICY. `policy` gives the lifetime and skew (its key types are not used).
 */
export function authorizeIstioLeaf(
  request: LeafRequestNames,
  identity: WorkloadIdentity,
  policy: LeafPolicy,
): AuthorizedLeafRequest {
  if (request.profile !== 'istio') throw new TypeError('a Linkerd request goes to authorizeLeaf');
  if (identity.spiffeId !== request.requested) {
    throw new PolicyError(
      'ERR_CSR_IDENTITY',
      `the CSR asks for ${quoteForMessage(request.requested)}, not for the caller's identity ${identity.spiffeId}`,
    );
  }
  return authorizedKey(request, identity, policy);
}
