// The certificate extensions Lanyard reads (RFC 5280 §4.2), read into the fields of a CertificateInfo
// being built. Certificate parsing is on the Certify hot path: these are module-level functions called
// with the parsed pieces, so reading an extension allocates nothing beyond what it stores.
import {
  OID,
  TAG,
  children,
  content,
  expectTag,
  readIntegerBytes,
  readOid,
  readRoot,
  type Tlv,
} from './der/index.js';
import { CredentialError } from './errors.js';

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

/** The fields of a CertificateInfo that its extensions set, filled in while they are read. */
export interface ExtensionFields {
  isCa: boolean;
  pathLen: number | undefined;
  keyUsage: number | undefined;
  subjectKeyId: Buffer | undefined;
  authorityKeyId: Buffer | undefined;
  readonly dnsNames: string[];
  readonly uris: string[];
  readonly permittedDns: string[];
  readonly permittedUri: string[];
  readonly excludedDns: string[];
  readonly excludedUri: string[];
  readonly unevaluatedNameConstraints: UnevaluatedSubtree[];
  hasNameConstraints: boolean;
  readonly unsupportedCriticalExtensions: string[];
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

function malformed(message: string): CredentialError {
  return new CredentialError('ERR_CERT_MALFORMED', message);
}

/**
 * Reads the extensions ([3] EXPLICIT Extensions) into `info`, in order; `forms` gains the name forms
 * of the subjectAltName. Malformed content → ERR_CERT_MALFORMED.
 */
export function readExtensions(info: ExtensionFields, forms: Set<GeneralNameForm>, extsWrapper: Tlv): void {
  for (const ext of children(expectTag(children(extsWrapper)[0], TAG.SEQUENCE, 'extensions'))) {
    readExtension(info, forms, ext);
  }
}

function readExtension(info: ExtensionFields, forms: Set<GeneralNameForm>, ext: Tlv): void {
  const parts = children(ext);
  const id = readOid(expectTag(parts[0], TAG.OID, 'extension id'));
  const value = content(expectTag(parts[parts.length - 1], TAG.OCTET_STRING, 'extension value'));
  const critical = parts.length === 3 && parts[1]?.tag === TAG.BOOLEAN && content(parts[1])[0] !== 0;
  if (critical && !PROCESSED_EXTENSIONS.has(id)) info.unsupportedCriticalExtensions.push(id);
  switch (id) {
    case OID.basicConstraints:
      readBasicConstraints(info, value);
      break;
    case OID.keyUsage:
      info.keyUsage = readKeyUsage(value);
      break;
    case OID.subjectKeyIdentifier:
      info.subjectKeyId = content(readRoot(value, TAG.OCTET_STRING));
      break;
    case OID.authorityKeyIdentifier: {
      const keyId = children(readRoot(value)).find((t) => t.tag === 0x80);
      if (keyId !== undefined) info.authorityKeyId = content(keyId);
      break;
    }
    case OID.subjectAltName:
      readSubjectAltName(info, forms, value);
      break;
    case OID.nameConstraints:
      readNameConstraints(info, value);
      break;
    default:
      break;
  }
}

function readBasicConstraints(info: ExtensionFields, value: Buffer): void {
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
}

/** KeyUsage bits as a number (bit 0 = digitalSignature … bit 8 = decipherOnly). */
function readKeyUsage(value: Buffer): number {
  const ku = content(readRoot(value, TAG.BIT_STRING));
  let bits = 0;
  for (let i = 1; i < ku.length && i < 3; i++) {
    const byte = ku[i] as number;
    for (let b = 0; b < 8; b++) if ((byte & (0x80 >> b)) !== 0) bits |= 1 << ((i - 1) * 8 + b);
  }
  return bits;
}

function readSubjectAltName(info: ExtensionFields, forms: Set<GeneralNameForm>, value: Buffer): void {
  for (const gn of children(readRoot(value))) {
    const form = generalNameForm(gn);
    if (form !== undefined) forms.add(form);
    if (gn.tag === 0x82) info.dnsNames.push(content(gn).toString('latin1'));
    if (gn.tag === 0x86) info.uris.push(content(gn).toString('latin1'));
  }
}

function readNameConstraints(info: ExtensionFields, value: Buffer): void {
  info.hasNameConstraints = true;
  for (const subtrees of children(readRoot(value))) {
    // permittedSubtrees [0] or excludedSubtrees [1]: skipping anything else could drop a constraint
    if (subtrees.tag !== 0xa0 && subtrees.tag !== 0xa1)
      throw malformed('name constraints: neither permittedSubtrees nor excludedSubtrees');
    const kind = subtrees.tag === 0xa0 ? 'permitted' : 'excluded';
    for (const subtree of children(subtrees)) readSubtree(info, kind, subtree);
  }
}

/** One GeneralSubtree: a dNSName or URI base without minimum/maximum is evaluated, any other is not. */
function readSubtree(info: ExtensionFields, kind: 'permitted' | 'excluded', subtree: Tlv): void {
  const [base, ...bounds] = children(subtree);
  const form = base !== undefined ? generalNameForm(base) : undefined;
  if (base === undefined || form === undefined)
    throw new CredentialError('ERR_CERT_MALFORMED', 'name constraints: malformed GeneralSubtree');
  // minimum [0] DEFAULT 0 (DER omits it), maximum [1]: anything present is non-default
  const minMax = bounds.length > 0;
  if (!minMax && form === 'dns') {
    (kind === 'permitted' ? info.permittedDns : info.excludedDns).push(content(base).toString('latin1'));
  } else if (!minMax && form === 'uri') {
    (kind === 'permitted' ? info.permittedUri : info.excludedUri).push(content(base).toString('latin1'));
  } else {
    info.unevaluatedNameConstraints.push({ subtrees: kind, form, minMax });
  }
}

function generalNameForm(gn: Tlv): GeneralNameForm | undefined {
  // context-specific class, primitive or constructed; the tag number picks the choice
  if ((gn.tag & 0xc0) !== 0x80) return undefined;
  return GENERAL_NAME_FORMS[gn.tag & 0x1f];
}
