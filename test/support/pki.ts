import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import {
  createAnchorCertificate,
  createIssuerCertificate,
  keyIdentifier,
  randomSerial,
} from '../../ca/profiles.js';
import {
  createIssuerCredential,
  encodePem,
  parseCertificate,
  type CertificateInfo,
  type IssuerCredential,
} from '../../ca/index.js';
import {
  createKeyObjectSigner,
  generateKey,
  type KeyAlgorithm,
  type Signer,
  type SyncSigner,
} from '../../ca/keys/index.js';
import { bytes, webcrypto, x509, x509SigningWith } from '../../ca/x509.js';

export interface TestCa {
  readonly signer: Signer;
  readonly cert: CertificateInfo;
}

/**
 * A new key as a Signer and as PKCS#8 PEM, for tests that write key files (a Signer never exports
 * its private key; the test keeps the PEM it made).
 */
export async function testKey(alg: KeyAlgorithm = 'p256'): Promise<{ signer: SyncSigner; keyPem: string }> {
  const key = await generateKey(alg);
  return {
    signer: createKeyObjectSigner(key),
    keyPem: encodePem('PRIVATE KEY', key.export({ type: 'pkcs8', format: 'der' })),
  };
}

export interface TestPki {
  readonly anchor: TestCa & { readonly keyPem: string };
  readonly anchorsPem: string;
  readonly issuers: Record<
    string,
    TestCa & { readonly credential: IssuerCredential; readonly certPem: string; readonly keyPem: string }
  >;
}

/** A throw-away anchor → per-cluster issuers tree, valid at `now`. */
export async function testPki(options: {
  now: Date;
  anchorKey?: KeyAlgorithm;
  issuerKey?: KeyAlgorithm;
  clusters?: readonly string[];
  issuerLifetimeMs?: number;
  anchorLifetimeMs?: number;
  permitDns?: readonly string[];
  permitSpiffe?: string;
}): Promise<TestPki> {
  const { signer: anchorSigner, keyPem: anchorKeyPem } = await testKey(options.anchorKey ?? 'p256');
  const anchorCert = await createAnchorCertificate({
    signer: anchorSigner,
    now: options.now,
    ...(options.anchorLifetimeMs !== undefined ? { lifetimeMs: options.anchorLifetimeMs } : {}),
  });
  const anchorsPem = encodePem('CERTIFICATE', anchorCert.der);
  const issuers: TestPki['issuers'] = {};
  for (const cluster of options.clusters ?? ['east']) {
    const { signer, keyPem } = await testKey(options.issuerKey ?? 'p256');
    const cert = await createIssuerCertificate({
      anchor: anchorCert,
      anchorSigner,
      issuerPublicKeyDer: signer.publicKeyDer,
      now: options.now,
      cluster,
      ...(options.issuerLifetimeMs !== undefined ? { lifetimeMs: options.issuerLifetimeMs } : {}),
      ...(options.permitDns !== undefined ? { permitDns: options.permitDns } : {}),
      ...(options.permitSpiffe !== undefined ? { permitSpiffe: options.permitSpiffe } : {}),
    });
    const certPem = encodePem('CERTIFICATE', cert.der);
    const credential = createIssuerCredential({
      certificatePem: certPem,
      signer,
      anchorsPem,
      now: options.now,
    });
    issuers[cluster] = {
      signer,
      cert,
      credential,
      certPem,
      keyPem,
    };
  }
  return { anchor: { signer: anchorSigner, cert: anchorCert, keyPem: anchorKeyPem }, anchorsPem, issuers };
}

export type CsrKeySpec = 'p256' | 'p384' | 'p521' | 'rsa1024' | 'rsa2048' | 'ed25519';

export function csrKey(spec: CsrKeySpec): KeyObject {
  switch (spec) {
    case 'p256':
      return generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    case 'p384':
      return generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey;
    case 'p521':
      return generateKeyPairSync('ec', { namedCurve: 'secp521r1' }).privateKey;
    case 'rsa1024':
      return generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    case 'rsa2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    case 'ed25519':
      return generateKeyPairSync('ed25519').privateKey;
  }
}

