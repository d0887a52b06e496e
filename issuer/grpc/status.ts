import { status } from '@grpc/grpc-js';
import { isLanyardError } from '../../ca/index.js';
import type { ErrorCode } from '../errors.js';

/**
 * The one table from error codes to gRPC status codes (docs/api.md mirrors it). It names every code
 * (ErrorCode, issuer/errors.ts), so a new code without a status fails typecheck. INTERNAL codes (and
 * codes outside ErrorCode) have their message replaced by a generic one (as do those in GENERIC).
 */
const TABLE: Readonly<Record<ErrorCode, status>> = {
  // the request: fields and encodings
  ERR_INVALID_REQUEST: status.INVALID_ARGUMENT,
  ERR_PEM_MALFORMED: status.INVALID_ARGUMENT,
  ERR_PEM_HEADERS: status.INVALID_ARGUMENT,
  ERR_PEM_UNEXPECTED_TYPE: status.INVALID_ARGUMENT,
  ERR_DER_MALFORMED: status.INVALID_ARGUMENT,
  ERR_DER_TRUNCATED: status.INVALID_ARGUMENT,
  ERR_DER_TRAILING_DATA: status.INVALID_ARGUMENT,
  ERR_CSR_MALFORMED: status.INVALID_ARGUMENT,
  ERR_CSR_SIGNATURE: status.INVALID_ARGUMENT,
  ERR_CSR_TOO_LARGE: status.INVALID_ARGUMENT,
  ERR_CSR_UNSUPPORTED_SIGNATURE: status.INVALID_ARGUMENT,
  // the request: what policy refuses
  ERR_CSR_WEAK_KEY: status.PERMISSION_DENIED,
  ERR_CSR_UNSUPPORTED_KEY: status.PERMISSION_DENIED,
  ERR_CSR_NAMES: status.PERMISSION_DENIED,
  ERR_CSR_IDENTITY: status.INVALID_ARGUMENT,
  ERR_IDENTITY_INVALID: status.PERMISSION_DENIED,
  ERR_IDENTITY_MISMATCH: status.PERMISSION_DENIED,
  ERR_KEY_NOT_ALLOWED: status.PERMISSION_DENIED,
  ERR_NAME_CONSTRAINTS: status.PERMISSION_DENIED,
  // authentication
  ERR_TOKEN_INVALID: status.UNAUTHENTICATED,
  // the Istio CA API's own refusals (never raised by Certify)
  ERR_TTL_TOO_LONG: status.INVALID_ARGUMENT,
  ERR_IMPERSONATION_DENIED: status.UNAUTHENTICATED,
  ERR_CLUSTER_UNKNOWN: status.UNAUTHENTICATED,
  ERR_AUTHENTICATOR_UNAVAILABLE: status.UNAVAILABLE,
  // the service
  ERR_ISSUER_UNAVAILABLE: status.UNAVAILABLE,
  ERR_OVERLOADED: status.RESOURCE_EXHAUSTED,
  ERR_DEADLINE_EXCEEDED: status.DEADLINE_EXCEEDED,
  // the issuer's own material and everything else: not the caller's doing
  ERR_KEY_EXISTS: status.INTERNAL,
  ERR_KEY_MISMATCH: status.INTERNAL,
  ERR_KEY_UNSUPPORTED: status.INTERNAL,
  ERR_KEY_PERMISSIONS: status.INTERNAL,
  ERR_CERT_MALFORMED: status.INTERNAL,
  ERR_CERT_EXPIRED: status.INTERNAL,
  ERR_CERT_NOT_YET_VALID: status.INTERNAL,
  ERR_CERT_UNSUPPORTED_CRITICAL_EXTENSION: status.INTERNAL,
  ERR_ANCHOR_NOT_SELF_SIGNED: status.INTERNAL,
  ERR_NOT_CA: status.INTERNAL,
  ERR_NAME_CONSTRAINTS_UNSUPPORTED: status.INTERNAL,
  ERR_CHAIN_UNTRUSTED: status.INTERNAL,
  ERR_CROSS_SAME_SUBJECT: status.INTERNAL,
  ERR_CROSS_CERT_MISMATCH: status.INTERNAL,
  ERR_CROSS_CERT_UNTRUSTED: status.INTERNAL,
  ERR_CROSS_CERT_EXPIRES_FIRST: status.INTERNAL,
  ERR_CROSS_PATHLEN: status.INTERNAL,
  ERR_FILE_NOT_FOUND: status.INTERNAL,
  ERR_FILE_INVALID: status.INTERNAL,
  ERR_USAGE: status.INTERNAL,
  ERR_INTERNAL: status.INTERNAL,
  ERR_FETCH_FAILED: status.INTERNAL,
  ERR_ROTATION_INPUT_MISSING: status.INTERNAL,
  ERR_ROTATION_INPUT_INVALID: status.INTERNAL,
  ERR_PODS_INVALID: status.INTERNAL,
  ERR_WORKER_START: status.INTERNAL,
  ERR_SERVING_KEY_UNUSABLE: status.INTERNAL,
  ERR_SERVING_CERT_EKU: status.INTERNAL,
  ERR_CERTIFY_FAILED: status.INTERNAL,
  ERR_SERVER_NAME_MISMATCH: status.INTERNAL,
  ERR_RESPONSE_INVALID: status.INTERNAL,
};

