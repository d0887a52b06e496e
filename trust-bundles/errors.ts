import { LanyardError } from '../ca/index.js';

/** The codes trust-bundles/ adds to the PKI kernel's. */
export type TrustBundlesErrorCode = 'ERR_FETCH_FAILED';

/** Why a bounded GET failed (the code stays ERR_FETCH_FAILED). */
export type FetchFailure = 'unreachable' | 'status' | 'timeout' | 'too-large' | 'redirect' | 'cancelled';

/** A bundle or status document that could not be fetched within the limits. */
export class FetchError extends LanyardError<'ERR_FETCH_FAILED'> {
  readonly reason: FetchFailure;
  constructor(message: string, options: { reason: FetchFailure; cause?: unknown }) {
    super('ERR_FETCH_FAILED', message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.reason = options.reason;
  }
}
