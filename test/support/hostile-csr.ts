// CSRs an unauthenticated caller can send to make the server work: keys the policy refuses, RSA
// moduli and exponents as large as OpenSSL will take, signatures that do not verify. Built with the
// DER writer so that no key has to be generated for the expensive RSA kinds: a random odd modulus
// of the right size costs OpenSSL exactly as much to verify against as a real one.
import { createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { OID } from '../../ca/der/oids.js';
import {
  bitString,
  implicitPrim,
  octetString,
  oid,
  seq,
  smallInteger,
  tlv,
  unsignedInteger,
} from '../../ca/der/writer.js';

export const HOSTILE_CSR_KINDS = [
  'rsa16384-e64',
  'rsa3072-e3072',
  'rsa4096',
  'p384',
  'p521',
  'ed25519',
  'p256-bad-signature',
  'p256',
] as const;
export type HostileCsrKind = (typeof HOSTILE_CSR_KINDS)[number];

export const HOSTILE_CSR_DESCRIPTIONS: Record<HostileCsrKind, string> = {
  'rsa16384-e64': 'RSA-16384, 64-bit exponent (the largest OpenSSL takes for such a modulus)',
  'rsa3072-e3072': 'RSA-3072, 3072-bit exponent',
  rsa4096: 'RSA-4096, e = 65537',
  p384: 'P-384 (valid signature) under a P-256-only policy',
  p521: 'P-521 (valid signature)',
  ed25519: 'Ed25519 (valid signature)',
  'p256-bad-signature': 'P-256 with a signature that does not verify',
  p256: 'P-256, valid (the baseline: what every proxy sends)',
};

const NULL = Buffer.from([0x05, 0x00]);

/** certificationRequestInfo for `identity` (one DNS SAN, empty subject) around `spki`. */
function requestInfo(spki: Buffer, identity: string): Buffer {
  const san = seq(implicitPrim(2, Buffer.from(identity, 'latin1')));
  const attributes = tlv(
    0xa0,
    seq(oid(OID.extensionRequest), tlv(0x31, seq(seq(oid(OID.subjectAltName), octetString(san))))),
  );
  return seq(smallInteger(0), seq(), spki, attributes);
}

/** A random odd number of exactly `bits` bits (top two bits set, as an RSA modulus has), big-endian. */
function randomOdd(bits: number): Buffer {
  const b = randomBytes(Math.ceil(bits / 8));
  b[0] = (b[0] as number) | 0xc0;
  b[b.length - 1] = (b[b.length - 1] as number) | 0x01;
  return b;
}

/**
 * An RSA SubjectPublicKeyInfo with a random `bits`-bit modulus and the given exponent, in a CSR for
 * `identity` whose "signature" is random bytes of the modulus's size, below the modulus (so that a
 * verifier does the whole modular exponentiation before it finds the padding wrong).
 */
export function rsaCsr(bits: number, exponent: Buffer, identity: string): Buffer {
  const n = randomOdd(bits);
  const spki = seq(
    seq(oid(OID.rsaEncryption), NULL),
    bitString(seq(unsignedInteger(n), unsignedInteger(exponent))),
  );
  const signature = randomBytes(n.length);
  signature[0] = (n[0] as number) >> 1;
  return seq(requestInfo(spki, identity), seq(oid(OID.sha256WithRsa), NULL), bitString(signature));
}

/** A CSR for `identity` correctly self-signed by `key` (EC or Ed25519). */
export function signedCsr(key: KeyObject, identity: string): Buffer {
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const info = requestInfo(spki, identity);
  if (key.asymmetricKeyType === 'ed25519') {
    return seq(info, seq(oid(OID.ed25519)), bitString(sign(null, info, key)));
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const [hash, sigOid] =
    curve === 'secp384r1'
      ? (['sha384', OID.ecdsaWithSha384] as const)
      : curve === 'secp521r1'
        ? (['sha512', OID.ecdsaWithSha512] as const)
        : (['sha256', OID.ecdsaWithSha256] as const);
  return seq(info, seq(oid(sigOid)), bitString(sign(hash, info, key)));
}

/** The same request with the last byte of its signature changed: it no longer verifies. */
export function withBadSignature(der: Buffer): Buffer {
  const out = Buffer.from(der);
  out[out.length - 1] = (out[out.length - 1] as number) ^ 0x01;
  return out;
}

/** One CSR of `kind` asking for `identity`. */
export function hostileCsr(kind: HostileCsrKind, identity: string): Buffer {
  switch (kind) {
    case 'rsa16384-e64':
      return rsaCsr(16384, randomOdd(64), identity);
    case 'rsa3072-e3072': {
      // OpenSSL takes any exponent below the modulus for moduli up to 3072 bits
      const e = randomOdd(3072);
      e[0] = 0x80;
      return rsaCsr(3072, e, identity);
    }
    case 'rsa4096':
      return rsaCsr(4096, Buffer.from([0x01, 0x00, 0x01]), identity);
    case 'p384':
      return signedCsr(generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey, identity);
    case 'p521':
      return signedCsr(generateKeyPairSync('ec', { namedCurve: 'secp521r1' }).privateKey, identity);
    case 'ed25519':
      return signedCsr(generateKeyPairSync('ed25519').privateKey, identity);
    case 'p256-bad-signature':
      return withBadSignature(
        signedCsr(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey, identity),
      );
    case 'p256':
      return signedCsr(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey, identity);
  }
}
