// The public key of a PKCS#10 request, judged from its DER before anything is verified with it.
import type { KeyObject } from 'node:crypto';
import { OID } from './der/index.js';
import {
  TAG,
  children,
  expectTag,
  readBitStringBytes,
  readIntegerBytes,
  readOid,
  readRoot,
  whole,
  type Tlv,
} from './der/index.js';
import { bitString, oid, seq } from './der/index.js';
import { InvalidRequestError, PolicyError } from './errors.js';
import { EC_COORDINATE_BYTES, publicKeyFromEcPoint, publicKeyFromSpki } from './keys/index.js';
import { keyTypeRefusal } from './policy.js';

export const MIN_RSA_BITS = 2048;
/**
 * Largest RSA modulus read from a CSR, bits. The cost of verifying an RSA signature grows with the
 * modulus and the exponent, and both are the requester's choice: beyond these a key is refused
 * (ERR_CSR_UNSUPPORTED_KEY) before OpenSSL sees it.
 */
export const MAX_RSA_BITS = 8192;
/** Largest RSA public exponent read from a CSR, bits (65537 has 17). */
export const MAX_RSA_EXPONENT_BITS = 32;

export type CsrKeyType = 'p256' | 'p384' | `rsa${number}`;

/**
 * Which CSR keys a service takes: the key types listed, and, when `allowedRsa` is set, any RSA key of
 * minBits to maxBits with that public exponent (the Istio API; the Linkerd API lists types only).
 */
export interface CsrKeyPolicy<K extends CsrKeyType = CsrKeyType> {
  readonly allowedKeyTypes: readonly K[];
  readonly allowedRsa?: { readonly minBits: number; readonly maxBits: number; readonly exponent: number };
}

/** DER of SEQ{SEQ{id-ecPublicKey, curve}, BIT STRING header}: a canonical EC SPKI is this ‖ point. */
function ecSpkiHead(curveOid: string, pointBytes: number): Buffer {
  const full = seq(seq(oid(OID.ecPublicKey), oid(curveOid)), bitString(Buffer.alloc(pointBytes)));
  return Buffer.from(full.subarray(0, full.length - pointBytes));
}
const EC_CURVES = {
  [OID.p256]: {
    keyType: 'p256',
    curve: 'P-256',
    head: ecSpkiHead(OID.p256, 1 + 2 * EC_COORDINATE_BYTES['P-256']),
  },
  [OID.p384]: {
    keyType: 'p384',
    curve: 'P-384',
    head: ecSpkiHead(OID.p384, 1 + 2 * EC_COORDINATE_BYTES['P-384']),
  },
} as const satisfies Record<string, { keyType: CsrKeyType; curve: 'P-256' | 'P-384'; head: Buffer }>;

/** An EC key as read from its DER: not imported, so not yet checked to be on its curve. */
export interface EcKeyRead {
  readonly kind: 'ec';
  readonly keyType: 'p256' | 'p384';
  readonly curve: 'P-256' | 'P-384';
  /** the canonical SPKI is head ‖ point */
  readonly head: Buffer;
  readonly point: Buffer;
}
/** An RSA key as read from its DER, within the bounds: not imported. */
export interface RsaKeyRead {
  readonly kind: 'rsa';
  readonly keyType: `rsa${number}`;
  readonly bits: number;
  /** the public exponent (at most MAX_RSA_EXPONENT_BITS, so exact as a number) */
  readonly exponent: number;
  readonly spki: Buffer;
}
export interface RefusedKey {
  readonly kind: 'refused';
  readonly error: InvalidRequestError;
}
export type KeyRead = EcKeyRead | RsaKeyRead | RefusedKey;

const EMPTY = Buffer.alloc(0);

