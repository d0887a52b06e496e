import { InvalidTokenError } from './errors.js';
import { quote } from './common.js';

const B64URL = /^[A-Za-z0-9_-]+$/;

/** What a token's own, unverified claims say, as far as the checks below need it. */
export interface TokenShape {
  /** the `exp` claim in epoch ms, when there is one */
  readonly expMs: number | undefined;
}

/**
 * Refuses, without asking anyone, a token that no API server could accept for `audience`: one that
 * is not a compact JWS (three base64url parts: a JSON header with an `alg` other than "none", a JSON
 * object of claims, a signature), whose `aud` claim does not include `audience`, or whose `exp` passed
 * more than `skewMs` ago. Service-account tokens (projected, and the legacy Secret ones) are all JWTs.
 * Nothing here is verified: a token that passes may still be forged, which the API server decides.
 * Throws InvalidTokenError (reason malformed, audience, expired or claims).
 */
export function checkTokenShape(
  token: string,
  o: { readonly audience: string; readonly nowMs: number; readonly skewMs: number },
): TokenShape {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((p) => B64URL.test(p))) {
    throw new InvalidTokenError('the token is not a JWT (three base64url parts separated by dots)', {
      reason: 'malformed',
    });
  }
  const header = jsonObject(parts[0] as string, 'header');
  if (typeof header.alg !== 'string' || header.alg === '' || header.alg.toLowerCase() === 'none') {
    throw new InvalidTokenError(`the token's header names no signing algorithm (alg ${quote(header.alg)})`, {
      reason: 'algorithm',
    });
  }
  const claims = jsonObject(parts[1] as string, 'claims');
  const aud = claims.aud;
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  if (!audiences.includes(o.audience)) {
    throw new InvalidTokenError(
      aud === undefined
        ? `the token has no "aud" claim, so it is not for ${quote(o.audience)}`
        : `the token's audience ${quote(aud)} does not include ${quote(o.audience)}`,
      { reason: 'audience' },
    );
  }
  const exp = claims.exp;
  if (exp === undefined) return { expMs: undefined };
  if (typeof exp !== 'number' || !Number.isFinite(exp))
    throw new InvalidTokenError('the token\'s "exp" claim is not a number', { reason: 'claims' });
  const expMs = exp * 1000;
  if (o.nowMs >= expMs + o.skewMs) {
    throw new InvalidTokenError(
      `the token expired at ${isoOrNumber(expMs)} (allowed clock skew ${o.skewMs / 1000} s)`,
      { reason: 'expired' },
    );
  }
  return { expMs };
}

function jsonObject(part: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    v = undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new InvalidTokenError(`the token's ${what} is not a JSON object`, { reason: 'malformed' });
  return v as Record<string, unknown>;
}

/** An instant for a message: ISO 8601, or the number when no Date can hold it. */
function isoOrNumber(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? `${ms / 1000} s after the epoch` : d.toISOString();
}
