/**
 * Every error Lanyard raises on purpose carries a stable `code`. Tests, the gRPC status table and
 * the CLI's exit codes key on the code, never on message text.
 *
 * Each class accepts only its own codes (as sigstore-js `BaseError<T>`), so the type system refuses a
 * code thrown by the wrong class. This module holds the PKI kernel's codes; the layers above add their
 * own classes on the same base (trust-bundles/errors.ts, issuer/authn/errors.ts, issuer/errors.ts),
 * and issuer/errors.ts names the union of them all.
 */
export interface LanyardError<C extends string = string> extends Error {
  readonly code: C;
}

/**
 * The base class. Declared through its constructor type so that `err instanceof LanyardError` narrows
 * to `LanyardError<string>` (a generic class would narrow to `LanyardError<any>`); subclasses extend
 * `LanyardError<TheirCodes>`. Built directly only by tests and restateError.
 */
export const LanyardError: {
  new <C extends string = string>(code: C, message: string, options?: { cause?: unknown }): LanyardError<C>;
  readonly prototype: LanyardError;
} = class LanyardError<C extends string> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
};

/** Bytes that do not decode: PEM armour and DER. */
export type EncodingErrorCode =
  | 'ERR_PEM_MALFORMED'
  | 'ERR_PEM_HEADERS'
  | 'ERR_PEM_UNEXPECTED_TYPE'
  | 'ERR_DER_MALFORMED'
  | 'ERR_DER_TRUNCATED'
  | 'ERR_DER_TRAILING_DATA';

/** A certificate signing request that the CA does not read or never signs. */
export type CsrErrorCode =
  | 'ERR_CSR_MALFORMED'
  | 'ERR_CSR_SIGNATURE'
  | 'ERR_CSR_WEAK_KEY'
  | 'ERR_CSR_UNSUPPORTED_KEY'
  | 'ERR_CSR_UNSUPPORTED_SIGNATURE'
  | 'ERR_CSR_TOO_LARGE';

export type InvalidRequestErrorCode =
  | EncodingErrorCode
  | CsrErrorCode
  /** a field missing or out of range (a request, a bundle query, a manifest name) */
  | 'ERR_INVALID_REQUEST';

/** Malformed input from a caller (bytes that do not parse, a bad signature, a missing field). */
export class InvalidRequestError extends LanyardError<InvalidRequestErrorCode> {}

export type PolicyErrorCode =
  | 'ERR_KEY_NOT_ALLOWED'
  | 'ERR_CSR_NAMES'
  /** an Istio CSR whose names are not exactly one URI, the caller's SPIFFE ID (or that has a CN) */
  | 'ERR_CSR_IDENTITY'
  | 'ERR_IDENTITY_INVALID'
  | 'ERR_IDENTITY_MISMATCH'
  /** a name outside a CA's name constraints (the requested identity, or a name in a chain) */
  | 'ERR_NAME_CONSTRAINTS';

/** Well-formed input that policy does not allow (names, key types, constraints). */
export class PolicyError extends LanyardError<PolicyErrorCode> {}

export type CredentialErrorCode =
  // keys
  | 'ERR_KEY_EXISTS'
  | 'ERR_KEY_MISMATCH'
  | 'ERR_KEY_UNSUPPORTED'
  /** a private key file another user could have written or can read (mode, owner, symlink) */
  | 'ERR_KEY_PERMISSIONS'
  // certificates and chains
  | 'ERR_CERT_MALFORMED'
  | 'ERR_CERT_EXPIRED'
  | 'ERR_CERT_NOT_YET_VALID'
  | 'ERR_CERT_UNSUPPORTED_CRITICAL_EXTENSION'
  | 'ERR_ANCHOR_NOT_SELF_SIGNED'
  | 'ERR_NOT_CA'
  | 'ERR_NAME_CONSTRAINTS_UNSUPPORTED'
  | 'ERR_CHAIN_UNTRUSTED'
  | 'ERR_ISSUER_UNAVAILABLE'
  // cross certificates (a new anchor's subject and key, issued by an old anchor)
  /** the anchor to cross-sign has the subject of the anchor that would sign it */
  | 'ERR_CROSS_SAME_SUBJECT'
  /** a served chain certificate is not the subject and key of the issuer above the one before it */
  | 'ERR_CROSS_CERT_MISMATCH'
  /** a served chain certificate names a trust anchor as its issuer but that anchor did not sign it */
  | 'ERR_CROSS_CERT_UNTRUSTED'
  /** a served chain certificate expires before the issuer certificate */
  | 'ERR_CROSS_CERT_EXPIRES_FIRST'
  /** the old anchor's pathLen leaves no room for the issuer and the cross certificate below it */
  | 'ERR_CROSS_PATHLEN';

/** Problems with the CA's own material (keys, certificates, chains). */
export class CredentialError extends LanyardError<CredentialErrorCode> {}

export type FileErrorCode = 'ERR_FILE_NOT_FOUND' | 'ERR_FILE_INVALID';

/** A file that is missing, or is not what it should be (size, layout, contents that are not PEM/JSON). */
export class FileError extends LanyardError<FileErrorCode> {}

/**
 * A value given to a function (by the operator, through whichever layer read it) that cannot be used.
 * `option`, when set, names the option the value was given for as the caller's options object spells
 * it (e.g. `permitDns`), and `problem` says what is wrong with the value: a command layer can then name
 * its own flag. The message is then `${option} ${problem}`.
 */
export class UsageError extends LanyardError<'ERR_USAGE'> {
  declare readonly option?: string;
  declare readonly problem?: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_USAGE', message, options);
  }

  /** The value given for `option` cannot be used: `problem` says why (e.g. `"a b" is not a DNS name`). */
  static forOption(option: string, problem: string): UsageError {
    const err = new UsageError(`${option} ${problem}`);
    return Object.assign(err, { option, problem });
  }
}

/** A check of Lanyard's own work failed (a bug, not the caller's input). */
export class InternalError extends LanyardError<'ERR_INTERNAL'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_INTERNAL', message, options);
  }
}

/** Every code the PKI kernel raises. */
export type CaErrorCode =
  | InvalidRequestErrorCode
  | PolicyErrorCode
  | CredentialErrorCode
  | FileErrorCode
  | 'ERR_USAGE'
  | 'ERR_INTERNAL';

export function isLanyardError(err: unknown): err is LanyardError {
  return err instanceof LanyardError;
}

/**
 * `err` again, under `message` (which says where it happened): the same class, code and fields, with
 * `err` as its cause. For layers that add context without changing what kind of error it is.
 */
export function restateError<E extends LanyardError>(err: E, message: string): E {
  const restated = Object.assign(Object.create(Object.getPrototypeOf(err) as object) as E, err);
  Object.defineProperty(restated, 'message', { value: message, writable: true, configurable: true });
  Object.defineProperty(restated, 'cause', { value: err, writable: true, configurable: true });
  Error.captureStackTrace(restated, restateError);
  return restated;
}