/** A CSR built by @peculiar/x509 (an independent encoder), with whatever names a test wants. */
export async function makeCsr(options: {
  key?: KeyObject;
  keySpec?: CsrKeySpec;
  dns?: readonly string[];
  uris?: readonly string[];
  ips?: readonly string[];
  emails?: readonly string[];
  subject?: string;
}): Promise<{ der: Buffer; key: KeyObject }> {
  const key = options.key ?? csrKey(options.keySpec ?? 'p256');
  const details = key.asymmetricKeyDetails ?? {};
  const alg =
    key.asymmetricKeyType === 'ec'
      ? {
          name: 'ECDSA',
          namedCurve:
            details.namedCurve === 'secp384r1'
              ? 'P-384'
              : details.namedCurve === 'secp521r1'
                ? 'P-521'
                : 'P-256',
          hash: 'SHA-256',
        }
      : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, alg, false, ['sign']);
  const spki = (await import('node:crypto')).createPublicKey(key).export({ type: 'spki', format: 'der' });
  const publicKey = await webcrypto.subtle.importKey('spki', spki, alg, true, ['verify']);
  const names: x509.JsonGeneralName[] = [
    ...(options.dns ?? []).map((v) => ({ type: 'dns' as const, value: v })),
    ...(options.uris ?? []).map((v) => ({ type: 'url' as const, value: v })),
    ...(options.ips ?? []).map((v) => ({ type: 'ip' as const, value: v })),
    ...(options.emails ?? []).map((v) => ({ type: 'email' as const, value: v })),
  ];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      ...(options.subject !== undefined ? { name: options.subject } : {}),
      keys: { privateKey, publicKey },
      signingAlgorithm: alg,
      extensions: names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : [],
    },
    webcrypto,
  );
  return { der: Buffer.from(csr.rawData), key };
}

/** SubjectPublicKeyInfo DER of a fresh key, for leaves built directly with a LeafTemplate. */
export function spkiOf(key: KeyObject = csrKey('p256')): Buffer {
  return createPublicKey(key).export({ type: 'spki', format: 'der' });
}

/**
 * A certificate signed by `issuer` with hand-picked CA flags and key usages, for chains the
 * profiles never make (a non-CA in the middle, a CA without keyCertSign, a too-deep path).
 */
export async function createTestCertificate(options: {
  issuer: TestCa;
  subjectSigner: Signer;
  commonName: string;
  notBefore: Date;
  notAfter: Date;
  isCa: boolean;
  pathLen?: number;
  /** keyCertSign + cRLSign for a CA, digitalSignature otherwise */
  keyUsage?: x509.KeyUsageFlags;
}): Promise<CertificateInfo> {
  const { crypto, signingKey, signingAlgorithm } = x509SigningWith(options.issuer.signer);
  const issuerSki = options.issuer.cert.subjectKeyId ?? keyIdentifier(options.issuer.cert.spki);
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial().toString('hex'),
      subject: [{ CN: [options.commonName] }],
      issuer: new x509.X509Certificate(bytes(options.issuer.cert.der)).subjectName,
      notBefore: options.notBefore,
      notAfter: options.notAfter,
      signingAlgorithm,
      publicKey: bytes(options.subjectSigner.publicKeyDer),
      signingKey,
      extensions: [
        new x509.BasicConstraintsExtension(options.isCa, options.pathLen, true),
        options.keyUsage !== undefined
          ? new x509.KeyUsagesExtension(options.keyUsage, true)
          : options.isCa
            ? new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)
            : new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.SubjectKeyIdentifierExtension(
          keyIdentifier(options.subjectSigner.publicKeyDer).toString('hex'),
        ),
        new x509.AuthorityKeyIdentifierExtension(issuerSki.toString('hex')),
      ],
    },
    crypto,
  );
  return parseCertificate(new Uint8Array(cert.rawData));
}