function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(TABLE, code);
}

/**
 * Codes whose messages describe the issuer rather than the request: file paths, URLs, addresses,
 * socket errors, what the API server or a JWKS said. The caller gets this fixed text (and the code);
 * the message itself goes to the issuer's log only. Other mapped codes are about the caller's own
 * request (fields, CSR, names, key, identity) and keep their message.
 */
const GENERIC: Partial<Record<ErrorCode, string>> = {
  ERR_TOKEN_INVALID: 'the token was not accepted',
  ERR_AUTHENTICATOR_UNAVAILABLE: 'the token cannot be checked at the moment; try again later',
  ERR_ISSUER_UNAVAILABLE: 'the issuer cannot sign at the moment; try again later',
  ERR_IMPERSONATION_DENIED: 'the caller may not ask for this identity',
  ERR_CLUSTER_UNKNOWN: 'the token was not accepted',
};

/** Token-check reasons (issuer/authn/errors.ts) a caller may see: fixed words, never what the backend said. */
const REASON = /^[a-z]+(?:-[a-z]+)*$/;

export interface MappedError {
  readonly grpcCode: status;
  readonly code: ErrorCode;
  /** safe to send to the caller: never a token, key material, path, URL, address or socket error */
  readonly message: string;
  /** the error's own message when `message` replaced it: for the issuer's log only */
  readonly detail?: string;
}

const INTERNAL_MESSAGE = 'internal error; see the issuer log';

export function toGrpcError(err: unknown): MappedError {
  if (isLanyardError(err)) {
    // a code outside ErrorCode: only a LanyardError built with a code no class owns
    if (!isErrorCode(err.code))
      return {
        grpcCode: status.INTERNAL,
        code: 'ERR_INTERNAL',
        message: INTERNAL_MESSAGE,
        detail: `${err.code}: ${err.message}`,
      };
    const grpcCode = TABLE[err.code];
    if (grpcCode === status.INTERNAL)
      return { grpcCode, code: err.code, message: INTERNAL_MESSAGE, detail: err.message };
    const generic = GENERIC[err.code];
    if (generic === undefined) return { grpcCode, code: err.code, message: err.message };
    const reason = (err as { reason?: unknown }).reason;
    const which =
      err.code === 'ERR_TOKEN_INVALID' && typeof reason === 'string' && REASON.test(reason)
        ? ` (${reason})`
        : '';
    return { grpcCode, code: err.code, message: `${generic}${which}`, detail: err.message };
  }
  return { grpcCode: status.INTERNAL, code: 'ERR_INTERNAL', message: INTERNAL_MESSAGE };
}

/**
 * The Istio CA API's table (CreateCertificate): the one above, except that every refusal of the CSR's
 * key is INVALID_ARGUMENT, as istiod and istio-csr answer a bad CSR. The CSR's names are refused with
 * ERR_CSR_IDENTITY (INVALID_ARGUMENT already); ERR_CSR_NAMES is Certify's alone, so it has no entry.
 * Kept from the table above, on purpose: ERR_IDENTITY_INVALID and ERR_NAME_CONSTRAINTS stay
 * PERMISSION_DENIED (the identity comes from the verified token, not the request: the caller cannot
 * fix it by asking differently, and INVALID_ARGUMENT would call a well-formed request malformed);
 * ERR_DEADLINE_EXCEEDED stays DEADLINE_EXCEEDED. docs/api.md lists them.
 */
const ISTIO_OVERRIDES: Partial<Record<ErrorCode, status>> = {
  ERR_CSR_WEAK_KEY: status.INVALID_ARGUMENT,
  ERR_CSR_UNSUPPORTED_KEY: status.INVALID_ARGUMENT,
  ERR_KEY_NOT_ALLOWED: status.INVALID_ARGUMENT,
};

export function toIstioGrpcError(err: unknown): MappedError {
  const mapped = toGrpcError(err);
  const grpcCode = ISTIO_OVERRIDES[mapped.code];
  return grpcCode === undefined ? mapped : { ...mapped, grpcCode };
}

/** The trailer that carries the LanyardError code of a refused call. */
export const ERROR_CODE_TRAILER = 'lanyard-error-code';

export function statusName(code: status): string {
  return status[code];
}
