import { verify, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { OID, SIGNATURE_HASH } from './der/oids.js';
import {
  TAG,
  children,
  content,
  expectTag,
  readBitStringBytes,
  readIntegerBytes,
  readOid,
  readRoot,
  readSmallInteger,
  whole,
  type Tlv,
} from './der/reader.js';
import { bitString, oid, seq } from './der/writer.js';
import { InvalidRequestError } from './errors.js';
import { EC_COORDINATE_BYTES, publicKeyFromEcPoint, publicKeyFromSpki } from './keys/public-key.js';
import { decodeOnePem, looksLikePem } from './pem.js';

/** Largest CSR accepted, in bytes of DER (a P-256 CSR with two names is about 300). */
export const MAX_CSR_BYTES = 16 * 1024;
export const MIN_RSA_BITS = 2048;

export type CsrKeyType = 'p256' | 'p384' | `rsa${number}`;

/** What a CSR asks to be named. Strings are as the CSR encodes them (not validated, may hold any byte). */
export interface CsrNames {
  /** the subject's commonName, if it has one */
  readonly commonName: string | undefined;
  /** number of subject attributes other than one commonName */
  readonly otherSubjectAttributes: number;
  readonly dnsNames: readonly string[];
  readonly uris: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly emails: readonly string[];
  /** SAN entries of any other type (otherName, directoryName, …) */
  readonly otherNames: number;
}

/**
 * A verified request. Its buffers own their memory (one compact allocation, never a view into the
 * caller's input), so a cached ParsedCsr pins nothing else.
 */
export interface ParsedCsr extends CsrNames {
  /** the request exactly as received, DER */
  readonly der: Buffer;
  /**
   * SubjectPublicKeyInfo DER, the only thing a leaf ever takes from a CSR: the CA's canonical
   * encoding of the verified key, not the CSR's bytes
   */
  readonly spki: Buffer;
  readonly publicKey: KeyObject;
  readonly keyType: CsrKeyType;
}

/** A request whose key the CA will refuse; its self-signature was not checked, nothing is signed for it. */
export interface RefusedKeyCsr extends CsrNames {
  readonly keyType: 'unsupported';
  /** ERR_CSR_UNSUPPORTED_KEY or ERR_CSR_WEAK_KEY: what parseCsr throws for this request */
  readonly keyError: InvalidRequestError;
}

export type LenientCsr = ParsedCsr | RefusedKeyCsr;

/**
 * Parses a PKCS#10 request (DER, or PEM without headers) and verifies its self-signature (proof of
 * possession of the private key). Each way of being wrong has its own code:
 * ERR_CSR_TOO_LARGE, ERR_PEM_*, ERR_DER_TRUNCATED, ERR_DER_TRAILING_DATA, ERR_DER_MALFORMED,
 * ERR_CSR_MALFORMED, ERR_CSR_UNSUPPORTED_KEY, ERR_CSR_WEAK_KEY, ERR_CSR_UNSUPPORTED_SIGNATURE,
 * ERR_CSR_SIGNATURE.
 */
export function parseCsr(input: Uint8Array): ParsedCsr {
  return readCsr(input, false) as ParsedCsr;
}

/**
 * parseCsr for a service that authenticates the caller before judging the key: a key the CA will
 * refuse (ERR_CSR_UNSUPPORTED_KEY, ERR_CSR_WEAK_KEY) is not thrown but returned as a RefusedKeyCsr
 * with its names, so that checkKeyAllowed throws it after authentication. Every other problem
 * throws as in parseCsr, and an accepted key's self-signature is verified as in parseCsr.
 */
export function parseCsrLenient(input: Uint8Array): LenientCsr {
  return readCsr(input, true);
}

function readCsr(input: Uint8Array, deferKeyErrors: boolean): LenientCsr {
  if (input.length > MAX_CSR_BYTES * 2) {
    throw new InvalidRequestError(
      'ERR_CSR_TOO_LARGE',
      `CSR of ${input.length} bytes exceeds ${MAX_CSR_BYTES}`,
    );
  }
  // a view into the caller's bytes while parsing; what is kept is copied at the end
  const der = looksLikePem(input)
    ? decodeOnePem(Buffer.from(input).toString('latin1'), 'CERTIFICATE REQUEST', 'CSR')
    : Buffer.from(input.buffer, input.byteOffset, input.length);
  if (der.length > MAX_CSR_BYTES) {
    throw new InvalidRequestError('ERR_CSR_TOO_LARGE', `CSR of ${der.length} bytes exceeds ${MAX_CSR_BYTES}`);
  }
  if (der.length === 0) throw new InvalidRequestError('ERR_CSR_MALFORMED', 'CSR is empty');

  const root = readRoot(der);
  const [info, sigAlg, sigBits, ...extra] = children(root);
  if (extra.length > 0) malformed('the request has more than three parts');
  const infoTlv = expectTag(info, TAG.SEQUENCE, 'certificationRequestInfo');
  const [version, subject, spkiTlv, attrs, ...infoExtra] = children(infoTlv);
  if (readSmallInteger(expectTag(version, TAG.INTEGER, 'version'), 'version') !== 0)
    malformed('unsupported CSR version');
  if (attrs === undefined || attrs.tag !== 0xa0 || infoExtra.length > 0)
    malformed('attributes are missing or malformed');

  const key = readPublicKey(expectTag(spkiTlv, TAG.SEQUENCE, 'subjectPublicKeyInfo'));
  if (key.refused !== undefined && !deferKeyErrors) throw key.refused;
  const { commonName, otherSubjectAttributes } = readSubject(expectTag(subject, TAG.SEQUENCE, 'subject'));
  const names = readRequestedNames(attrs);

  const algSeq = children(expectTag(sigAlg, TAG.SEQUENCE, 'signatureAlgorithm'));
  const algOid = readOid(expectTag(algSeq[0], TAG.OID, 'signatureAlgorithm'));
  if (key.refused !== undefined) {
    readBitStringBytes(expectTag(sigBits, TAG.BIT_STRING, 'signature'), 'signature');
    // No proof of possession is asked for a key that will be refused anyway.
    return Object.freeze({
      keyType: 'unsupported',
      keyError: key.refused,
      commonName,
      otherSubjectAttributes,
      ...names,
    });
  }
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
  if (isEcSig !== key.keyType.startsWith('p')) {
    throw new InvalidRequestError(
      'ERR_CSR_UNSUPPORTED_SIGNATURE',
      'CSR signature algorithm does not match its key type',
    );
  }
  const signature = readBitStringBytes(expectTag(sigBits, TAG.BIT_STRING, 'signature'), 'signature');
  let ok = false;
  try {
    ok = verify(hash, whole(infoTlv), key.publicKey, signature);
  } catch {
    ok = false;
  }
  if (!ok)
    throw new InvalidRequestError(
      'ERR_CSR_SIGNATURE',
      'CSR self-signature does not verify (no proof of possession of the key)',
    );

  // One exact-size allocation of its own for the request and the canonical SPKI, so that nothing
  // kept refers to the caller's (possibly much larger) buffer or to a shared pool slab.
  const { spkiHead, spkiBody } = key;
  const store = Buffer.allocUnsafeSlow(der.length + spkiHead.length + spkiBody.length);
  der.copy(store, 0);
  spkiHead.copy(store, der.length);
  spkiBody.copy(store, der.length + spkiHead.length);
  return Object.freeze({
    der: store.subarray(0, der.length),
    spki: store.subarray(der.length),
    publicKey: key.publicKey,
    keyType: key.keyType,
    commonName,
    otherSubjectAttributes,
    ...names,
  });
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

type KeyRead =
  | {
      readonly refused?: undefined;
      readonly keyType: CsrKeyType;
      readonly publicKey: KeyObject;
      /** the canonical SPKI is spkiHead ‖ spkiBody */
      readonly spkiHead: Buffer;
      readonly spkiBody: Buffer;
    }
  | { readonly refused: InvalidRequestError };

const EMPTY = Buffer.alloc(0);

/**
 * Reads a SubjectPublicKeyInfo strictly: exactly an AlgorithmIdentifier and a BIT STRING with no
 * unused bits. EC: exactly id-ecPublicKey and a named curve, an uncompressed point of the curve's size
 * on the curve. RSA: parameters exactly NULL, the key exactly SEQ{n, e} of positive minimal INTEGERs.
 * A key of a kind the CA never signs is returned as `refused` (ERR_CSR_UNSUPPORTED_KEY, ERR_CSR_WEAK_KEY).
 */
function readPublicKey(spki: Tlv): KeyRead {
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
    let publicKey: KeyObject;
    try {
      publicKey = publicKeyFromEcPoint(ec.curve, keyBits);
    } catch (err) {
      throw new InvalidRequestError('ERR_CSR_MALFORMED', 'CSR public key is not a valid key', { cause: err });
    }
    return { keyType: ec.keyType, publicKey, spkiHead: ec.head, spkiBody: keyBits };
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
    for (const [i, what] of ['modulus', 'exponent'].entries()) {
      const c = readIntegerBytes(rsaKey[i] as Tlv, `RSA ${what}`);
      if (((c[0] as number) & 0x80) !== 0) malformed(`the RSA ${what} is negative`);
    }
    let publicKey: KeyObject;
    try {
      publicKey = publicKeyFromSpki(whole(spki));
    } catch (err) {
      throw new InvalidRequestError('ERR_CSR_MALFORMED', 'CSR public key is not a valid key', { cause: err });
    }
    const size = publicKey.asymmetricKeyDetails?.modulusLength ?? 0;
    if (size < MIN_RSA_BITS) {
      return refuse('ERR_CSR_WEAK_KEY', `RSA key of ${size} bits is below the minimum of ${MIN_RSA_BITS}`);
    }
    // re-encoded by OpenSSL from n and e; RSA keys are parsed but never allowed into a leaf today
    const canonical = publicKey.export({ type: 'spki', format: 'der' });
    return { keyType: `rsa${size}`, publicKey, spkiHead: EMPTY, spkiBody: canonical };
  }
  return refuse('ERR_CSR_UNSUPPORTED_KEY', `unsupported public key algorithm ${keyOid}; use ECDSA P-256`);
}

function refuse(code: 'ERR_CSR_UNSUPPORTED_KEY' | 'ERR_CSR_WEAK_KEY', message: string): KeyRead {
  return { refused: new InvalidRequestError(code, message) };
}

function readSubject(name: Tlv): { commonName: string | undefined; otherSubjectAttributes: number } {
  let commonName: string | undefined;
  let other = 0;
  for (const rdn of children(name)) {
    for (const atv of children(expectTag(rdn, TAG.SET, 'subject RDN'))) {
      const [type, value] = children(expectTag(atv, TAG.SEQUENCE, 'subject attribute'));
      const typeOid = readOid(expectTag(type, TAG.OID, 'subject attribute type'));
      if (typeOid === OID.commonName && commonName === undefined && value !== undefined) {
        commonName = content(value).toString('utf8');
      } else {
        other++;
      }
    }
  }
  return { commonName, otherSubjectAttributes: other };
}

function readRequestedNames(
  attrs: Tlv,
): Pick<ParsedCsr, 'dnsNames' | 'uris' | 'ipAddresses' | 'emails' | 'otherNames'> {
  const dnsNames: string[] = [];
  const uris: string[] = [];
  const ipAddresses: string[] = [];
  const emails: string[] = [];
  let otherNames = 0;
  for (const attr of children(attrs)) {
    const [type, values] = children(expectTag(attr, TAG.SEQUENCE, 'attribute'));
    if (readOid(expectTag(type, TAG.OID, 'attribute type')) !== OID.extensionRequest) continue;
    for (const exts of children(expectTag(values, TAG.SET, 'extensionRequest'))) {
      for (const ext of children(expectTag(exts, TAG.SEQUENCE, 'extensions'))) {
        const parts = children(expectTag(ext, TAG.SEQUENCE, 'extension'));
        if (readOid(expectTag(parts[0], TAG.OID, 'extension id')) !== OID.subjectAltName) continue;
        const value = parts[parts.length - 1];
        const sanDer = content(expectTag(value, TAG.OCTET_STRING, 'subjectAltName value'));
        for (const gn of children(readRoot(sanDer))) {
          const raw = content(gn);
          switch (gn.tag) {
            case 0x82:
              dnsNames.push(raw.toString('latin1'));
              break;
            case 0x86:
              uris.push(raw.toString('latin1'));
              break;
            case 0x81:
              emails.push(raw.toString('latin1'));
              break;
            case 0x87:
              ipAddresses.push(formatIp(raw));
              break;
            default:
              otherNames++;
          }
        }
      }
    }
  }
  return { dnsNames, uris, ipAddresses, emails, otherNames };
}

function formatIp(raw: Buffer): string {
  if (raw.length === 4) return [...raw].join('.');
  if (raw.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(raw.readUInt16BE(i).toString(16));
    const s = groups.join(':');
    return isIP(s) === 6 ? s : raw.toString('hex');
  }
  return raw.toString('hex');
}

function malformed(why: string): never {
  throw new InvalidRequestError('ERR_CSR_MALFORMED', `malformed CSR: ${why}`);
}
