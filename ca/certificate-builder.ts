// DER pieces of the CA certificates (anchors, issuers), encoded as @peculiar/x509 encoded them before
// (so certificates stay the same), and their signing through the Signer seam alone.
import { OID } from './der/index.js';
import { bitString, explicit, octetString, oid, seq, time, tlv, TRUE, unsignedInteger } from './der/index.js';
import { describeSigner, signChecked } from './keys/index.js';
import type { Signer } from './keys/index.js';

/** An Extension: extnID, critical (only when true: DER omits the default), extnValue. */
export const extension = (id: string, critical: boolean, value: Buffer): Buffer =>
  critical ? seq(oid(id), TRUE, octetString(value)) : seq(oid(id), octetString(value));

/** The attribute types a CA name is made of. */
export type NameAttribute = 'CN' | 'OU' | 'serialNumber';

const ATTRIBUTE_OID: Readonly<Record<NameAttribute, string>> = {
  CN: OID.commonName,
  OU: OID.organizationalUnitName,
  serialNumber: OID.serialNumber,
};

/**
 * A Name of one single-valued RDN per attribute, in order. Each value is a PrintableString when it
 * fits that alphabet, a UTF8String otherwise. Quotes and backslash escapes are read as @peculiar/x509
 * read them (`"a"` is a, `\,` is a comma, `\0a` a newline), so a name given before reads the same.
 */
export function nameDer(attributes: readonly (readonly [NameAttribute, string])[]): Buffer {
  return seq(
    ...attributes.map(([type, value]) => tlv(0x31, seq(oid(ATTRIBUTE_OID[type]), directoryString(value)))),
  );
}

function directoryString(raw: string): Buffer {
  const value = unescapeValue(raw);
  return /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(value)
    ? tlv(0x13, Buffer.from(value, 'latin1'))
    : tlv(0x0c, Buffer.from(value, 'utf8'));
}

function unescapeValue(value: string): string {
  const quoted = /"(.*?[^\\])?"/.exec(value);
  const inner = quoted !== null ? (quoted[1] ?? '') : value;
  return inner
    .replace(/\\0a/gi, '\n')
    .replace(/\\0d/gi, '\r')
    .replace(/\\0g/gi, '\t')
    .replace(/\\(.)/g, '$1');
}

/** The fields of a v3 TBSCertificate. */
export interface TbsFields {
  readonly serial: Buffer;
  readonly issuer: Buffer;
  readonly subject: Buffer;
  /** whole seconds */
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SubjectPublicKeyInfo DER */
  readonly spki: Buffer;
  readonly extensions: readonly Buffer[];
}

const VERSION_V3 = explicit(0, Buffer.from([0x02, 0x01, 0x02]));

/**
 * A certificate signed by `signer` (any Signer: a remote key's Promise is awaited). The signature is
 * checked against the signer's public key before the certificate is returned.
 */
export async function signCertificate(signer: Signer, f: TbsFields): Promise<Buffer> {
  const described = describeSigner(signer);
  const sigAlg = described.signatureAlgorithmDer;
  const tbs = seq(
    VERSION_V3,
    unsignedInteger(f.serial),
    sigAlg,
    f.issuer,
    seq(time(f.notBefore), time(f.notAfter)),
    f.subject,
    f.spki,
    explicit(3, seq(...f.extensions)),
  );
  return seq(tbs, sigAlg, bitString(await signChecked(signer, described, tbs)));
}
