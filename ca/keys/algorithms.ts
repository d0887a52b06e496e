import { generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { CredentialError, UsageError } from '../errors.js';

export const KEY_ALGORITHMS = ['p256', 'p384', 'rsa2048', 'rsa3072', 'rsa4096'] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];
/** Issuers and leaves use ECDSA; RSA is for trust anchors only. */
export const EC_ALGORITHMS = ['p256', 'p384'] as const satisfies readonly KeyAlgorithm[];
export type EcKeyAlgorithm = (typeof EC_ALGORITHMS)[number];

export type SignatureAlgorithm = 'ecdsa-p256-sha256' | 'ecdsa-p384-sha384' | 'rsa-pkcs1-sha256';

const generate = promisify(generateKeyPair);

export function parseKeyAlgorithm(
  s: string,
  allowed: readonly KeyAlgorithm[] = KEY_ALGORITHMS,
): KeyAlgorithm {
  const found = allowed.find((a) => a === s);
  if (found === undefined)
    throw new UsageError(`unsupported key type "${s}"; use one of: ${allowed.join(', ')}`);
  return found;
}

export async function generateKey(alg: KeyAlgorithm): Promise<KeyObject> {
  switch (alg) {
    case 'p256':
      return (await generate('ec', { namedCurve: 'prime256v1' })).privateKey;
    case 'p384':
      return (await generate('ec', { namedCurve: 'secp384r1' })).privateKey;
    case 'rsa2048':
    case 'rsa3072':
    case 'rsa4096':
      return (await generate('rsa', { modulusLength: Number(alg.slice(3)), publicExponent: 0x10001 }))
        .privateKey;
  }
}

/** The KeyAlgorithm of a key object (private or public), or ERR_KEY_UNSUPPORTED. */
export function keyAlgorithmOf(key: KeyObject): KeyAlgorithm {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    if (details.namedCurve === 'prime256v1') return 'p256';
    if (details.namedCurve === 'secp384r1') return 'p384';
    throw new CredentialError(
      'ERR_KEY_UNSUPPORTED',
      `unsupported EC curve ${details.namedCurve ?? '(unknown)'}`,
    );
  }
  if (key.asymmetricKeyType === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (bits === 2048 || bits === 3072 || bits === 4096) return `rsa${bits}`;
    throw new CredentialError(
      'ERR_KEY_UNSUPPORTED',
      `unsupported RSA key size ${bits}; use 2048, 3072 or 4096`,
    );
  }
  throw new CredentialError(
    'ERR_KEY_UNSUPPORTED',
    `unsupported key type ${key.asymmetricKeyType ?? '(unknown)'}`,
  );
}

export function signatureAlgorithmFor(alg: KeyAlgorithm): SignatureAlgorithm {
  if (alg === 'p256') return 'ecdsa-p256-sha256';
  if (alg === 'p384') return 'ecdsa-p384-sha384';
  return 'rsa-pkcs1-sha256';
}

export function isEcAlgorithm(alg: KeyAlgorithm): alg is EcKeyAlgorithm {
  return alg === 'p256' || alg === 'p384';
}
