import { InvalidTokenError } from './errors.js';
import type { AuthenticatedAccount } from './authenticator.js';
import { callerPodOf, parseServiceAccountUsername, quote } from './common.js';

/** What the claims of a signature-verified token must say. */
export interface ClaimRules {
  /** required value of `iss` */
  readonly issuer: string;
  /** required member of `aud` */
  readonly audience: string;
  /** tolerance for exp, nbf and iat, ms */
  readonly skewMs: number;
  /** also return the pod the `kubernetes.io` claim names (AuthenticatedAccount.pod); default false */
  readonly callerPod?: boolean;
}

/**
 * Checks the claims of a token whose signature verified: iss, aud, exp (required), nbf and iat (with
 * `skewMs` tolerance), then the service account from `sub` and `kubernetes.io`. Returns the account
 * and the token's exp in epoch ms; throws InvalidTokenError naming the check that failed.
 */
export function checkClaims(
  payload: Record<string, unknown>,
  rules: ClaimRules,
  now: Date,
): { account: AuthenticatedAccount; expMs: number } {
  if (payload.iss !== rules.issuer) {
    throw new InvalidTokenError(
      payload.iss === undefined
        ? 'the token has no "iss" claim'
        : `the token's issuer ${quote(payload.iss)} is not the expected ${quote(rules.issuer)}`,
      { reason: 'issuer' },
    );
  }
  const aud = payload.aud;
  if (aud === undefined) throw new InvalidTokenError('the token has no "aud" claim', { reason: 'audience' });
  if (!(aud === rules.audience || (Array.isArray(aud) && aud.includes(rules.audience)))) {
    throw new InvalidTokenError(
      `the token's audience ${quote(aud)} does not include ${quote(rules.audience)}`,
      { reason: 'audience' },
    );
  }
  const exp = checkTimes(payload, rules.skewMs, now);
  if (payload.sub === undefined)
    throw new InvalidTokenError('the token has no "sub" claim', { reason: 'subject' });
  return { account: accountOf(payload, rules.callerPod === true), expMs: exp * 1000 };
}

/** exp (required, passed by less than the skew), nbf and iat (not ahead by more than it); the exp, s. */
function checkTimes(payload: Record<string, unknown>, skewMs: number, now: Date): number {
  const nowS = now.getTime() / 1000;
  const tol = skewMs / 1000;
  const s = tol.toString();
  const exp = payload.exp;
  if (exp === undefined) throw new InvalidTokenError('the token has no "exp" claim', { reason: 'claims' });
  if (typeof exp !== 'number' || !Number.isFinite(exp))
    throw new InvalidTokenError('the token\'s "exp" claim is not a number', { reason: 'claims' });
  if (nowS >= exp + tol)
    throw new InvalidTokenError(
      `the token expired at ${isoOf(exp)} (now ${now.toISOString()}, allowed clock skew ${s} s)`,
      { reason: 'expired' },
    );
  const times = { nowS, tol, now };
  notAhead(payload.nbf, 'nbf', times, (at) => `the token is not valid before ${at}`);
  notAhead(payload.iat, 'iat', times, (at) => `the token was issued at ${at}, in the future`);
  return exp;
}

/** A time claim that, when present, must be a number not ahead of now by more than the skew. */
function notAhead(
  value: unknown,
  claim: 'nbf' | 'iat',
  t: { readonly nowS: number; readonly tol: number; readonly now: Date },
  what: (at: string) => string,
): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new InvalidTokenError(`the token's "${claim}" claim is not a number`, { reason: 'claims' });
  if (t.nowS < value - t.tol)
    throw new InvalidTokenError(
      `${what(isoOf(value))} (now ${t.now.toISOString()}, allowed clock skew ${t.tol.toString()} s)`,
      { reason: 'not-yet-valid' },
    );
}

/** A claim time for a message; times outside the Date range (±8.64e15 ms) are quoted, never thrown on. */
function isoOf(seconds: unknown): string {
  return typeof seconds === 'number' && Number.isFinite(seconds) && Math.abs(seconds * 1000) <= 8.64e15
    ? new Date(seconds * 1000).toISOString()
    : quote(seconds);
}

/**
 * The service account of verified claims: `sub` shape and the `kubernetes.io` claim must agree; with
 * `withPod`, the pod of `kubernetes.io.pod` too, when it names one.
 */
function accountOf(payload: Record<string, unknown>, withPod: boolean): AuthenticatedAccount {
  const sub = payload.sub;
  const account = typeof sub === 'string' ? parseServiceAccountUsername(sub) : undefined;
  if (account === undefined) {
    throw new InvalidTokenError(
      `the token's subject (sub) ${quote(sub)} is not system:serviceaccount:<namespace>:<name> with DNS-1123 labels`,
      { reason: 'subject' },
    );
  }
  const k8s = payload['kubernetes.io'];
  if (k8s !== undefined) {
    if (typeof k8s !== 'object' || k8s === null) {
      throw new InvalidTokenError('the token\'s "kubernetes.io" claim is not an object', {
        reason: 'subject',
      });
    }
    const ns = (k8s as { namespace?: unknown }).namespace;
    const sa = (k8s as { serviceaccount?: { name?: unknown } }).serviceaccount;
    const saName = typeof sa === 'object' && sa !== null ? sa.name : undefined;
    if (ns !== account.namespace) {
      throw new InvalidTokenError(
        `the token's "kubernetes.io" namespace ${quote(ns)} disagrees with its subject's namespace ${quote(account.namespace)}`,
        { reason: 'subject' },
      );
    }
    if (saName !== account.name) {
      throw new InvalidTokenError(
        `the token's "kubernetes.io" service account ${quote(saName)} disagrees with its subject's name ${quote(account.name)}`,
        { reason: 'subject' },
      );
    }
    const pod = withPod ? podOf((k8s as { pod?: unknown }).pod) : undefined;
    if (pod !== undefined) return Object.freeze({ ...account, pod });
  }
  return account;
}

/** `kubernetes.io.pod` ({ name, uid }) as a CallerPod, when it is one. */
function podOf(claim: unknown): AuthenticatedAccount['pod'] {
  if (typeof claim !== 'object' || claim === null) return undefined;
  const { name, uid } = claim as { name?: unknown; uid?: unknown };
  return callerPodOf(name, uid);
}
