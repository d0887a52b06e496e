// Every private key Lanyard signs with is reached through a KeyStore, as a Signer that never exports
// it. The only private keys read outside this folder are keys that are not used to sign through
// Lanyard at all, and must be handed whole to another library:
//  - the TLS serving key (issuer/serving-tls.ts), given to node:tls, which needs the key material;
//  - the JWT signing key of token minting (bin/token/token-mint.ts), given to jose;
//  - the demo pod agent's TLS key (bin/demo/pod-agent.ts), given to node:tls.
// Simulated proxies (bin/bench/workloads.ts, bin/demo/pod-identity.ts) make throw-away workload keys
// of their own with node:crypto: they stand for workloads, not for Lanyard.
// An HSM-held key for those would be an OpenSSL provider or engine matter, not a Signer.
import type { KeyObject } from 'node:crypto';
import { writeFilesAtomic, type AtomicFile } from '../fs.js';
import { readPemFile } from '../pem-file.js';
import { generateKey, type KeyAlgorithm } from './algorithms.js';
import { parsePrivateKeyPem, privateKeyPem } from './private-key-pem.js';
import { createKeyObjectSigner, type Signer, type SyncSigner } from './signer.js';

export interface CreateKeyOptions {
  /** replace an existing key; without it an existing key is ERR_KEY_EXISTS and is kept */
  readonly force?: boolean;
}

/**
 * Where CA keys live. `ref` is store-specific (a file path for the file store). `create` makes a new
 * key and keeps it; an existing key is never replaced without `force` (ERR_KEY_EXISTS). A missing
 * key is ERR_FILE_NOT_FOUND.
 */
export interface KeyStore<S extends Signer = Signer> {
  load(ref: string): Promise<S>;
  create(ref: string, alg: KeyAlgorithm, options?: CreateKeyOptions): Promise<S>;
}

/** A new key not yet written: its signer, and `commit` writing it together with other files. */
export interface StagedKey {
  readonly signer: SyncSigner;
  /**
   * Writes the key (0600) and `alongside` as one change (writeFilesAtomic): a certificate is written
   * with the key it belongs to or not at all.
   */
  commit(alongside?: readonly AtomicFile[]): Promise<void>;
}

/** PKCS#8 PEM files, mode 0600, written atomically (temp file, fsync, rename or link). */
export interface FileKeyStore extends KeyStore<SyncSigner> {
  /** a new key in memory, written only by `commit` (a certificate that fails to build leaves no key) */
  stage(path: string, alg: KeyAlgorithm, options?: CreateKeyOptions): Promise<StagedKey>;
  /**
   * The key in the PEM text of the file at `path`, already read by the caller as part of one snapshot
   * (an issuer directory read with its certificate and anchors).
   */
  fromPem(text: string, path: string): SyncSigner;
}

/**
 * The file key store: reads PKCS#8 or SEC1 PEM (bounded size), writes PKCS#8 PEM. The directory is
 * the caller's (made 0700 where Lanyard creates it); a missing one is ERR_FILE_NOT_FOUND.
 */
export function createFileKeyStore(): FileKeyStore {
  const stage = async (
    path: string,
    alg: KeyAlgorithm,
    options: CreateKeyOptions = {},
  ): Promise<StagedKey> => {
    const key = await generateKey(alg);
    return {
      signer: createKeyObjectSigner(key),
      commit: (alongside = []) => writeFilesAtomic([keyFile(path, key, options), ...alongside]),
    };
  };
  return {
    async load(path) {
      return createKeyObjectSigner(parsePrivateKeyPem(await readPemFile(path), path));
    },
    async create(path, alg, options) {
      const staged = await stage(path, alg, options);
      await staged.commit();
      return staged.signer;
    },
    stage,
    fromPem: (text, path) => createKeyObjectSigner(parsePrivateKeyPem(text, path)),
  };
}

function keyFile(path: string, key: KeyObject, options: CreateKeyOptions): AtomicFile {
  return { path, data: privateKeyPem(key), mode: 0o600, overwrite: options.force === true };
}
