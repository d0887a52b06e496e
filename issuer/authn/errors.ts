import { LanyardError } from '../../ca/index.js';

/** The codes of the authentication seam (every Authenticator rejects with one of the two classes). */
export type AuthnErrorCode = 'ERR_TOKEN_INVALID' | 'ERR_AUTHENTICATOR_UNAVAILABLE';

/** Which check a token failed (for logs, metrics and tests; the code stays ERR_TOKEN_INVALID). */
export type TokenRejection =
  /** no token at all (the Istio API: no `authorization: Bearer` header) */
  | 'missing'
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
export class InvalidTokenError extends LanyardError<'ERR_TOKEN_INVALID'> {
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
export class AuthenticatorUnavailableError extends LanyardError<'ERR_AUTHENTICATOR_UNAVAILABLE'> {
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
