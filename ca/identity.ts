import { PolicyError } from './errors.js';

/** Where identities live: the Linkerd control-plane namespace and the trust domain. */
export interface IdentityDomain {
  /** e.g. "cluster.local"; a DNS name of DNS-1123 labels */
  readonly trustDomain: string;
  /** e.g. "linkerd"; one DNS-1123 label */
  readonly controlNamespace: string;
}

export interface ServiceAccountRef {
  readonly namespace: string;
  readonly name: string;
}

export interface WorkloadIdentity extends ServiceAccountRef {
  /** `<sa>.<ns>.serviceaccount.identity.<control-ns>.<trust-domain>` */
  readonly dns: string;
  /** `spiffe://<trust-domain>/ns/<ns>/sa/<sa>` */
  readonly spiffeId: string;
}

export const DEFAULT_IDENTITY_DOMAIN: IdentityDomain = Object.freeze({
  trustDomain: 'cluster.local',
  controlNamespace: 'linkerd',
});

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** DNS-1123 label: lower-case alphanumerics and '-', at most 63 characters, alphanumeric at both ends. */
export function isDns1123Label(s: string): boolean {
  return s.length > 0 && s.length <= 63 && LABEL.test(s);
}

export function isDns1123Subdomain(s: string): boolean {
  return s.length > 0 && s.length <= 253 && s.split('.').every(isDns1123Label);
}

export function validateIdentityDomain(d: IdentityDomain): IdentityDomain {
  if (!isDns1123Subdomain(d.trustDomain)) {
    throw new PolicyError(
      'ERR_IDENTITY_INVALID',
      `trust domain "${d.trustDomain}" is not a DNS-1123 name (lower-case letters, digits, '-' and '.')`,
    );
  }
  if (!isDns1123Label(d.controlNamespace)) {
    throw new PolicyError(
      'ERR_IDENTITY_INVALID',
      `control namespace "${d.controlNamespace}" is not a DNS-1123 label`,
    );
  }
  return Object.freeze({ trustDomain: d.trustDomain, controlNamespace: d.controlNamespace });
}

/** The identity of a service account; both names must be DNS-1123 labels. */
export function workloadIdentity(domain: IdentityDomain, sa: ServiceAccountRef): WorkloadIdentity {
  if (!isDns1123Label(sa.namespace)) {
    throw new PolicyError('ERR_IDENTITY_INVALID', `namespace "${sa.namespace}" is not a DNS-1123 label`);
  }
  if (!isDns1123Label(sa.name)) {
    throw new PolicyError('ERR_IDENTITY_INVALID', `service account "${sa.name}" is not a DNS-1123 label`);
  }
  const dns = `${sa.name}.${sa.namespace}.serviceaccount.identity.${domain.controlNamespace}.${domain.trustDomain}`;
  if (dns.length > 253)
    throw new PolicyError('ERR_IDENTITY_INVALID', `identity ${dns} is longer than 253 characters`);
  return Object.freeze({
    namespace: sa.namespace,
    name: sa.name,
    dns,
    spiffeId: `spiffe://${domain.trustDomain}/ns/${sa.namespace}/sa/${sa.name}`,
  });
}

/**
 * The inverse of workloadIdentity().spiffeId (`spiffe://<trust-domain>/ns/<ns>/sa/<sa>`), or undefined
 * when `id` is not a valid identity's SPIFFE ID in `domain`.
 */
export function parseSpiffeIdentity(domain: IdentityDomain, id: string): WorkloadIdentity | undefined {
  const prefix = `spiffe://${domain.trustDomain}/ns/`;
  if (!id.startsWith(prefix)) return undefined;
  const parts = id.slice(prefix.length).split('/');
  if (parts.length !== 3 || parts[1] !== 'sa') return undefined;
  const [namespace, , name] = parts as [string, string, string];
  if (!isDns1123Label(namespace) || !isDns1123Label(name)) return undefined;
  try {
    return workloadIdentity(domain, { namespace, name });
  } catch {
    return undefined; // its DNS form would be longer than 253 characters
  }
}

/** The inverse of workloadIdentity().dns, or undefined when `dns` is not an identity in `domain`. */
export function parseIdentity(domain: IdentityDomain, dns: string): WorkloadIdentity | undefined {
  const suffix = `.serviceaccount.identity.${domain.controlNamespace}.${domain.trustDomain}`;
  if (dns.length > 253 || !dns.endsWith(suffix)) return undefined;
  const head = dns.slice(0, -suffix.length).split('.');
  if (head.length !== 2) return undefined;
  const [name, namespace] = head as [string, string];
  if (!isDns1123Label(name) || !isDns1123Label(namespace)) return undefined;
  return workloadIdentity(domain, { namespace, name });
}
