import { status } from '@grpc/grpc-js';
import { isLanyardError, type ErrorCode } from '../../ca/index.js';

/**
 * The one table from error codes to gRPC status codes (docs/api.md mirrors it). Codes not listed
 * are INTERNAL, and their message is replaced by a generic one.
 */
const TABLE: Partial<Record<ErrorCode, status>> = {
  ERR_ISSUER_UNAVAILABLE: status.UNAVAILABLE,
  ERR_AUTHENTICATOR_UNAVAILABLE: status.UNAVAILABLE,
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
  ERR_CSR_WEAK_KEY: status.PERMISSION_DENIED,
  ERR_CSR_UNSUPPORTED_KEY: status.PERMISSION_DENIED,
  ERR_CSR_NAMES: status.PERMISSION_DENIED,
  ERR_IDENTITY_INVALID: status.PERMISSION_DENIED,
  ERR_IDENTITY_MISMATCH: status.PERMISSION_DENIED,
  ERR_KEY_NOT_ALLOWED: status.PERMISSION_DENIED,
  ERR_NAME_CONSTRAINTS: status.PERMISSION_DENIED,
  ERR_TOKEN_INVALID: status.UNAUTHENTICATED,
  ERR_OVERLOADED: status.RESOURCE_EXHAUSTED,
  ERR_DEADLINE_EXCEEDED: status.DEADLINE_EXCEEDED,
};

export interface MappedError {
  readonly grpcCode: status;
  readonly code: ErrorCode;
  /** safe to send to the caller: never a token, never key material */
  readonly message: string;
}

export function toGrpcError(err: unknown): MappedError {
  if (isLanyardError(err)) {
    const grpcCode = TABLE[err.code];
    if (grpcCode !== undefined) return { grpcCode, code: err.code, message: err.message };
    return { grpcCode: status.INTERNAL, code: err.code, message: 'internal error; see the issuer log' };
  }
  return { grpcCode: status.INTERNAL, code: 'ERR_INTERNAL', message: 'internal error; see the issuer log' };
}

export function statusName(code: status): string {
  return status[code];
}
