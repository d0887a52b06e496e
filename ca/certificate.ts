import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
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

/** GeneralName choices by context tag number (RFC 5280 §4.2.1.6). */
const GENERAL_NAME_FORMS = [
  'otherName',
  'email',
  'dns',
  'x400Address',
  'directoryName',
  'ediPartyName',
  'uri',
  'ip',
  'registeredId',
] as const;
export type GeneralNameForm = (typeof GENERAL_NAME_FORMS)[number];

export interface UnevaluatedSubtree {
  readonly subtrees: 'permitted' | 'excluded';
  readonly form: GeneralNameForm;
  /** minimum ≠ 0 or a maximum: OpenSSL refuses every path under such a CA */
  readonly minMax: boolean;
}

/** Extensions whose content Lanyard reads; any other extension marked critical is unsupported. */
const PROCESSED_EXTENSIONS: ReadonlySet<string> = new Set([
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
  OID.subjectAltName,
  OID.nameConstraints,
]);

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

function malformed(message: string): CredentialError {
  return new CredentialError('ERR_CERT_MALFORMED', message);
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
  if (extsWrapper !== undefined) {
    for (const ext of children(expectTag(children(extsWrapper)[0], TAG.SEQUENCE, 'extensions'))) {
      const parts = children(ext);
      const id = readOid(expectTag(parts[0], TAG.OID, 'extension id'));
      const value = content(expectTag(parts[parts.length - 1], TAG.OCTET_STRING, 'extension value'));
      const critical = parts.length === 3 && parts[1]?.tag === TAG.BOOLEAN && content(parts[1])[0] !== 0;
      if (critical && !PROCESSED_EXTENSIONS.has(id)) info.unsupportedCriticalExtensions.push(id);
      switch (id) {
        case OID.basicConstraints: {
          // SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL } and
          // nothing else: an element skipped here could be a pathLen that would silently not apply
          const bc = children(readRoot(value));
          let next = 0;
          const ca = bc[next];
          if (ca?.tag === TAG.BOOLEAN) {
            if (content(ca).length !== 1) throw malformed('basicConstraints: cA is not a BOOLEAN');
            info.isCa = content(ca)[0] !== 0;
            next++;
          }
          const pl = bc[next];
          if (pl !== undefined) {
            const n = readIntegerBytes(pl, 'pathLen');
            if (((n[0] as number) & 0x80) !== 0) throw malformed('basicConstraints: negative pathLen');
            info.pathLen = n.readUIntBE(0, Math.min(n.length, 6));
            next++;
          }
          if (next !== bc.length) throw malformed('basicConstraints: unexpected elements');
          break;
        }
        case OID.keyUsage: {
          const ku = content(readRoot(value, TAG.BIT_STRING));
          let bits = 0;
          for (let i = 1; i < ku.length && i < 3; i++) {
            const byte = ku[i] as number;
            for (let b = 0; b < 8; b++) if ((byte & (0x80 >> b)) !== 0) bits |= 1 << ((i - 1) * 8 + b);
          }
          info.keyUsage = bits;
          break;
        }
        case OID.subjectKeyIdentifier:
          info.subjectKeyId = content(readRoot(value, TAG.OCTET_STRING));
          break;
        case OID.authorityKeyIdentifier: {
          const keyId = children(readRoot(value)).find((t) => t.tag === 0x80);
          if (keyId !== undefined) info.authorityKeyId = content(keyId);
          break;
        }
        case OID.subjectAltName:
          for (const gn of children(readRoot(value))) {
            const form = generalNameForm(gn);
            if (form !== undefined) forms.add(form);
            if (gn.tag === 0x82) info.dnsNames.push(content(gn).toString('latin1'));
            if (gn.tag === 0x86) info.uris.push(content(gn).toString('latin1'));
          }
          break;
        case OID.nameConstraints: {
          info.hasNameConstraints = true;
          for (const subtrees of children(readRoot(value))) {
            // permittedSubtrees [0] or excludedSubtrees [1]: skipping anything else could drop a constraint
            if (subtrees.tag !== 0xa0 && subtrees.tag !== 0xa1)
              throw malformed('name constraints: neither permittedSubtrees nor excludedSubtrees');
            const kind = subtrees.tag === 0xa0 ? 'permitted' : 'excluded';
            for (const subtree of children(subtrees)) {
              const [base, ...bounds] = children(subtree);
              const form = base !== undefined ? generalNameForm(base) : undefined;
              if (base === undefined || form === undefined)
                throw new CredentialError('ERR_CERT_MALFORMED', 'name constraints: malformed GeneralSubtree');
              // minimum [0] DEFAULT 0 (DER omits it), maximum [1]: anything present is non-default
              const minMax = bounds.length > 0;
              if (!minMax && form === 'dns') {
                (kind === 'permitted' ? info.permittedDns : info.excludedDns).push(
                  content(base).toString('latin1'),
                );
              } else if (!minMax && form === 'uri') {
                (kind === 'permitted' ? info.permittedUri : info.excludedUri).push(
                  content(base).toString('latin1'),
                );
              } else {
                info.unevaluatedNameConstraints.push({ subtrees: kind, form, minMax });
              }
            }
          }
          break;
        }
        default:
          break;
      }
    }
  }
  info.nameForms = [...forms];
  return Object.freeze(info);
}

function generalNameForm(gn: Tlv): GeneralNameForm | undefined {
  // context-specific class, primitive or constructed; the tag number picks the choice
  if ((gn.tag & 0xc0) !== 0x80) return undefined;
  return GENERAL_NAME_FORMS[gn.tag & 0x1f];
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
