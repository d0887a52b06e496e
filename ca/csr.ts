import { verify, type KeyObject } from 'node:crypto';
import { publicKeyFromSpki } from './keys/public-key.js';
import { isIP } from 'node:net';
import { OID, SIGNATURE_HASH } from './der/oids.js';
import {
  TAG,
  children,
  content,
  expectTag,
  readBitStringBytes,
  readOid,
  readRoot,
  readSmallInteger,
  whole,
  type Tlv,
} from './der/reader.js';
import { InvalidRequestError } from './errors.js';
import { decodeOnePem, looksLikePem } from './pem.js';

/** Largest CSR accepted, in bytes of DER (a P-256 CSR with two names is about 300). */
export const MAX_CSR_BYTES = 16 * 1024;
export const MIN_RSA_BITS = 2048;

export type CsrKeyType = 'p256' | 'p384' | `rsa${number}`;

export interface ParsedCsr {
  /** the request exactly as received, DER */
  readonly der: Buffer;
  /** SubjectPublicKeyInfo, DER: the only thing a leaf ever takes from a CSR */
  readonly spki: Buffer;
  readonly publicKey: KeyObject;
  readonly keyType: CsrKeyType;
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
 * Parses a PKCS#10 request (DER, or PEM without headers) and verifies its self-signature (proof of
 * possession of the private key). Each way of being wrong has its own code:
 * ERR_CSR_TOO_LARGE, ERR_PEM_*, ERR_DER_TRUNCATED, ERR_DER_TRAILING_DATA, ERR_CSR_MALFORMED,
 * ERR_CSR_UNSUPPORTED_KEY, ERR_CSR_WEAK_KEY, ERR_CSR_UNSUPPORTED_SIGNATURE, ERR_CSR_SIGNATURE.
 */
export function parseCsr(input: Uint8Array): ParsedCsr {
  if (input.length > MAX_CSR_BYTES * 2) {
    throw new InvalidRequestError(
      'ERR_CSR_TOO_LARGE',
      `CSR of ${input.length} bytes exceeds ${MAX_CSR_BYTES}`,
    );
  }
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

  const { keyType, publicKey } = readPublicKey(expectTag(spkiTlv, TAG.SEQUENCE, 'subjectPublicKeyInfo'));
  const { commonName, otherSubjectAttributes } = readSubject(expectTag(subject, TAG.SEQUENCE, 'subject'));
  const names = readRequestedNames(attrs);

  const algSeq = children(expectTag(sigAlg, TAG.SEQUENCE, 'signatureAlgorithm'));
  const algOid = readOid(expectTag(algSeq[0], TAG.OID, 'signatureAlgorithm'));
  const hash = SIGNATURE_HASH[algOid];
  if (hash === undefined) {
    throw new InvalidRequestError(
      'ERR_CSR_UNSUPPORTED_SIGNATURE',
      `unsupported CSR signature algorithm ${algOid}`,
    );
  }
  const isEcSig = algOid.startsWith('1.2.840.10045.4.');
  if (isEcSig !== keyType.startsWith('p')) {
    throw new InvalidRequestError(
      'ERR_CSR_UNSUPPORTED_SIGNATURE',
      'CSR signature algorithm does not match its key type',
    );
  }
  const signature = readBitStringBytes(expectTag(sigBits, TAG.BIT_STRING, 'signature'), 'signature');
  let ok = false;
  try {
    ok = verify(hash, whole(infoTlv), publicKey, signature);
  } catch {
    ok = false;
  }
  if (!ok)
    throw new InvalidRequestError(
      'ERR_CSR_SIGNATURE',
      'CSR self-signature does not verify (no proof of possession of the key)',
    );

  return Object.freeze({
    der,
    spki: whole(spkiTlv as Tlv),
    publicKey,
    keyType,
    commonName,
    otherSubjectAttributes,
    ...names,
  });
}

function readPublicKey(spki: Tlv): { keyType: CsrKeyType; publicKey: KeyObject } {
  const [alg, bits] = children(spki);
  const algParts = children(expectTag(alg, TAG.SEQUENCE, 'public key algorithm'));
  const keyOid = readOid(expectTag(algParts[0], TAG.OID, 'public key algorithm'));
  const keyBits = readBitStringBytes(expectTag(bits, TAG.BIT_STRING, 'public key'), 'public key');
  let keyType: CsrKeyType;
  if (keyOid === OID.ecPublicKey) {
    const curveTlv = algParts[1];
    const curve = curveTlv?.tag === TAG.OID ? readOid(curveTlv) : '(explicit parameters)';
    if (curve === OID.p256) keyType = 'p256';
    else if (curve === OID.p384) keyType = 'p384';
    else throw new InvalidRequestError('ERR_CSR_UNSUPPORTED_KEY', `unsupported EC curve ${curve}; use P-256`);
  } else if (keyOid === OID.rsaEncryption) {
    keyType = 'rsa0';
  } else {
    throw new InvalidRequestError(
      'ERR_CSR_UNSUPPORTED_KEY',
      `unsupported public key algorithm ${keyOid}; use ECDSA P-256`,
    );
  }
  let publicKey: KeyObject;
  try {
    publicKey = publicKeyFromSpki(
      whole(spki),
      keyType === 'p256' || keyType === 'p384'
        ? { curve: keyType === 'p256' ? 'P-256' : 'P-384', point: keyBits }
        : undefined,
    );
  } catch (err) {
    throw new InvalidRequestError('ERR_CSR_MALFORMED', 'CSR public key is not a valid key', { cause: err });
  }
  if (keyType === 'rsa0') {
    const size = publicKey.asymmetricKeyDetails?.modulusLength ?? 0;
    if (size < MIN_RSA_BITS) {
      throw new InvalidRequestError(
        'ERR_CSR_WEAK_KEY',
        `RSA key of ${size} bits is below the minimum of ${MIN_RSA_BITS}`,
      );
    }
    keyType = `rsa${size}`;
  }
  return { keyType, publicKey };
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
