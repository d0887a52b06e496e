import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { webcrypto, x509 } from '../../ca/x509.js';

export function rsaKey(bits: number, publicExponent = 65537): KeyObject {
  return generateKeyPairSync('rsa', { modulusLength: bits, publicExponent }).privateKey;
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
