import { LanyardError } from '../ca/index.js';

/** The codes trust-bundles/ adds to the PKI kernel's. */
export type TrustBundlesErrorCode = 'ERR_FETCH_FAILED' | RotationInputErrorCode | 'ERR_PODS_INVALID';

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

/** The inputs `rotate` may need to establish a step's precondition and print its commands. */
export type RotationInput = 'new-anchor' | 'cross-signed' | 'old-anchor' | 'kubeconfig';

/** missing: not given; invalid: given, but it does not establish the precondition (a cross certificate not for B, not under an anchor of every bundle) */
export type RotationInputErrorCode = 'ERR_ROTATION_INPUT_MISSING' | 'ERR_ROTATION_INPUT_INVALID';

/**
 * `rotate` cannot establish a step's precondition without this input (the command layer turns it into a
 * usage error naming its flag): it prints no command it cannot justify.
 */
export class RotationInputError extends LanyardError<RotationInputErrorCode> {
  readonly input: RotationInput;
  constructor(code: RotationInputErrorCode, message: string, input: RotationInput) {
    super(code, message);
    this.input = input;
  }
}

/** A Kubernetes API answer that is not the PodList it should be. */
export class PodListError extends LanyardError<'ERR_PODS_INVALID'> {}
