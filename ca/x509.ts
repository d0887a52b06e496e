// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata polyfill
// before the library is evaluated; importing x509 only through this module keeps that order.
import 'reflect-metadata';
import { Crypto } from '@peculiar/webcrypto';
import * as x509 from '@peculiar/x509';
import type { webcrypto as wc } from 'node:crypto';
import type { KeyAlgorithm } from './keys/algorithms.js';
import type { Signer } from './keys/signer.js';

export { x509 };

/** A copy on a plain ArrayBuffer, as the WebCrypto and x509 typings want (Buffers may sit on shared pools). */
export function bytes(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(b);
}

/** The WebCrypto implementation handed to @peculiar/x509 explicitly (no global provider registry). */
export const webcrypto: Crypto = new Crypto();

export function webcryptoAlgorithm(alg: KeyAlgorithm): wc.RsaHashedImportParams | wc.EcKeyImportParams {
  switch (alg) {
    case 'p256':
      return { name: 'ECDSA', namedCurve: 'P-256' };
    case 'p384':
      return { name: 'ECDSA', namedCurve: 'P-384' };
    default:
      return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  }
}

export function webcryptoSigningAlgorithm(alg: KeyAlgorithm): wc.Algorithm | wc.EcdsaParams {
  switch (alg) {
    case 'p256':
      return { name: 'ECDSA', hash: 'SHA-256' };
    case 'p384':
      return { name: 'ECDSA', hash: 'SHA-384' };
    default:
      return { name: 'RSASSA-PKCS1-v1_5' };
  }
}

/** The signer's key pair as WebCrypto keys, for @peculiar/x509's generators (anchors and issuers only). */
export async function toCryptoKeyPair(signer: Signer): Promise<wc.CryptoKeyPair> {
  const alg = webcryptoAlgorithm(signer.keyAlgorithm);
  const privateKey = await webcrypto.subtle.importKey('pkcs8', bytes(signer.exportPkcs8()), alg, false, [
    'sign',
  ]);
  const publicKey = await webcrypto.subtle.importKey('spki', bytes(signer.publicKeyDer), alg, true, [
    'verify',
  ]);
  return { privateKey, publicKey };
}