/**
 * Reads a SubjectPublicKeyInfo strictly, from its DER alone (nothing is handed to OpenSSL here):
 * exactly an AlgorithmIdentifier and a BIT STRING with no unused bits. EC: exactly id-ecPublicKey
 * and a named curve, an uncompressed point of the curve's size. RSA: parameters exactly NULL, the
 * key exactly SEQ{n, e} of positive minimal INTEGERs, n odd and of MIN_RSA_BITS to MAX_RSA_BITS,
 * e odd, at least 3 and of at most MAX_RSA_EXPONENT_BITS. A key of a kind the CA never signs, or
 * out of those bounds, is returned as `refused` (ERR_CSR_UNSUPPORTED_KEY, ERR_CSR_WEAK_KEY).
 */
export function readPublicKey(spki: Tlv): KeyRead {
  const parts = children(spki);
  if (parts.length !== 2) malformed('subjectPublicKeyInfo must hold exactly an algorithm and a key');
  const [alg, bits] = parts as [Tlv, Tlv];
  const algParts = children(expectTag(alg, TAG.SEQUENCE, 'public key algorithm'));
  const keyOid = readOid(expectTag(algParts[0], TAG.OID, 'public key algorithm'));
  const keyBits = readBitStringBytes(expectTag(bits, TAG.BIT_STRING, 'public key'), 'public key');
  if (keyOid === OID.ecPublicKey) {
    const params = algParts[1];
    if (algParts.length !== 2 || params === undefined)
      malformed('an EC key algorithm must hold exactly one parameter, the named curve');
    if (params.tag === TAG.SEQUENCE) {
      return refuse('ERR_CSR_UNSUPPORTED_KEY', 'explicit EC curve parameters are not supported; use P-256');
    }
    const curveOid = readOid(expectTag(params, TAG.OID, 'EC named curve'));
    const ec = (EC_CURVES as Partial<Record<string, (typeof EC_CURVES)[keyof typeof EC_CURVES]>>)[curveOid];
    if (ec === undefined)
      return refuse('ERR_CSR_UNSUPPORTED_KEY', `unsupported EC curve ${curveOid}; use P-256`);
    const n = EC_COORDINATE_BYTES[ec.curve];
    if (keyBits.length !== 1 + 2 * n || keyBits[0] !== 0x04) {
      if (keyBits.length === 1 + n && (keyBits[0] === 0x02 || keyBits[0] === 0x03))
        return refuse('ERR_CSR_UNSUPPORTED_KEY', 'compressed EC points are not supported');
      malformed(`the EC public key is not an uncompressed ${ec.curve} point`);
    }
    return { kind: 'ec', keyType: ec.keyType, curve: ec.curve, head: ec.head, point: keyBits };
  }
  if (keyOid === OID.rsaEncryption) {
    const params = algParts[1];
    if (algParts.length !== 2 || params?.tag !== TAG.NULL || params.end !== params.contentStart)
      malformed('RSA key algorithm parameters must be exactly NULL');
    let rsaKey: Tlv[];
    try {
      rsaKey = children(readRoot(keyBits));
    } catch (err) {
      throw new InvalidRequestError('ERR_CSR_MALFORMED', 'CSR RSA public key is not a valid key', {
        cause: err,
      });
    }
    if (rsaKey.length !== 2) malformed('an RSA public key must hold exactly a modulus and an exponent');
    const [n, e] = [0, 1].map((i) => {
      const what = i === 0 ? 'modulus' : 'exponent';
      const c = readIntegerBytes(rsaKey[i] as Tlv, `RSA ${what}`);
      if (((c[0] as number) & 0x80) !== 0) malformed(`the RSA ${what} is negative`);
      return c[0] === 0 ? c.subarray(1) : c;
    }) as [Buffer, Buffer];
    const size = bitLength(n);
    const eBits = bitLength(e);
    if (size > 0 && ((n[n.length - 1] as number) & 1) === 0) malformed('the RSA modulus is even');
    if (eBits < 2 || ((e[e.length - 1] as number) & 1) === 0)
      malformed('the RSA exponent must be odd and at least 3');
    if (size < MIN_RSA_BITS) {
      return refuse('ERR_CSR_WEAK_KEY', `RSA key of ${size} bits is below the minimum of ${MIN_RSA_BITS}`);
    }
    if (size > MAX_RSA_BITS) {
      return refuse(
        'ERR_CSR_UNSUPPORTED_KEY',
        `RSA key of ${size} bits is above the maximum of ${MAX_RSA_BITS}`,
      );
    }
    if (eBits > MAX_RSA_EXPONENT_BITS) {
      return refuse(
        'ERR_CSR_UNSUPPORTED_KEY',
        `RSA public exponent of ${eBits} bits is above the maximum of ${MAX_RSA_EXPONENT_BITS}; use 65537`,
      );
    }
    return {
      kind: 'rsa',
      keyType: `rsa${size}`,
      bits: size,
      exponent: e.readUIntBE(0, e.length),
      spki: whole(spki),
    };
  }
  return refuse('ERR_CSR_UNSUPPORTED_KEY', `unsupported public key algorithm ${keyOid}; use ECDSA P-256`);
}

