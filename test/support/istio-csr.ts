import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { webcrypto, x509 } from '../../ca/x509.js';

const rsaKeys = new Map<string, KeyObject>();
/** An RSA private key, made once per size and exponent for the whole test process (RSA-4096 takes seconds). */
export function rsaKey(bits: number, publicExponent = 65537): KeyObject {
  const id = `${bits}/${publicExponent}`;
  let key = rsaKeys.get(id);
  if (key === undefined) {
    key = generateKeyPairSync('rsa', { modulusLength: bits, publicExponent }).privateKey;
    rsaKeys.set(id, key);
  }
  return key;
}

/** DER: tag ‖ definite length ‖ content */
function tlv(tag: number, content: Buffer): Buffer {
  const lengthBytes: number[] = [];
  for (let n = content.length; n > 0; n = Math.floor(n / 256)) lengthBytes.unshift(n % 256);
  const length = content.length < 0x80 ? [content.length] : [0x80 | lengthBytes.length, ...lengthBytes];
  return Buffer.concat([Buffer.from([tag, ...length]), content]);
}
/** the TLV at `at`: where its content starts and where it ends */
function tlvAt(der: Buffer, at: number): { contentStart: number; end: number } {
  const first = der[at + 1] ?? 0;
  let length = first;
  let p = at + 2;
  if ((first & 0x80) !== 0) {
    length = 0;
    for (let i = 0; i < (first & 0x7f); i++) length = length * 256 + (der[p++] ?? 0);
  }
  return { contentStart: p, end: p + length };
}
/** a DER INTEGER of a non-negative big-endian magnitude */
const derUint = (mag: Buffer): Buffer =>
  tlv(0x02, ((mag[0] ?? 0) & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), mag]) : mag);

/**
 * The SubjectPublicKeyInfo of an RSA public key of exactly `bits` bits and exponent `exponent` whose
 * modulus is odd but no product of primes anyone knows: for keys the CA refuses from their DER alone,
 * without generating them (an RSA-4104 key takes seconds).
 */
export function syntheticRsaSpki(bits: number, exponent: number): Buffer {
  const n = Buffer.alloc(Math.ceil(bits / 8), 0xa5);
  n[0] = 0xff >> (7 - ((bits - 1) % 8));
  n[n.length - 1] = (n[n.length - 1] ?? 0) | 1;
  const e: number[] = [];
  for (let x = exponent; x > 0; x = Math.floor(x / 256)) e.unshift(x % 256);
  const rsaEncryptionNull = Buffer.from('300d06092a864886f70d0101010500', 'hex');
  const key = tlv(0x30, Buffer.concat([derUint(n), derUint(Buffer.from(e))]));
  return tlv(0x30, Buffer.concat([rsaEncryptionNull, tlv(0x03, Buffer.concat([Buffer.from([0]), key]))]));
}

let p256: KeyObject | undefined;
/**
 * An Istio CSR (as istioCsr) carrying `spki` as its public key, signed with another key: its signature
 * never verifies, so a test that expects a key refusal also shows nothing was verified before it.
 */
export async function istioCsrWithSpki(
  spki: Buffer,
  options: Omit<Parameters<typeof istioCsr>[0], 'key'>,
): Promise<Buffer> {
  p256 ??= generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  const pem = (await istioCsr({ ...options, key: p256 })).toString();
  const der = Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  // CertificationRequest = SEQ{ SEQ{ version, subject, subjectPKInfo, [0] attributes }, alg, signature }
  const outer = tlvAt(der, 0);
  const info = tlvAt(der, outer.contentStart);
  const subject = tlvAt(der, tlvAt(der, info.contentStart).end);
  const oldSpki = tlvAt(der, subject.end);
  const newInfo = tlv(
    0x30,
    Buffer.concat([der.subarray(info.contentStart, subject.end), spki, der.subarray(oldSpki.end, info.end)]),
  );
  const out = tlv(0x30, Buffer.concat([newInfo, der.subarray(info.end, outer.end)]));
  const b64 = out.toString('base64').replace(/.{64}/g, '$&\n');
  return Buffer.from(
    `-----BEGIN CERTIFICATE REQUEST-----\n${b64.replace(/\n$/, '')}\n-----END CERTIFICATE REQUEST-----\n`,
  );
}

/**
 * A CSR as istio-agent or ztunnel sends it (built by @peculiar/x509, an independent encoder): a critical
 * SAN extension with `names`, a subject of `subject` (empty by default), PEM.
 */
export async function istioCsr(options: {
  key: KeyObject;
  uris?: readonly string[];
  dns?: readonly string[];
  ips?: readonly string[];
  emails?: readonly string[];
  subject?: x509.JsonName;
}): Promise<Buffer> {
  const { key } = options;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const alg =
    key.asymmetricKeyType === 'ec'
      ? {
          name: 'ECDSA',
          namedCurve: curve === 'secp384r1' ? 'P-384' : curve === 'secp521r1' ? 'P-521' : 'P-256',
          hash: 'SHA-256',
        }
      : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, alg, false, ['sign']);
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const publicKey = await webcrypto.subtle.importKey('spki', spki, alg, true, ['verify']);
  const names: x509.JsonGeneralName[] = [
    ...(options.uris ?? []).map((value) => ({ type: 'url' as const, value })),
    ...(options.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(options.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
    ...(options.emails ?? []).map((value) => ({ type: 'email' as const, value })),
  ];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: options.subject ?? [],
      keys: { privateKey, publicKey },
      signingAlgorithm: alg,
      extensions: names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names, true)] : [],
    },
    webcrypto,
  );
  return Buffer.from(csr.toString('pem'));
}
