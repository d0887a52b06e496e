// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata polyfill
// before the library is evaluated; importing x509 only through this module keeps that order.
import 'reflect-metadata';
import { Crypto } from '@peculiar/webcrypto';
import * as x509 from '@peculiar/x509';
import type { webcrypto as wc } from 'node:crypto';
import { children, readIntegerBytes, readRoot } from './der/index.js';
import type { KeyAlgorithm } from './keys/index.js';
import { describeSigner } from './keys/index.js';
import type { Signer } from './keys/index.js';

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

/**
 * What @peculiar/x509's generators need to sign through `signer` alone (no private key leaves it):
 * a CryptoKey stand-in naming the key's algorithm, the signing algorithm, and a WebCrypto provider
 * whose `subtle.sign` calls `signer.sign` (ECDSA DER signatures are handed back as r ‖ s, the
 * WebCrypto form @peculiar/x509 expects). For tests and tools that build odd certificates; the
 * profiles build theirs with the DER writer (certificate-builder.ts).
 */
export function x509SigningWith(signer: Signer): {
  crypto: Crypto;
  signingKey: wc.CryptoKey;
  signingAlgorithm: wc.Algorithm | wc.EcdsaParams;
} {
  const { keyAlgorithm } = describeSigner(signer);
  const coordinate = keyAlgorithm === 'p256' ? 32 : keyAlgorithm === 'p384' ? 48 : undefined;
  const subtle = Object.create(webcrypto.subtle) as wc.SubtleCrypto;
  subtle.sign = async (_alg: unknown, _key: unknown, data: wc.BufferSource): Promise<ArrayBuffer> => {
    const view = ArrayBuffer.isView(data) ? data : new Uint8Array(data);
    const der = Buffer.from(await signer.sign(new Uint8Array(view.buffer, view.byteOffset, view.byteLength)));
    return (coordinate === undefined ? new Uint8Array(der) : ecdsaDerToRaw(der, coordinate)).buffer;
  };
  const crypto = Object.create(webcrypto, { subtle: { value: subtle } }) as Crypto;
  const signingKey = {
    type: 'private',
    extractable: false,
    usages: ['sign'],
    algorithm: webcryptoAlgorithm(keyAlgorithm),
  } as unknown as wc.CryptoKey;
  return { crypto, signingKey, signingAlgorithm: webcryptoSigningAlgorithm(keyAlgorithm) };
}

/** ECDSA-Sig-Value (DER) to r ‖ s, each left-padded to the coordinate size. */
function ecdsaDerToRaw(der: Buffer, size: number): Uint8Array<ArrayBuffer> {
  const [r, s] = children(readRoot(der)).map((t) => readIntegerBytes(t, 'ECDSA signature'));
  const out = new Uint8Array(2 * size);
  for (const [i, v] of [r, s].entries()) {
    const magnitude = (v ?? Buffer.alloc(0)).subarray(Math.max(0, (v?.length ?? 0) - size));
    out.set(magnitude, (i + 1) * size - magnitude.length);
  }
  return out;
}
