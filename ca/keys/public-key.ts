import { createPublicKey, type KeyObject } from 'node:crypto';

/** Coordinate size of each curve a leaf may carry, bytes. */
export const EC_COORDINATE_BYTES = { 'P-256': 32, 'P-384': 48 } as const;

/**
 * A public KeyObject from an uncompressed EC point (0x04 ‖ X ‖ Y), imported from its coordinates as
 * a JWK, which is about 40 % cheaper than the DER import (≈ 66 µs against ≈ 110 µs). OpenSSL checks
 * the point is on the curve and throws otherwise; so does this for a point of the wrong form or size.
 */
export function publicKeyFromEcPoint(curve: 'P-256' | 'P-384', point: Buffer): KeyObject {
  const n = EC_COORDINATE_BYTES[curve];
  if (point.length !== 1 + 2 * n || point[0] !== 0x04) {
    throw new RangeError(`not an uncompressed ${curve} point`);
  }
  return createPublicKey({
    key: {
      kty: 'EC',
      crv: curve,
      x: point.subarray(1, 1 + n).toString('base64url'),
      y: point.subarray(1 + n).toString('base64url'),
    },
    format: 'jwk',
  });
}

/** A public KeyObject from SubjectPublicKeyInfo DER. */
export function publicKeyFromSpki(spki: Buffer): KeyObject {
  return createPublicKey({ key: spki, format: 'der', type: 'spki' });
}
