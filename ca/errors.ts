/**
 * Every error Lanyard raises on purpose carries a stable `code`. Tests, the gRPC status table and
 * the CLI's exit codes key on the code, never on message text.
 */
export type ErrorCode =
  // encoding
  | 'ERR_PEM_MALFORMED'
  | 'ERR_PEM_HEADERS'
  | 'ERR_PEM_UNEXPECTED_TYPE'
  | 'ERR_DER_MALFORMED'
  | 'ERR_DER_TRUNCATED'
  | 'ERR_DER_TRAILING_DATA'
  // CSRs
  | 'ERR_CSR_MALFORMED'
  | 'ERR_CSR_SIGNATURE'
  | 'ERR_CSR_WEAK_KEY'
  | 'ERR_CSR_UNSUPPORTED_KEY'
  | 'ERR_CSR_UNSUPPORTED_SIGNATURE'
  | 'ERR_CSR_TOO_LARGE'
  // policy
  | 'ERR_KEY_NOT_ALLOWED'
  | 'ERR_CSR_NAMES'
  | 'ERR_IDENTITY_INVALID'
  | 'ERR_IDENTITY_MISMATCH'
  | 'ERR_NAME_CONSTRAINTS'
  | 'ERR_NAME_CONSTRAINTS_UNSUPPORTED'
  // keys and certificates
  | 'ERR_KEY_EXISTS'
  | 'ERR_KEY_MISMATCH'
  | 'ERR_KEY_UNSUPPORTED'
  /** a private key file another user could have written or can read (mode, owner, symlink) */
  | 'ERR_KEY_PERMISSIONS'
  | 'ERR_CERT_MALFORMED'
  | 'ERR_CERT_EXPIRED'
  | 'ERR_CERT_NOT_YET_VALID'
  | 'ERR_CERT_UNSUPPORTED_CRITICAL_EXTENSION'
  | 'ERR_ANCHOR_NOT_SELF_SIGNED'
  | 'ERR_NOT_CA'
  | 'ERR_CHAIN_UNTRUSTED'
  | 'ERR_ISSUER_UNAVAILABLE'
  // serving TLS
  | 'ERR_SERVING_KEY_UNUSABLE'
  | 'ERR_SERVING_CERT_EKU'
  // authentication
  | 'ERR_TOKEN_INVALID'
  | 'ERR_AUTHENTICATOR_UNAVAILABLE'
  // service
  | 'ERR_OVERLOADED'
  | 'ERR_DEADLINE_EXCEEDED'
  | 'ERR_CERTIFY_FAILED'
  | 'ERR_INVALID_REQUEST'
  | 'ERR_WORKER_START'
  // the certify client (`lanyard certify`)
  | 'ERR_SERVER_NAME_MISMATCH'
  | 'ERR_RESPONSE_INVALID'
  // fetching a bundle or status over HTTP (`certify --bundle-url`, `check`, `rotate`)
  | 'ERR_FETCH_FAILED'
  // operator input
  | 'ERR_USAGE'
  | 'ERR_FILE_NOT_FOUND'
  | 'ERR_FILE_INVALID'
  | 'ERR_INTERNAL';

export class LanyardError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Malformed input from a caller (bytes that do not parse, a bad signature, a missing field). */
export class InvalidRequestError extends LanyardError {}
/** Well-formed input that policy does not allow (names, key types, constraints). */
export class PolicyError extends LanyardError {}
/** Problems with the CA's own material (keys, certificates, chains). */
export class CredentialError extends LanyardError {}
/** Which check a token failed (for logs, metrics and tests; the code stays ERR_TOKEN_INVALID). */
export type TokenRejection =
  | 'malformed'
  | 'algorithm'
  | 'key'
  | 'signature'
  | 'expired'
  | 'not-yet-valid'
  | 'issuer'
  | 'audience'
  | 'subject'
  | 'claims'
  | 'not-authenticated';

/** A token that is not valid. */
export class InvalidTokenError extends LanyardError {
  readonly reason: TokenRejection;
  constructor(message: string, options: { reason: TokenRejection; cause?: unknown }) {
    super('ERR_TOKEN_INVALID', message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.reason = options.reason;
  }
}

/** Why the authentication backend could not answer (the code stays ERR_AUTHENTICATOR_UNAVAILABLE). */
export type UnavailableReason =
  | 'cancelled'
  | 'timeout'
  | 'overloaded'
  | 'rate-limited'
  | 'unreachable'
  | 'refused'
  | 'bad-response'
  | 'keys'
  | 'credentials'
  | 'closed';

/** The authentication backend could not be reached or answered nonsense. */
export class AuthenticatorUnavailableError extends LanyardError {
  readonly reason: UnavailableReason;
  constructor(message: string, options: { reason: UnavailableReason; cause?: unknown }) {
    super(
      'ERR_AUTHENTICATOR_UNAVAILABLE',
      message,
      options.cause !== undefined ? { cause: options.cause } : undefined,
    );
    this.reason = options.reason;
  }
}
/** Operator input (flags, files) that cannot be used. */
export class UsageError extends LanyardError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_USAGE', message, options);
  }
}

export function isLanyardError(err: unknown): err is LanyardError {
  return err instanceof LanyardError;
}
