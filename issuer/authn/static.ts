import { UsageError, isDns1123Label, type ServiceAccountRef } from '../../ca/index.js';
import { InvalidTokenError } from './errors.js';
import type { Authenticator } from './authenticator.js';
import { checkTokenSize, tokenCacheKey } from './common.js';

/**
 * For tests and local development only: a fixed table from token strings to service accounts.
 * Tokens are kept by SHA-256, never as given. Both names of every account must be DNS-1123 labels.
 */
export function createStaticAuthenticator(map: Readonly<Record<string, ServiceAccountRef>>): Authenticator {
  const table = new Map<string, ServiceAccountRef>();
  for (const [token, ref] of Object.entries(map)) {
    if (token === '') throw new UsageError('a static token must not be empty');
    if (!isDns1123Label(ref.namespace) || !isDns1123Label(ref.name)) {
      throw new UsageError(
        `static token for ${JSON.stringify(`${ref.namespace}/${ref.name}`)}: namespace and name must be DNS-1123 labels`,
      );
    }
    table.set(
      tokenCacheKey(Buffer.from(token, 'utf8')),
      Object.freeze({ namespace: ref.namespace, name: ref.name }),
    );
  }
  return {
    name: 'static',
    authenticate(token: Uint8Array): Promise<ServiceAccountRef> {
      return new Promise((resolve) => {
        checkTokenSize(token);
        const account = table.get(tokenCacheKey(token));
        if (account === undefined) {
          throw new InvalidTokenError(`the token is not one of the ${table.size} static tokens`, {
            reason: 'not-authenticated',
          });
        }
        resolve(account);
      });
    },
  };
}
