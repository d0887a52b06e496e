import { createPrivateKey, type KeyObject } from 'node:crypto';
import { FileError } from '../errors.js';
import { decodeOnePem, decodePem, encodePem } from '../pem.js';
import { keyAlgorithmOf } from './algorithms.js';

/**
 * A strict private key PEM: PKCS#8 ("PRIVATE KEY"), or SEC1 ("EC PRIVATE KEY"); anything else
 * (encrypted, PKCS#1, headers) is refused. Only the key stores call this.
 */
export function parsePrivateKeyPem(text: string, what: string): KeyObject {
  // SEC1 is what cert-manager writes for an ECDSA key by default, and what `step certificate create`
  // (Linkerd's documented way to make an issuer) writes
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

/** The PKCS#8 PEM the file store writes. */
export function privateKeyPem(key: KeyObject): string {
  return encodePem('PRIVATE KEY', key.export({ type: 'pkcs8', format: 'der' }));
}
