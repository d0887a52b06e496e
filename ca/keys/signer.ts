import { createPublicKey, sign, type KeyObject } from 'node:crypto';
import { oid, seq } from '../der/index.js';
import { CredentialError } from '../errors.js';
import { OID } from '../der/index.js';
import { keyAlgorithmOf, signatureAlgorithmFor, type SignatureAlgorithm } from './algorithms.js';

/**
 * The signing seam: a key that signs TBS bytes and shows nothing but its public key. The private key
 * never leaves it, so a key held in an HSM or a KMS can implement it (its `sign` returns a Promise).
 * Everything else about the key (its KeyAlgorithm, a public KeyObject, the AlgorithmIdentifier) is
 * derived once by whoever needs it: see describeSigner.
 */
export interface Signer {
  readonly algorithm: SignatureAlgorithm;
  /** SubjectPublicKeyInfo, DER */
  readonly publicKeyDer: Buffer;
  /** the signature over `tbs`: DER ECDSA-Sig-Value for ECDSA, the PKCS#1 v1.5 block for RSA */
  sign(tbs: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

/**
 * A Signer whose key is in this process and signs synchronously (the file and memory key stores
 * return these). The leaf fast path (LeafTemplate) and CSRs need one, so Certify never awaits a
 * signature; anchors and issuers are built with any Signer.
 */
export interface SyncSigner extends Signer {
  sign(tbs: Uint8Array): Buffer;
}

const NULL = Buffer.from([0x05, 0x00]);

const SIGNATURE_ALGORITHM_DER: Readonly<Record<SignatureAlgorithm, Buffer>> = Object.freeze({
  'ecdsa-p256-sha256': seq(oid(OID.ecdsaWithSha256)),
  'ecdsa-p384-sha384': seq(oid(OID.ecdsaWithSha384)),
  'rsa-pkcs1-sha256': seq(oid(OID.sha256WithRsa), NULL),
});

/** The AlgorithmIdentifier (DER) of signatures made with `alg`; one shared buffer per algorithm, never write to it. */
export function signatureAlgorithmDer(alg: SignatureAlgorithm): Buffer {
  return SIGNATURE_ALGORITHM_DER[alg];
}

export function hashFor(alg: SignatureAlgorithm): 'sha256' | 'sha384' {
  return alg === 'ecdsa-p384-sha384' ? 'sha384' : 'sha256';
}

/**
 * A Signer over a node:crypto private KeyObject made once (the fast path signs in ≈ 30 µs). Used by
 * the key stores; the KeyObject stays in the closure and is never exported.
 */
export function createKeyObjectSigner(privateKey: KeyObject): SyncSigner {
  const algorithm = signatureAlgorithmFor(keyAlgorithmOf(privateKey));
  const hash = hashFor(algorithm);
  return Object.freeze({
    algorithm,
    publicKeyDer: createPublicKey(privateKey).export({ type: 'spki', format: 'der' }),
    sign: (tbs: Uint8Array) => sign(hash, tbs, privateKey),
  });
}

/**
 * `signer.sign(tbs)` when it answers synchronously, as a Buffer (no copy); ERR_KEY_UNSUPPORTED when
 * it answers with a Promise (a remote key cannot sign on the synchronous leaf and CSR paths).
 */
export function signNow(signer: Signer, tbs: Uint8Array): Buffer {
  const signature = signer.sign(tbs);
  if (Buffer.isBuffer(signature)) return signature;
  if (signature instanceof Uint8Array)
    return Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength);
  signature.catch(() => undefined);
  throw new CredentialError(
    'ERR_KEY_UNSUPPORTED',
    'this key signs asynchronously; leaves and CSRs are signed with a key this process holds',
  );
}
