import type { CertificateInfo } from './certificate.js';
import { OID } from './der/index.js';
import {
  bitString,
  explicit,
  implicitPrim,
  octetString,
  oid,
  seq,
  time,
  TRUE,
  unsignedInteger,
} from './der/index.js';
import { CredentialError, InternalError } from './errors.js';
import { describeSigner } from './keys/index.js';
import { signNow, type Signer } from './keys/index.js';
import { keyIdentifier, randomSerial, truncateToSeconds } from './profiles.js';

export interface LeafRequest {
  /** SubjectPublicKeyInfo DER, from the (verified) CSR */
  readonly spki: Buffer;
  readonly dnsName: string;
  readonly uri: string;
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
const EKU_SERVER_CLIENT = ext(OID.extKeyUsage, false, seq(oid(OID.serverAuth), oid(OID.clientAuth)));

/**
 * The leaf profile: v3, empty subject, critical SAN (one DNS name, one URI), BasicConstraints
 * critical CA:FALSE, KeyUsage critical digitalSignature, EKU serverAuth + clientAuth, SKI, AKI =
 * the issuer's SKI. Everything but the serial, validity, key and names is fixed per issuer.
 */
export function createLeafTemplate(issuer: CertificateInfo, signer: Signer): LeafTemplate {
  if (!issuer.spki.equals(signer.publicKeyDer)) {
    throw new CredentialError('ERR_KEY_MISMATCH', 'issuer key does not match the issuer certificate');
  }
  const aki = issuer.subjectKeyId ?? keyIdentifier(issuer.spki);
  const sigAlg = describeSigner(signer).signatureAlgorithmDer;
  const afterSerial = Buffer.concat([sigAlg, issuer.subjectDer]);
  const fixedExtensions = Buffer.concat([
    BASIC_CONSTRAINTS_END_ENTITY,
    KEY_USAGE_DIGITAL_SIGNATURE,
    EKU_SERVER_CLIENT,
    ext(OID.authorityKeyIdentifier, false, seq(implicitPrim(0, aki))),
  ]);
  return {
    sign(req) {
      const serial = req.serial === undefined ? randomSerial() : checkSerial(req.serial);
      const notBefore = truncateToSeconds(req.notBefore);
      const notAfter = truncateToSeconds(req.notAfter);
      const san = ext(
        OID.subjectAltName,
        true,
        seq(implicitPrim(2, ascii(req.dnsName)), implicitPrim(6, ascii(req.uri))),
      );
      const ski = skiExtension(req.spki);
      const tbs = seq(
        VERSION_V3,
        unsignedInteger(serial),
        afterSerial,
        seq(time(notBefore), time(notAfter)),
        EMPTY_NAME,
        req.spki,
        explicit(3, seq(fixedExtensions, ski, san)),
      );
      const signature = signNow(signer, tbs);
      const der = seq(tbs, sigAlg, bitString(signature));
      return { der, serialHex: serial.toString('hex'), notBefore, notAfter, tbs, signature };
    },
  };
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
function ascii(s: string): Buffer {
  if (!/^[\x21-\x7e]{1,1024}$/.test(s)) throw new InternalError('SAN value is not printable ASCII');
  return Buffer.from(s, 'latin1');
}

// Renewals resend the same CSR, whose parsed SPKI buffer is cached: its SKI extension is too.
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
