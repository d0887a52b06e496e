import type { KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { OID } from './der/index.js';
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
} from './der/index.js';
import { InvalidRequestError, type PolicyError } from './errors.js';
import {
  importKey,
  judgeKey,
  malformed,
  readPublicKey,
  type CsrKeyPolicy,
  type CsrKeyType,
} from './csr-key.js';
import { csrSignatureHash, verifyCsrSignature } from './csr-signature.js';
import { decodeOnePem, looksLikePem } from './pem.js';
import { KEY_IDENTIFIER_BYTES, keyIdentifier } from './profiles.js';

export {
  MIN_RSA_BITS,
  MAX_RSA_BITS,
  MAX_RSA_EXPONENT_BITS,
  type CsrKeyPolicy,
  type CsrKeyType,
} from './csr-key.js';

/** Largest CSR accepted, in bytes of DER (a P-256 CSR with two names is about 300). */
export const MAX_CSR_BYTES = 16 * 1024;

/** What a CSR asks to be named. Strings are as the CSR encodes them (not validated, may hold any byte). */
export interface CsrNames {
  /** the subject's commonName, if it has one */
  readonly commonName: string | undefined;
  /** number of subject attributes other than one commonName */
  readonly otherSubjectAttributes: number;
  /**
   * how many of those are an organizationName with an empty value (istio-agent's subject `O=`), so a
   * policy may allow them; always at most otherSubjectAttributes
   */
  readonly emptyOrganizations: number;
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
  /**
   * the leaf's SubjectKeyIdentifier for this key (keyIdentifier(spki)), computed once here so that
   * renewals of a cached request do not hash the key again
   */
  readonly subjectKeyId: Buffer;
  readonly publicKey: KeyObject;
  readonly keyType: CsrKeyType;
}

/**
 * A request whose key will be refused: nothing about the key was verified (no self-signature, no
 * key import), nothing is signed for it.
 */
export interface RefusedKeyCsr extends CsrNames {
  readonly keyType: 'unsupported';
  /**
   * ERR_CSR_UNSUPPORTED_KEY or ERR_CSR_WEAK_KEY (a key the CA never signs: what parseCsr throws for
   * this request), or ERR_KEY_NOT_ALLOWED (a key the policy does not list)
   */
  readonly keyError: InvalidRequestError | PolicyError;
}

/** What parseCsrLenient returns: a verified request whose key type the policy lists (K), or a refused key. */
export type LenientCsr<K extends CsrKeyType = CsrKeyType> =
  (ParsedCsr & { readonly keyType: K }) | RefusedKeyCsr;

/**
 * Parses a PKCS#10 request (DER, or PEM without headers) and verifies its self-signature (proof of
 * possession of the private key). Each way of being wrong has its own code:
 * ERR_CSR_TOO_LARGE, ERR_PEM_*, ERR_DER_TRUNCATED, ERR_DER_TRAILING_DATA, ERR_DER_MALFORMED,
 * ERR_CSR_MALFORMED, ERR_CSR_UNSUPPORTED_KEY, ERR_CSR_WEAK_KEY, ERR_CSR_UNSUPPORTED_SIGNATURE,
 * ERR_CSR_SIGNATURE. An RSA key is bounded (MIN_RSA_BITS to MAX_RSA_BITS, exponent of at most
 * MAX_RSA_EXPONENT_BITS) before anything is verified with it.
 */
export function parseCsr(input: Uint8Array): ParsedCsr {
  return readCsr(input, undefined) as ParsedCsr;
}

/**
 * parseCsr for a service that authenticates the caller before judging the key. The key's type is
 * read from the SubjectPublicKeyInfo alone; a key the CA will refuse (ERR_CSR_UNSUPPORTED_KEY,
 * ERR_CSR_WEAK_KEY) or `policy` does not allow (ERR_KEY_NOT_ALLOWED) is not thrown but returned as
 * a RefusedKeyCsr with its names, so that it is reported after authentication; and nothing is
 * verified for it (no self-signature, no key import), so that a refused key costs no more than the
 * DER reading. Every other problem throws as in parseCsr, and an allowed key's self-signature is
 * verified as in parseCsr: the only signature verification a request can cause here.
 */
export function parseCsrLenient<K extends CsrKeyType>(
  input: Uint8Array,
  policy: CsrKeyPolicy<K>,
): LenientCsr<K> {
  // the key's judgement is made once, here: an accepted key's type is one `policy` lists
  return readCsr(input, policy) as LenientCsr<K>;
}

