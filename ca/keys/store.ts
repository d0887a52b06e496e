import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { CredentialError, FileError } from '../errors.js';
import { writeFileAtomic } from '../fs.js';
import { decodeOnePem, decodePem, encodePem } from '../pem.js';
import { generateKey, keyAlgorithmOf, type KeyAlgorithm } from './algorithms.js';
import { createKeyObjectSigner, type Signer } from './signer.js';

/** Where CA keys live. `ref` is store-specific (a file path for the file store). */
export interface KeyStore {
  load(ref: string): Promise<Signer>;
  create(ref: string, alg: KeyAlgorithm, options?: { force?: boolean }): Promise<Signer>;
}

/** PKCS#8 PEM files, mode 0600, written atomically; an existing key is never replaced without `force`. */
export function createFileKeyStore(): KeyStore {
  return {
    async load(path) {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        throw new FileError('ERR_FILE_NOT_FOUND', `cannot read key ${path}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      return createKeyObjectSigner(parsePrivateKeyPem(text, path));
    },
    async create(path, alg, options = {}) {
      const key = await generateKey(alg);
      const pem = encodePem('PRIVATE KEY', key.export({ type: 'pkcs8', format: 'der' }));
      await writeFileAtomic(path, pem, { mode: 0o600, overwrite: options.force === true });
      return createKeyObjectSigner(key);
    },
  };
}

/** Keys held in memory only (tests, `lanyard dev`). */
export function createMemoryKeyStore(): KeyStore & { readonly size: number } {
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
      if (keys.has(ref) && options.force !== true) {
        throw new CredentialError('ERR_KEY_EXISTS', `key "${ref}" already exists`);
      }
      const key = await generateKey(alg);
      keys.set(ref, key);
      return createKeyObjectSigner(key);
    },
  };
}

/** A strict PKCS#8 "PRIVATE KEY" PEM; anything else (encrypted, SEC1, headers) is refused. */
export function parsePrivateKeyPem(text: string, what: string): KeyObject {
  // PKCS#8 ("PRIVATE KEY"), or SEC1 ("EC PRIVATE KEY"): what cert-manager writes for an ECDSA key by
  // default, and what `step certificate create` (Linkerd's documented way to make an issuer) writes
  const blocks = decodePem(text);
  const sec1 = blocks.length === 1 && blocks[0]?.label === 'EC PRIVATE KEY' ? blocks[0].der : undefined;
  const der = sec1 ?? decodeOnePem(text, 'PRIVATE KEY', what);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: der, format: 'der', type: sec1 !== undefined ? 'sec1' : 'pkcs8' });
  } catch (err) {
    throw new FileError(
      'ERR_FILE_INVALID',
      `${what}: not a valid ${sec1 !== undefined ? 'SEC1 EC' : 'PKCS#8'} private key`,
      { cause: err },
    );
  }
  keyAlgorithmOf(key);
  return key;
}
