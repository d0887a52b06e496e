import { type ServiceAccountRef } from '../../ca/index.js';

/** Options of one authentication. */
export interface AuthenticateOptions {
  /** aborted when the caller gives up (gRPC cancellation or deadline); network work stops then */
  readonly signal: AbortSignal;
  /**
   * the caller's transport address as gRPC reports it ("10.0.0.7:41234"), for per-caller limits;
   * absent when unknown
   */
  readonly peer?: string;
}

/** The pod a token was issued for, as the token (or the API server's TokenReview answer) names it. */
export interface CallerPod {
  /** metadata.name: a DNS-1123 subdomain */
  readonly name: string;
  /**
   * metadata.uid. The authenticators return a pod only with its uid (callerPodOf); optional for
   * stand-ins, and a pod without one vouches for nothing (the impersonation check refuses it)
   */
  readonly uid?: string;
}

/**
 * An authenticated service account. `pod` is there only from an authenticator created with
 * `callerPod: true` (the Istio API's, for the impersonation check) and a token that names its pod
 * (projected service-account tokens do: `kubernetes.io.pod`, TokenReview `user.extra`).
 */
export interface AuthenticatedAccount extends ServiceAccountRef {
  readonly pod?: CallerPod;
}

/**
 * Turns the token a proxy sent with its Certify call into the service account it speaks for.
 *
 * Obligations of every implementation:
 * - resolves to a frozen `{ namespace, name }` whose fields are DNS-1123 labels (plus a frozen `pod`
 *   when asked for and named by the token);
 * - rejects a token that is not valid with `InvalidTokenError` (ERR_TOKEN_INVALID), whose message
 *   names the check that failed and never contains the token itself;
 * - rejects with `AuthenticatorUnavailableError` (ERR_AUTHENTICATOR_UNAVAILABLE) when the backend it
 *   depends on cannot be reached, answers nonsense, or the caller's signal aborts the wait;
 * - never holds a lock across an `await` that callers could queue behind without bound.
 */
export interface Authenticator {
  /** short, stable name for logs and metrics: "jwt", "token-review", "static" */
  readonly name: string;
  authenticate(token: Uint8Array, opts: AuthenticateOptions): Promise<AuthenticatedAccount>;
  /** releases sockets and timers; idempotent */
  close?(): Promise<void>;
}
