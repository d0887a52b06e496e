import { verify, type KeyObject } from 'node:crypto';
import { CredentialError } from '../errors.js';
import {
  keyAlgorithmOf,
  signatureAlgorithmFor,
  type KeyAlgorithm,
  type SignatureAlgorithm,
} from './algorithms.js';
import { publicKeyFromSpki } from './public-key.js';
import { hashFor, signatureAlgorithmDer, type Signer } from './signer.js';

/** What follows from a Signer's public key and algorithm; computed once per signer by whoever needs it. */
export interface SignerDescription {
  readonly keyAlgorithm: KeyAlgorithm;
  readonly algorithm: SignatureAlgorithm;
  readonly hash: 'sha256' | 'sha384';
  /** AlgorithmIdentifier of the signatures the signer makes, DER */
  readonly signatureAlgorithmDer: Buffer;
  /** the public key as a node:crypto KeyObject */
  readonly publicKey: KeyObject;
}

/**
 * The key algorithm, hash, AlgorithmIdentifier and public KeyObject of `signer`, checked against each
 * other: a signer whose public key is not one Lanyard signs with is ERR_KEY_UNSUPPORTED, and one whose
 * declared algorithm does not fit its key is ERR_KEY_MISMATCH.
 */
export function describeSigner(signer: Signer): SignerDescription {
  let publicKey: KeyObject;
  try {
    publicKey = publicKeyFromSpki(signer.publicKeyDer);
  } catch (err) {
    throw new CredentialError(
      'ERR_KEY_UNSUPPORTED',
      'the signer public key is not a valid SubjectPublicKeyInfo',
      {
        cause: err,
      },
    );
  }
  const keyAlgorithm = keyAlgorithmOf(publicKey);
  if (signatureAlgorithmFor(keyAlgorithm) !== signer.algorithm) {
    throw new CredentialError(
      'ERR_KEY_MISMATCH',
      `the signer says ${signer.algorithm} but holds a ${keyAlgorithm} key`,
    );
  }
  return Object.freeze({
    keyAlgorithm,
    algorithm: signer.algorithm,
    hash: hashFor(signer.algorithm),
    signatureAlgorithmDer: signatureAlgorithmDer(signer.algorithm),
    publicKey,
  });
}

/**
 * `signer.sign(tbs)`, awaited when it is asynchronous, and checked against the signer's public key
 * (ERR_KEY_MISMATCH otherwise): for anchors and issuers, made rarely and possibly by a remote key.
 */
export async function signChecked(
  signer: Signer,
  described: SignerDescription,
  tbs: Buffer,
): Promise<Buffer> {
  const signature = Buffer.from(await signer.sign(tbs));
  if (!verify(described.hash, tbs, described.publicKey, signature)) {
    throw new CredentialError('ERR_KEY_MISMATCH', 'the signature does not verify with the signer public key');
  }
  return signature;
}