function readCsr(input: Uint8Array, policy: CsrKeyPolicy | undefined): LenientCsr {
  const der = csrDer(input);

  const root = readRoot(der);
  const [info, sigAlg, sigBits, ...extra] = children(root);
  if (extra.length > 0) malformed('the request has more than three parts');
  const infoTlv = expectTag(info, TAG.SEQUENCE, 'certificationRequestInfo');
  const [version, subject, spkiTlv, attrs, ...infoExtra] = children(infoTlv);
  if (readSmallInteger(expectTag(version, TAG.INTEGER, 'version'), 'version') !== 0)
    malformed('unsupported CSR version');
  if (attrs === undefined || attrs.tag !== 0xa0 || infoExtra.length > 0)
    malformed('attributes are missing or malformed');

  // The key is judged from its DER alone, before anything is verified or imported with it.
  const judged = judgeKey(readPublicKey(expectTag(spkiTlv, TAG.SEQUENCE, 'subjectPublicKeyInfo')), policy);
  if (judged.refused !== undefined && policy === undefined) throw judged.refused;
  const subjectNames = readSubject(expectTag(subject, TAG.SEQUENCE, 'subject'));
  const names = readRequestedNames(attrs);

  const algSeq = children(expectTag(sigAlg, TAG.SEQUENCE, 'signatureAlgorithm'));
  const algOid = readOid(expectTag(algSeq[0], TAG.OID, 'signatureAlgorithm'));
  if (judged.refused !== undefined) {
    readBitStringBytes(expectTag(sigBits, TAG.BIT_STRING, 'signature'), 'signature');
    // No proof of possession is asked for a key that will be refused anyway.
    return Object.freeze({
      keyType: 'unsupported',
      keyError: judged.refused,
      ...subjectNames,
      ...names,
    });
  }
  const key = judged.accepted;
  const hash = csrSignatureHash(algSeq, algOid, key);
  const signature = readBitStringBytes(expectTag(sigBits, TAG.BIT_STRING, 'signature'), 'signature');
  const { publicKey, spkiHead, spkiBody } = importKey(key);
  verifyCsrSignature(hash, whole(infoTlv), publicKey, signature);

  // One exact-size allocation of its own for the request, the canonical SPKI and its key identifier,
  // so that nothing kept refers to the caller's (possibly much larger) buffer or to a shared pool slab.
  const spkiLength = spkiHead.length + spkiBody.length;
  const store = Buffer.allocUnsafeSlow(der.length + spkiLength + KEY_IDENTIFIER_BYTES);
  der.copy(store, 0);
  spkiHead.copy(store, der.length);
  spkiBody.copy(store, der.length + spkiHead.length);
  const spki = store.subarray(der.length, der.length + spkiLength);
  const subjectKeyId = store.subarray(der.length + spkiLength);
  keyIdentifier(spki).copy(subjectKeyId);
  return Object.freeze({
    der: store.subarray(0, der.length),
    spki,
    subjectKeyId,
    publicKey,
    keyType: key.keyType,
    ...subjectNames,
    ...names,
  });
}

/**
 * The request's DER: `input` itself (a view into the caller's bytes while parsing) or its one PEM
 * block. ERR_CSR_TOO_LARGE, ERR_PEM_*, or ERR_CSR_MALFORMED for an empty request.
 */
function csrDer(input: Uint8Array): Buffer {
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
  return der;
}

function readSubject(
  name: Tlv,
): Pick<CsrNames, 'commonName' | 'otherSubjectAttributes' | 'emptyOrganizations'> {
  let commonName: string | undefined;
  let other = 0;
  let emptyOrganizations = 0;
  for (const rdn of children(name)) {
    for (const atv of children(expectTag(rdn, TAG.SET, 'subject RDN'))) {
      const [type, value] = children(expectTag(atv, TAG.SEQUENCE, 'subject attribute'));
      const typeOid = readOid(expectTag(type, TAG.OID, 'subject attribute type'));
      if (typeOid === OID.commonName && commonName === undefined && value !== undefined) {
        commonName = content(value).toString('utf8');
      } else {
        other++;
        if (typeOid === OID.organizationName && value !== undefined && value.end === value.contentStart)
          emptyOrganizations++;
      }
    }
  }
  return { commonName, otherSubjectAttributes: other, emptyOrganizations };
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
