import type { CertificateInfo } from './certificate.js';
import { OID } from './der/index.js';
import {
  explicit,
  headLength,
  implicitPrim,
  octetString,
  oid,
  seq,
  timeText,
  TRUE,
  writeHead,
} from './der/index.js';
import { CredentialError, InternalError } from './errors.js';
import { describeSigner } from './keys/index.js';
import { signNow, type Signer } from './keys/index.js';
import { KEY_IDENTIFIER_BYTES, keyIdentifier, randomSerial, truncateToSeconds } from './profiles.js';

export interface LeafRequest {
  /** SubjectPublicKeyInfo DER, from the (verified) CSR */
  readonly spki: Buffer;
  /**
   * keyIdentifier(spki), when the caller has it already (a CSR read by parseCsr carries it); the
   * same bytes either way
   */
  readonly subjectKeyId?: Buffer | undefined;
  /** the DNS SAN before the URI; none in an Istio leaf (the URI alone) */
  readonly dnsName: string | undefined;
  readonly uri: string;
  /** keyUsage digitalSignature + keyEncipherment (an RSA key) instead of digitalSignature alone */
  readonly keyEncipherment?: boolean;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /**
   * the serial as the content octets of a positive DER INTEGER (1 to 20 octets, minimal, not zero);
   * a random 16-byte one when absent
   */
  readonly serial?: Buffer;
}

export interface SignedLeaf {
  readonly der: Buffer;
  /** hex of the serial exactly as encoded (the INTEGER's content octets) */
  readonly serialHex: string;
  /** the validity exactly as encoded: whole seconds, rounded down from the request */
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** the signed TBSCertificate and its signature, for the post-sign check */
  readonly tbs: Buffer;
  readonly signature: Buffer;
}

/**
 * Builds workload leaves for one issuer from precomputed DER pieces; one synchronous signature per
 * leaf: Certify never awaits a signature, so the issuer key must be one this process holds (a
 * SyncSigner, as the key stores return); a signer that answers with a Promise is ERR_KEY_UNSUPPORTED.
 */
export interface LeafTemplate {
  sign(req: LeafRequest): SignedLeaf;
}

const ext = (id: string, critical: boolean, value: Buffer): Buffer =>
  critical ? seq(oid(id), TRUE, octetString(value)) : seq(oid(id), octetString(value));

const VERSION_V3 = explicit(0, Buffer.from([0x02, 0x01, 0x02]));
const EMPTY_NAME = seq();
const BASIC_CONSTRAINTS_END_ENTITY = ext(OID.basicConstraints, true, seq());
const KEY_USAGE_DIGITAL_SIGNATURE = ext(OID.keyUsage, true, Buffer.from([0x03, 0x02, 0x07, 0x80]));
// digitalSignature (bit 0) and keyEncipherment (bit 2): 0b101 followed by 5 unused bits
const KEY_USAGE_DIGITAL_SIGNATURE_KEY_ENCIPHERMENT = ext(
  OID.keyUsage,
  true,
  Buffer.from([0x03, 0x02, 0x05, 0xa0]),
);
const EKU_SERVER_CLIENT = ext(OID.extKeyUsage, false, seq(oid(OID.serverAuth), oid(OID.clientAuth)));

/**
 * The leaf profile: v3, empty subject, critical SAN (one DNS name, one URI; or the URI alone),
 * BasicConstraints critical CA:FALSE, KeyUsage critical digitalSignature (+ keyEncipherment when
 * asked, for an RSA key), EKU serverAuth + clientAuth, SKI, AKI = the issuer's SKI. Everything but the
 * serial, validity, key, names and key usage is fixed per issuer.
 */
