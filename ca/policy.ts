import type { CsrKeyType, CsrNames } from './csr.js';
import { PolicyError } from './errors.js';
import { quoteForMessage, quoteListForMessage } from './quote.js';
import { DEFAULTS } from './profiles.js';

export type LeafKeyType = 'p256' | 'p384';

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
