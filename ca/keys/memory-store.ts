import type { KeyObject } from 'node:crypto';
import { CredentialError, FileError } from '../errors.js';
import { generateKey } from './algorithms.js';
import { createKeyObjectSigner, type SyncSigner } from './signer.js';
import type { KeyStore } from './store.js';

/** Keys held in memory only (tests, throw-away trees). */
export function createMemoryKeyStore(): KeyStore<SyncSigner> & { readonly size: number } {
  const keys = new Map<string, KeyObject>();
  return {
    get size() {
      return keys.size;
    },
    load(ref) {
      const key = keys.get(ref);
      if (key === undefined)
        return Promise.reject(new FileError('ERR_FILE_NOT_FOUND', `no key "${ref}" in memory`));
      return Promise.resolve(createKeyObjectSigner(key));
    },
    async create(ref, alg, options = {}) {
      const refuse = (): void => {
        if (keys.has(ref) && options.force !== true)
          throw new CredentialError(
            'ERR_KEY_EXISTS',
            `key "${ref}" already exists; pass --force to replace it`,
          );
      };
      refuse();
      const key = await generateKey(alg);
      refuse(); // a concurrent create may have won meanwhile
      keys.set(ref, key);
      return createKeyObjectSigner(key);
    },
  };
}
