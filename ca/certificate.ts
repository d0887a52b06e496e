import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { readExtensions, type GeneralNameForm, type UnevaluatedSubtree } from './certificate-extensions.js';
import { OID } from './der/index.js';
import {
  TAG,
  children,
  content,
  expectTag,
  readBitStringBytes,
  readIntegerBytes,
  readOid,
  readRoot,
  readTime,
  whole,
  type Tlv,
} from './der/index.js';
import { CredentialError, LanyardError } from './errors.js';
import { decodePemOf } from './pem.js';

/** The parts of an X.509 certificate that Lanyard's checks need, read by the small DER reader. */
export interface CertificateInfo {
  readonly der: Buffer;
  readonly tbs: Buffer;
  readonly signatureAlgorithm: string;
  readonly signature: Buffer;
  readonly serialHex: string;
  /** issuer and subject Name, DER (compared byte for byte) */
  readonly issuerDer: Buffer;
  readonly subjectDer: Buffer;
  readonly subjectCommonName: string | undefined;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly spki: Buffer;
  readonly publicKey: KeyObject;
  readonly isCa: boolean;
  readonly pathLen: number | undefined;
  /** KeyUsage bits as a number (bit 0 = digitalSignature … bit 5 = keyCertSign, bit 6 = cRLSign), undefined if absent */
  readonly keyUsage: number | undefined;
  readonly subjectKeyId: Buffer | undefined;
  readonly authorityKeyId: Buffer | undefined;
  readonly dnsNames: readonly string[];
  readonly uris: readonly string[];
  /** NameConstraints dNSName and URI subtrees (RFC 5280 §4.2.1.10), as written */
  readonly permittedDns: readonly string[];
  readonly permittedUri: readonly string[];
  readonly excludedDns: readonly string[];
  readonly excludedUri: readonly string[];
  /**
   * Subtrees Lanyard does not evaluate: other name forms (IP, email, directoryName, …) and any subtree
   * with minimum/maximum. The chain check refuses a path where one of them could apply.
   */
  readonly unevaluatedNameConstraints: readonly UnevaluatedSubtree[];
  readonly hasNameConstraints: boolean;
  /** the forms of name this certificate carries, as name constraints see them (SANs, non-empty subject, subject e-mail) */
  readonly nameForms: readonly GeneralNameForm[];
  /** OIDs of critical extensions Lanyard does not process; such a certificate is refused in a chain */
  readonly unsupportedCriticalExtensions: readonly string[];
}

export type { GeneralNameForm, UnevaluatedSubtree } from './certificate-extensions.js';

const EMAIL_ADDRESS_OID = '1.2.840.113549.1.9.1';

export const KEY_USAGE = {
  digitalSignature: 1 << 0,
  keyCertSign: 1 << 5,
  cRLSign: 1 << 6,
} as const;

/** A certificate as messages name it: `"CN" (serial …)`, or `serial …` without a common name. */
export function describeCertificate(c: CertificateInfo): string {
  return c.subjectCommonName !== undefined
    ? `"${c.subjectCommonName}" (serial ${c.serialHex})`
    : `serial ${c.serialHex}`;
}