export function createLeafTemplate(issuer: CertificateInfo, signer: Signer): LeafTemplate {
  if (!issuer.spki.equals(signer.publicKeyDer)) {
    throw new CredentialError('ERR_KEY_MISMATCH', 'issuer key does not match the issuer certificate');
  }
  const aki = issuer.subjectKeyId ?? keyIdentifier(issuer.spki);
  const sigAlg = describeSigner(signer).signatureAlgorithmDer;
  const afterSerial = Buffer.concat([sigAlg, issuer.subjectDer]);
  const fixed = (keyUsage: Buffer): Buffer =>
    Buffer.concat([
      BASIC_CONSTRAINTS_END_ENTITY,
      keyUsage,
      EKU_SERVER_CLIENT,
      ext(OID.authorityKeyIdentifier, false, seq(implicitPrim(0, aki))),
    ]);
  const fixedExtensions = fixed(KEY_USAGE_DIGITAL_SIGNATURE);
  const fixedExtensionsRsa = fixed(KEY_USAGE_DIGITAL_SIGNATURE_KEY_ENCIPHERMENT);
  return {
    sign(req) {
      const serial = req.serial === undefined ? randomSerial() : checkSerial(req.serial);
      const notBefore = truncateToSeconds(req.notBefore);
      const notAfter = truncateToSeconds(req.notAfter);
      const dnsName = req.dnsName === undefined ? undefined : checkAscii(req.dnsName);
      const uri = checkAscii(req.uri);
      const tbs = writeTbs(
        {
          afterSerial,
          fixedExtensions: req.keyEncipherment === true ? fixedExtensionsRsa : fixedExtensions,
          ski: req.subjectKeyId === undefined ? skiExtension(req.spki) : skiExtensionOf(req.subjectKeyId),
        },
        { serial, notBefore, notAfter, spki: req.spki, dnsName, uri },
      );
      const signature = signNow(signer, tbs);
      const der = writeCertificate(tbs, sigAlg, signature);
      return { der, serialHex: serial.toString('hex'), notBefore, notAfter, tbs, signature };
    },
  };
}

// The TBSCertificate and the certificate are written in one pass each into one buffer, with the
// lengths worked out first (the nested seq()/tlv() calls of der/writer.ts allocated a buffer per
// element, and the SAN's OID was encoded on every leaf: ≈ 11 µs and a dozen allocations per leaf,
// against ≈ 3 µs). Tags, lengths and times come from der/writer.ts (headLength, writeHead, timeText);
// the DER is byte for byte what its seq()/tlv() build (test/ca/leaf-template-der.test.ts).

const SAN_OID_CRITICAL = Buffer.concat([oid(OID.subjectAltName), TRUE]);

const tlvLength = (len: number): number => headLength(len) + len;

function writeBytes(out: Buffer, o: number, tag: number, bytes: Uint8Array): number {
  o = writeHead(out, o, tag, bytes.length);
  out.set(bytes, o);
  return o + bytes.length;
}

function writeAscii(out: Buffer, o: number, tag: number, text: string): number {
  o = writeHead(out, o, tag, text.length);
  return o + out.write(text, o, 'latin1');
}

interface TbsFixed {
  readonly afterSerial: Buffer;
  readonly fixedExtensions: Buffer;
  readonly ski: Buffer;
}

interface TbsVarying {
  readonly serial: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly spki: Buffer;
  readonly dnsName: string | undefined;
  readonly uri: string;
}