/**
 * A key the CA never signs is refused whatever the policy; any other is refused when a policy is
 * given and does not list its type.
 */
export function judgeKey(
  key: KeyRead,
  policy: CsrKeyPolicy | undefined,
):
  | { readonly refused: InvalidRequestError | PolicyError; readonly accepted?: undefined }
  | { readonly refused?: undefined; readonly accepted: EcKeyRead | RsaKeyRead } {
  if (key.kind === 'refused') return { refused: key.error };
  if (policy === undefined) return { accepted: key };
  const rsa = policy.allowedRsa;
  if (key.kind === 'rsa' && rsa !== undefined && !policy.allowedKeyTypes.includes(key.keyType)) {
    const fits = key.bits >= rsa.minBits && key.bits <= rsa.maxBits && key.exponent === rsa.exponent;
    if (fits) return { accepted: key };
    return {
      refused: new PolicyError(
        'ERR_KEY_NOT_ALLOWED',
        `RSA key of ${key.bits} bits with exponent ${key.exponent} is not allowed; use ${rsa.minBits} to ${rsa.maxBits} bits with exponent ${rsa.exponent}`,
      ),
    };
  }
  const refused = keyTypeRefusal(key.keyType, policy.allowedKeyTypes);
  return refused === undefined ? { accepted: key } : { refused };
}

/** The key as a KeyObject and its canonical SPKI (head ‖ body): the only place a CSR's key reaches OpenSSL. */
export function importKey(key: EcKeyRead | RsaKeyRead): {
  publicKey: KeyObject;
  spkiHead: Buffer;
  spkiBody: Buffer;
} {
  let publicKey: KeyObject;
  try {
    // OpenSSL checks an EC point is on its curve
    publicKey = key.kind === 'ec' ? publicKeyFromEcPoint(key.curve, key.point) : publicKeyFromSpki(key.spki);
  } catch (err) {
    throw new InvalidRequestError('ERR_CSR_MALFORMED', 'CSR public key is not a valid key', { cause: err });
  }
  if (key.kind === 'ec') return { publicKey, spkiHead: key.head, spkiBody: key.point };
  // re-encoded by OpenSSL from n and e (RSA keys reach a leaf only through the Istio API's policy)
  return { publicKey, spkiHead: EMPTY, spkiBody: publicKey.export({ type: 'spki', format: 'der' }) };
}

/** Bits of a big-endian unsigned magnitude without leading zero bytes. */
function bitLength(mag: Buffer): number {
  if (mag.length === 0) return 0;
  return (mag.length - 1) * 8 + (32 - Math.clz32(mag[0] as number));
}

function refuse(code: 'ERR_CSR_UNSUPPORTED_KEY' | 'ERR_CSR_WEAK_KEY', message: string): RefusedKey {
  return { kind: 'refused', error: new InvalidRequestError(code, message) };
}

export function malformed(why: string): never {
  throw new InvalidRequestError('ERR_CSR_MALFORMED', `malformed CSR: ${why}`);
}