/** Parses one DER certificate. Malformed input → ERR_CERT_MALFORMED. */
export function parseCertificate(der: Uint8Array): CertificateInfo {
  const buf = Buffer.from(der.buffer, der.byteOffset, der.length);
  try {
    return parse(buf);
  } catch (err) {
    if (err instanceof LanyardError && err.code === 'ERR_CERT_MALFORMED') throw err;
    throw new CredentialError(
      'ERR_CERT_MALFORMED',
      `not a valid X.509 certificate: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** All CERTIFICATE blocks of a PEM text (no other block types, no headers). */
export function parseCertificatesPem(text: string, what: string): CertificateInfo[] {
  return decodePemOf(text, 'CERTIFICATE', what).map(parseCertificate);
}

function parse(buf: Buffer): CertificateInfo {
  const root = readRoot(buf);
  const [tbsTlv, sigAlg, sigBits] = children(root);
  const tbs = expectTag(tbsTlv, TAG.SEQUENCE, 'tbsCertificate');
  const signatureAlgorithm = readOid(
    expectTag(
      children(expectTag(sigAlg, TAG.SEQUENCE, 'signatureAlgorithm'))[0],
      TAG.OID,
      'signatureAlgorithm',
    ),
  );
  const signature = readBitStringBytes(expectTag(sigBits, TAG.BIT_STRING, 'signature'), 'signature');

  let fields = children(tbs);
  if (fields[0]?.tag === 0xa0) fields = fields.slice(1);
  const [serial, , issuer, validity, subject, spki, ...rest] = fields;
  const [nb, na] = children(expectTag(validity, TAG.SEQUENCE, 'validity'));
  const spkiTlv = expectTag(spki, TAG.SEQUENCE, 'subjectPublicKeyInfo');
  let cachedKey: KeyObject | undefined;
  const info = {
    der: buf,
    tbs: whole(tbs),
    signatureAlgorithm,
    signature,
    serialHex: readIntegerBytes(serial as Tlv, 'serialNumber').toString('hex'),
    issuerDer: whole(expectTag(issuer, TAG.SEQUENCE, 'issuer')),
    subjectDer: whole(expectTag(subject, TAG.SEQUENCE, 'subject')),
    subjectCommonName: commonNameOf(subject as Tlv),
    notBefore: readTime(nb as Tlv, 'notBefore'),
    notAfter: readTime(na as Tlv, 'notAfter'),
    spki: whole(spkiTlv),
    // Made on first use: a leaf checked only for its issuer's signature never needs its own key.
    get publicKey(): KeyObject {
      cachedKey ??= createPublicKey({ key: whole(spkiTlv), format: 'der', type: 'spki' });
      return cachedKey;
    },
    isCa: false,
    pathLen: undefined as number | undefined,
    keyUsage: undefined as number | undefined,
    subjectKeyId: undefined as Buffer | undefined,
    authorityKeyId: undefined as Buffer | undefined,
    dnsNames: [] as string[],
    uris: [] as string[],
    permittedDns: [] as string[],
    permittedUri: [] as string[],
    excludedDns: [] as string[],
    excludedUri: [] as string[],
    unevaluatedNameConstraints: [] as UnevaluatedSubtree[],
    hasNameConstraints: false,
    nameForms: [] as GeneralNameForm[],
    unsupportedCriticalExtensions: [] as string[],
  };
  const forms = new Set<GeneralNameForm>();
  const subjectAttributes = attributeTypesOf(subject as Tlv);
  if (subjectAttributes.length > 0) forms.add('directoryName');
  if (subjectAttributes.includes(EMAIL_ADDRESS_OID)) forms.add('email');
  const extsWrapper = rest.find((t) => t.tag === 0xa3);
  if (extsWrapper !== undefined) readExtensions(info, forms, extsWrapper);
  info.nameForms = [...forms];
  return Object.freeze(info);
}

/** The attribute types of a Name, in order. */
function attributeTypesOf(name: Tlv): string[] {
  const types: string[] = [];
  for (const rdn of children(name)) {
    for (const atv of children(rdn)) {
      const [type] = children(atv);
      if (type !== undefined) types.push(readOid(type));
    }
  }
  return types;
}

function commonNameOf(name: Tlv): string | undefined {
  for (const rdn of children(name)) {
    for (const atv of children(rdn)) {
      const [type, value] = children(atv);
      if (type !== undefined && value !== undefined && readOid(type) === OID.commonName)
        return content(value).toString('utf8');
    }
  }
  return undefined;
}

/** SHA-256 of the DER, upper-case hex pairs joined by ':' (how bundles and reports name a certificate). */
export function fingerprint(der: Uint8Array): string {
  return (createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g) ?? []).join(':');
}
