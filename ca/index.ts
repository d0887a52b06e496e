// The PKI kernel's public API: what a service issuing leaves needs. Keys (ca/keys), material at rest
// (ca/store), reports (ca/inspect) and the DER codec (ca/der) are folders with an index of their own;
// other folders import only these index modules (lint: import-x/no-internal-modules).
export { type Clock, type Scheduler, systemClock, systemScheduler } from './clock.js';
export {
  type CaErrorCode,
  LanyardError,
  InvalidRequestError,
  PolicyError,
  CredentialError,
  FileError,
  UsageError,
  InternalError,
  isLanyardError,
  restateError,
} from './errors.js';
export { decodePem, encodePem } from './pem.js';
export { parseDuration, formatDuration } from './duration.js';
export { parseRfc3339 } from './time.js';
export {
  fingerprint,
  parseCertificate,
  parseCertificatesPem,
  describeCertificate,
  type CertificateInfo,
} from './certificate.js';
export {
  parseCsrLenient,
  type ParsedCsr,
  type LenientCsr,
  type CsrKeyPolicy,
  type CsrKeyType,
} from './csr.js';
export { buildCsr } from './csr-builder.js';
export { quoteForMessage } from './quote.js';
export {
  type IdentityDomain,
  type ServiceAccountRef,
  type WorkloadIdentity,
  DEFAULT_IDENTITY_DOMAIN,
  isDns1123Label,
  isDns1123Subdomain,
  validateIdentityDomain,
  parseSpiffeIdentity,
  workloadIdentity,
} from './identity.js';
export { DEFAULTS } from './profiles.js';
export {
  type LeafPolicy,
  type LeafKeyType,
  type LeafProfile,
  DEFAULT_LEAF_POLICY,
  ISTIO_KEY_POLICY,
  requestLeaf,
  authorizeLeaf,
  requestIstioLeaf,
  authorizeIstioLeaf,
  type LeafRequestNames,
  type AuthorizedLeafRequest,
} from './policy.js';
export { createLeafTemplate } from './leaf-template.js';
export { createChainVerifier, checkValidity, isSelfIssued } from './chain.js';
export {
  createIssuerCredential,
  snapshotIssuer,
  issueLeaf,
  type IssuerCredential,
  type IssuedLeaf,
} from './credential.js';
