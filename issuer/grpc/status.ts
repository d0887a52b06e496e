import { status } from '@grpc/grpc-js';
import { isLanyardError, type ErrorCode } from '../../ca/index.js';

/**
 * The one table from error codes to gRPC status codes (docs/api.md mirrors it). Codes not listed
 * are INTERNAL, and their message is replaced by a generic one (as are those in GENERIC).
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
};

/** Token-check reasons (ca/errors.ts) a caller may see: fixed words, never what the backend said. */
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
    const grpcCode = TABLE[err.code];
    if (grpcCode === undefined)
      return { grpcCode: status.INTERNAL, code: err.code, message: INTERNAL_MESSAGE, detail: err.message };
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

/** The trailer that carries the LanyardError code of a refused call. */
export const ERROR_CODE_TRAILER = 'lanyard-error-code';

export function statusName(code: status): string {
  return status[code];
}
