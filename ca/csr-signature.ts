// The self-signature of a PKCS#10 request: its algorithm checked against the request's key, then
// verified over certificationRequestInfo (proof of possession of the private key). CSR reading is on
// the Certify hot path: module-level functions called with the parsed pieces, no allocation of their own.
import { verify, type KeyObject } from 'node:crypto';
import { SIGNATURE_HASH, TAG, type Tlv } from './der/index.js';
import { InvalidRequestError } from './errors.js';
import { malformed, type EcKeyRead, type RsaKeyRead } from './csr-key.js';

/**
 * The hash of the request's signature algorithm `algOid` (`algSeq`: the AlgorithmIdentifier's
 * elements), for a signature by `key`. ERR_CSR_UNSUPPORTED_SIGNATURE for an unknown algorithm,
 * ERR_CSR_MALFORMED for parameters the algorithm does not have, ERR_CSR_UNSUPPORTED_SIGNATURE for an
 * algorithm of another key type; in that order.
 */
export function csrSignatureHash(
  algSeq: readonly Tlv[],
  algOid: string,
  key: EcKeyRead | RsaKeyRead,
): string {
  const hash = SIGNATURE_HASH[algOid];
  if (hash === undefined) {
    throw new InvalidRequestError(
      'ERR_CSR_UNSUPPORTED_SIGNATURE',
      `unsupported CSR signature algorithm ${algOid}`,
    );
  }
  const isEcSig = algOid.startsWith('1.2.840.10045.4.');
  // RFC 5758 §3.2: ECDSA signature algorithms have no parameters; RFC 4055 §5: RSA PKCS#1 v1.5
  // ones have NULL (absent is tolerated, as by OpenSSL). Anything else is not a well-formed request.
  const sigParams = algSeq.slice(1);
  if (
    sigParams.length > 1 ||
    (sigParams[0] !== undefined &&
      (isEcSig || sigParams[0].tag !== TAG.NULL || sigParams[0].end !== sigParams[0].contentStart))
  ) {
    malformed(
      isEcSig
        ? 'ECDSA signatureAlgorithm must have no parameters'
        : 'RSA signatureAlgorithm parameters must be NULL or absent',
    );
  }
  if (isEcSig !== (key.kind === 'ec')) {
    throw new InvalidRequestError(
      'ERR_CSR_UNSUPPORTED_SIGNATURE',
      'CSR signature algorithm does not match its key type',
    );
  }
  return hash;
}

/** ERR_CSR_SIGNATURE unless `signature` over `signed` verifies with `publicKey`. */
export function verifyCsrSignature(
  hash: string,
  signed: Buffer,
  publicKey: KeyObject,
  signature: Buffer,
): void {
  let ok = false;
  try {
    ok = verify(hash, signed, publicKey, signature);
  } catch {
    ok = false;
  }
  if (!ok)
    throw new InvalidRequestError(
      'ERR_CSR_SIGNATURE',
      'CSR self-signature does not verify (no proof of possession of the key)',
    );
}
