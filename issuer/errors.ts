import { LanyardError, type CaErrorCode } from '../ca/index.js';
import type { TrustBundlesErrorCode } from '../trust-bundles/index.js';
import type { AuthnErrorCode } from './authn/index.js';

/** The service's own failures (admission, deadlines, worker processes, its serving TLS material). */
export type ServiceErrorCode =
  /** shed by admission control (RESOURCE_EXHAUSTED); a log and trailer code, never thrown */
  | 'ERR_OVERLOADED'
  | 'ERR_DEADLINE_EXCEEDED'
  | 'ERR_WORKER_START'
  | 'ERR_SERVING_KEY_UNUSABLE'
  | 'ERR_SERVING_CERT_EKU';

export class IssuerServiceError extends LanyardError<ServiceErrorCode> {}

/** What the Istio CA API (CreateCertificate) refuses beyond the CSR and the token. */
export type IstioRequestErrorCode =
  /** validity_duration above --istio-max-ttl (INVALID_ARGUMENT) */
  | 'ERR_TTL_TOO_LONG'
  /** ImpersonatedIdentity asked by a caller that may not, or for an identity it may not (UNAUTHENTICATED) */
  | 'ERR_IMPERSONATION_DENIED'
  /** a clusterid header that is neither empty nor this issuer's --cluster (UNAUTHENTICATED) */
  | 'ERR_CLUSTER_UNKNOWN';

export class IstioRequestError extends LanyardError<IstioRequestErrorCode> {}

/**
 * The certify client's codes (`lanyard certify`): CertifyFailed (bin/cli/certify.ts), ServerNameMismatchError
 * (bin/agent/channel.ts) and InvalidResponseError (bin/agent) each throw one of them.
 */
export type CertifyClientErrorCode =
  'ERR_CERTIFY_FAILED' | 'ERR_SERVER_NAME_MISMATCH' | 'ERR_RESPONSE_INVALID';

/** Every code Lanyard raises, whichever layer owns it: the gRPC status table is typed over it. */
export type ErrorCode =
  | CaErrorCode
  | TrustBundlesErrorCode
  | AuthnErrorCode
  | ServiceErrorCode
  | IstioRequestErrorCode
  | CertifyClientErrorCode;
