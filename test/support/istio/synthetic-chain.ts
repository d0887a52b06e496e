// Synthetic CreateCertificate answers for the client's own tests, made with @peculiar/x509 (not ca/):
// root(s) → intermediate → leaf carrying a given public key and URI SAN.
import 'reflect-metadata';
import { webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';

const crypto = webcrypto as unknown as Crypto;
const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface SyntheticCa {
  readonly cert: x509.X509Certificate;
  readonly keys: CryptoKeyPair;
  readonly pem: string;
}

let serial = 1;
function nextSerial(): string {
  serial += 1;
  return `7f${serial.toString(16).padStart(16, '0')}`;
}

const NOT_BEFORE = new Date('2026-01-01T00:00:00Z');
const NOT_AFTER = new Date('2036-01-01T00:00:00Z');

/** A CA certificate: self-signed when `issuer` is absent. */
export async function syntheticCa(name: string, issuer?: SyntheticCa): Promise<SyntheticCa> {
  const keys = await crypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: nextSerial(),
      subject: `CN=${name}`,
      issuer: issuer?.cert.subject ?? `CN=${name}`,
      notBefore: NOT_BEFORE,
      notAfter: NOT_AFTER,
      signingAlgorithm: EC,
      publicKey: keys.publicKey,
      signingKey: issuer?.keys.privateKey ?? keys.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        ...(issuer
          ? [await x509.AuthorityKeyIdentifierExtension.create(issuer.keys.publicKey, false, crypto)]
          : []),
      ],
    },
    crypto,
  );
  return { cert, keys, pem: `${cert.toString('pem')}\n` };
}

/** A workload leaf for `publicKey` naming `uri` (critical SAN, empty subject), signed by `issuer`. */
export async function syntheticLeaf(issuer: SyntheticCa, publicKey: KeyObject, uri: string): Promise<string> {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const alg =
    publicKey.asymmetricKeyType === 'rsa'
      ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }
      : {
          name: 'ECDSA',
          namedCurve: publicKey.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'P-384' : 'P-256',
        };
  const key = await crypto.subtle.importKey('spki', spki, alg, true, ['verify']);
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: nextSerial(),
      subject: '',
      issuer: issuer.cert.subject,
      notBefore: NOT_BEFORE,
      notAfter: new Date('2027-01-01T00:00:00Z'),
      signingAlgorithm: EC,
      publicKey: key,
      signingKey: issuer.keys.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        publicKey.asymmetricKeyType === 'rsa'
          ? new x509.KeyUsagesExtension(
              x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
              true,
            )
          : new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([
          x509.ExtendedKeyUsage.serverAuth,
          x509.ExtendedKeyUsage.clientAuth,
        ]),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }], true),
        await x509.AuthorityKeyIdentifierExtension.create(issuer.keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return `${cert.toString('pem')}\n`;
}

/** The moment the synthetic certificates are all valid (for openssl -attime). */
export const SYNTHETIC_AT_SECONDS = Math.floor(new Date('2026-06-01T00:00:00Z').getTime() / 1000);