/** The TBSCertificate: version, serial, signature algorithm + issuer, validity, empty subject, key, extensions. */
function writeTbs(f: TbsFixed, v: TbsVarying): Buffer {
  const nb = timeText(v.notBefore);
  const na = timeText(v.notAfter);
  const validity = tlvLength(nb.text.length) + tlvLength(na.text.length);
  const names = (v.dnsName === undefined ? 0 : tlvLength(v.dnsName.length)) + tlvLength(v.uri.length);
  const sanValue = tlvLength(names);
  const san = SAN_OID_CRITICAL.length + tlvLength(sanValue);
  const extensions = f.fixedExtensions.length + f.ski.length + tlvLength(san);
  const content =
    VERSION_V3.length +
    tlvLength(v.serial.length) +
    f.afterSerial.length +
    tlvLength(validity) +
    EMPTY_NAME.length +
    v.spki.length +
    tlvLength(tlvLength(extensions));
  const out = Buffer.allocUnsafe(tlvLength(content));
  let o = writeHead(out, 0, 0x30, content);
  o += VERSION_V3.copy(out, o);
  // a checked serial is a minimal positive INTEGER's content octets, written unchanged
  o = writeBytes(out, o, 0x02, v.serial);
  o += f.afterSerial.copy(out, o);
  o = writeHead(out, o, 0x30, validity);
  o = writeAscii(out, o, nb.tag, nb.text);
  o = writeAscii(out, o, na.tag, na.text);
  o += EMPTY_NAME.copy(out, o);
  o += v.spki.copy(out, o);
  o = writeHead(out, o, 0xa3, tlvLength(extensions));
  o = writeHead(out, o, 0x30, extensions);
  o += f.fixedExtensions.copy(out, o);
  o += f.ski.copy(out, o);
  o = writeHead(out, o, 0x30, san);
  o += SAN_OID_CRITICAL.copy(out, o);
  o = writeHead(out, o, 0x04, sanValue);
  o = writeHead(out, o, 0x30, names);
  if (v.dnsName !== undefined) o = writeAscii(out, o, 0x82, v.dnsName);
  o = writeAscii(out, o, 0x86, v.uri);
  if (o !== out.length) throw new InternalError('leaf TBSCertificate length mismatch');
  return out;
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }. */
function writeCertificate(tbs: Buffer, sigAlg: Buffer, signature: Buffer): Buffer {
  const content = tbs.length + sigAlg.length + tlvLength(1 + signature.length);
  const out = Buffer.allocUnsafe(tlvLength(content));
  let o = writeHead(out, 0, 0x30, content);
  o += tbs.copy(out, o);
  o += sigAlg.copy(out, o);
  o = writeHead(out, o, 0x03, 1 + signature.length);
  out[o++] = 0;
  signature.copy(out, o);
  return out;
}

/**
 * RFC 5280 §4.1.2.2: a positive INTEGER of at most 20 octets. Only minimal encodings are taken, so
 * the octets are written unchanged and `serialHex` equals parseCertificate(der).serialHex.
 */
function checkSerial(serial: Buffer): Buffer {
  const first = serial[0] ?? 0;
  const minimal = serial.length === 1 || first !== 0 || ((serial[1] as number) & 0x80) !== 0;
  if (
    serial.length === 0 ||
    serial.length > 20 ||
    (first & 0x80) !== 0 ||
    !minimal ||
    serial.every((b) => b === 0)
  ) {
    throw new InternalError('leaf serial must be a positive, minimal DER INTEGER of 1 to 20 octets');
  }
  return serial;
}

/** IA5String content; names reaching the template are already validated, this guards the encoding. */
function checkAscii(s: string): string {
  if (!/^[\x21-\x7e]{1,1024}$/.test(s)) throw new InternalError('SAN value is not printable ASCII');
  return s;
}

// The SKI extension of a 20-byte key identifier (a SHA-1) is this prefix, then the identifier.
const SKI_PREFIX = ext(
  OID.subjectKeyIdentifier,
  false,
  octetString(Buffer.alloc(KEY_IDENTIFIER_BYTES)),
).subarray(0, -KEY_IDENTIFIER_BYTES);
function skiExtensionOf(keyId: Buffer): Buffer {
  return keyId.length === KEY_IDENTIFIER_BYTES
    ? Buffer.concat([SKI_PREFIX, keyId])
    : ext(OID.subjectKeyIdentifier, false, octetString(keyId));
}

// Callers that pass no subjectKeyId: the SKI extension is cached by SPKI buffer.
const skiCache = new WeakMap<Buffer, Buffer>();
function skiExtension(spki: Buffer): Buffer {
  let e = skiCache.get(spki);
  if (e === undefined) {
    // kept as long as the renewal cache keeps the CSR: copied out of Node's shared 8 KiB buffer pool
    // (ext → allocUnsafe), where these few bytes would each pin a whole slab (≈ 7.5 KB per entry)
    const pooled = ext(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(spki)));
    e = Buffer.allocUnsafeSlow(pooled.length);
    pooled.copy(e);
    skiCache.set(spki, e);
  }
  return e;
}
