import { type Clock } from '../../ca/index.js';
import type { AuthenticatedAccount } from './authenticator.js';
import { InvalidTokenError } from './errors.js';
import { quote } from './common.js';
import { keysForToken, type JwksKey } from './jwks.js';
import type { JwksKeyStore } from './jwks-keys.js';
import { parseCompactJws, verifyJwsSignature } from './jws.js';
import { checkClaims, type ClaimRules } from './jwt-claims.js';

export interface JwtVerifierOptions extends ClaimRules {
  readonly store: JwksKeyStore;
  /** accepted JWS algorithms (already validated: never "none" nor HS*) */
  readonly algorithms: readonly string[];
  readonly clock: Clock;
}

/** Counters since creation. */
export interface JwtVerifierStats {
  /** full verifications attempted (signature and claims) */
  readonly verifications: number;
  /** key look-ups for a token's header */
  readonly keyResolutions: number;
}

/** What a verified token vouches for, and what vouched for it. */
export interface VerifiedJwt {
  readonly account: AuthenticatedAccount;
  /** its `exp`, epoch ms (checked) */
  readonly expMs: number;
  /** the fingerprint of the JWKS key its signature verified with (JwksKey.fingerprint) */
  readonly keyFingerprint: string;
}

/** One token, fully checked: header, key, signature, claims. No cache here. */
export interface JwtVerifier {
  verify(text: string, signal: AbortSignal): Promise<VerifiedJwt>;
  stats(): JwtVerifierStats;
}

export function createJwtVerifier(o: JwtVerifierOptions): JwtVerifier {
  const stats = { verifications: 0, keyResolutions: 0 };
  return {
    /**
     * Header (alg allowed, no `crit`, no `b64`), key by kid, signature, then the claims
     * (jwt-claims.ts checkClaims).
     */
    async verify(text, signal) {
      stats.verifications++;
      const jws = parseCompactJws(text);
      const { header } = jws;
      const alg = checkHeader(header, o.algorithms);
      stats.keyResolutions++;
      const keys = await resolveKeys(o.store, header, alg, signal);
      const key = keys.find((k) => verifyJwsSignature(alg, k.key, jws.signingInput, jws.signature));
      if (key === undefined) {
        throw new InvalidTokenError(
          `the token's signature does not verify with the JWKS key${typeof header.kid === 'string' ? ` ${quote(header.kid)}` : ''}`,
          { reason: 'signature' },
        );
      }
      const { account, expMs } = checkClaims(jws.payload, o, o.clock.now());
      return { account, expMs, keyFingerprint: key.fingerprint };
    },
    stats: () => ({ ...stats }),
  };
}

/** The header's `alg` when it is allowed and the header asks for nothing unsupported. */
function checkHeader(header: Record<string, unknown>, algorithms: readonly string[]): string {
  const alg = header.alg;
  if (typeof alg !== 'string' || !algorithms.includes(alg)) {
    throw new InvalidTokenError(
      `the token's signing algorithm (alg) ${quote(alg)} is not allowed; allowed: ${algorithms.join(', ')}`,
      { reason: 'algorithm' },
    );
  }
  if (header.crit !== undefined)
    throw new InvalidTokenError(
      'the token has critical header parameters ("crit"), which are not supported',
      {
        reason: 'algorithm',
      },
    );
  if (header.b64 !== undefined)
    throw new InvalidTokenError(
      'the token uses the unencoded payload option ("b64"), which is not supported',
      {
        reason: 'algorithm',
      },
    );
  return alg;
}

/** The keys the token's signature is checked against (jwks.ts keysForToken), re-reading for an unknown kid. */
async function resolveKeys(
  store: JwksKeyStore,
  header: { kid?: unknown },
  alg: string,
  signal: AbortSignal,
): Promise<readonly JwksKey[]> {
  if (header.kid !== undefined && typeof header.kid !== 'string') {
    throw new InvalidTokenError('the token header "kid" is not a string', { reason: 'key' });
  }
  const kid = header.kid;
  const loadsBefore = store.stats().jwksLoads;
  let found = keysForToken(await store.keys(signal), kid, alg);
  // a key set loaded during this very call is as fresh as a re-read would make it
  const fresh = store.stats().jwksLoads > loadsBefore;
  if (found === 'no-kid-match' && kid !== undefined && !fresh) {
    const reread = await store.refetchForUnknownKid(signal);
    if (reread !== undefined) found = keysForToken(reread, kid, alg);
  }
  switch (found) {
    case 'no-kid-match':
      throw new InvalidTokenError(
        kid !== undefined
          ? `the token's key id (kid) ${quote(kid)} is not in the JWKS (${store.sourceName})`
          : 'the token has no key id (kid) and the JWKS has no key',
        { reason: 'key' },
      );
    case 'no-fit':
      throw new InvalidTokenError(
        `the JWKS key ${kid !== undefined ? `with kid ${quote(kid)} ` : ''}cannot verify the token's algorithm ${quote(alg)}`,
        { reason: 'key' },
      );
    case 'ambiguous':
      throw new InvalidTokenError('the token has no key id (kid) and several JWKS keys fit its algorithm', {
        reason: 'key',
      });
    default:
      return found;
  }
}
