// Keys: the Signer seam (no private-key export) and the KeyStores every private key is reached through.
export {
  KEY_ALGORITHMS,
  EC_ALGORITHMS,
  type KeyAlgorithm,
  type EcKeyAlgorithm,
  type SignatureAlgorithm,
  parseKeyAlgorithm,
  generateKey,
  keyAlgorithmOf,
} from './algorithms.js';
export {
  type Signer,
  type SyncSigner,
  createKeyObjectSigner,
  signNow,
  hashFor,
  signatureAlgorithmDer,
} from './signer.js';
export { EC_COORDINATE_BYTES, publicKeyFromEcPoint, publicKeyFromSpki } from './public-key.js';
export { type SignerDescription, describeSigner, signChecked } from './describe.js';
export {
  type KeyStore,
  type FileKeyStore,
  type StagedKey,
  type CreateKeyOptions,
  createFileKeyStore,
} from './store.js';
export { createMemoryKeyStore } from './memory-store.js';
