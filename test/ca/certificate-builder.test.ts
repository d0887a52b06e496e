// The profiles build anchors and issuers with the DER writer, signing through the Signer seam only.
// @peculiar/x509 built them before; these tests hold the new encoding to what it produced for the
// same fields (serial, validity, names, key, extensions), byte for byte in the TBSCertificate.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createAnchorCertificate, createIssuerCertificate, keyIdentifier } from '../../ca/profiles.js';
import { createKeyObjectSigner, generateKey, type KeyAlgorithm } from '../../ca/keys/index.js';
import { parseCertificate, type CertificateInfo } from '../../ca/index.js';
import { OID } from '../../ca/der/oids.js';
import { nameConstraintsDer } from '../../ca/profiles.js';
import { implicitPrim, seq } from '../../ca/der/writer.js';
import { bytes, webcrypto, webcryptoAlgorithm, webcryptoSigningAlgorithm, x509 } from '../../ca/x509.js';
import { remoteSigner } from '../support/signers.js';

const NOW = new Date('2026-03-01T12:34:56.789Z');

/** The extensions exactly as profiles.ts made them with @peculiar/x509. */
function x509CaExtensions(
  ski: Buffer,
  aki: Buffer,
  pathLen: number | undefined,
  constraints?: Buffer,
): x509.Extension[] {
  const exts: x509.Extension[] = [
    new x509.BasicConstraintsExtension(true, pathLen, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    new x509.SubjectKeyIdentifierExtension(ski.toString('hex')),
    new x509.Extension(OID.authorityKeyIdentifier, false, bytes(seq(implicitPrim(0, aki)))),
  ];
  if (constraints !== undefined) exts.push(new x509.Extension(OID.nameConstraints, true, bytes(constraints)));
  return exts;
}

async function webcryptoKeys(alg: KeyAlgorithm): Promise<{
  signer: ReturnType<typeof createKeyObjectSigner>;
  privateKey: CryptoKey;
}> {
  const key = await generateKey(alg);
  const privateKey = await webcrypto.subtle.importKey(
    'pkcs8',
    bytes(key.export({ type: 'pkcs8', format: 'der' })),
    webcryptoAlgorithm(alg),
    false,
    ['sign'],
  );
  return { signer: createKeyObjectSigner(key), privateKey };
}

/** What @peculiar/x509 builds for the fields `made` carries. */
async function x509Tbs(
  made: CertificateInfo,
  o: {
    alg: KeyAlgorithm;
    privateKey: CryptoKey;
    subject: x509.JsonName;
    issuer: x509.Name | x509.JsonName;
    extensions: x509.Extension[];
  },
): Promise<Buffer> {
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: made.serialHex,
      subject: o.subject,
      issuer: o.issuer,
      notBefore: made.notBefore,
      notAfter: made.notAfter,
      signingAlgorithm: webcryptoSigningAlgorithm(o.alg),
      publicKey: bytes(made.spki),
      signingKey: o.privateKey,
      extensions: o.extensions,
    },
    webcrypto,
  );
  return parseCertificate(new Uint8Array(cert.rawData)).tbs;
}

describe('CA certificates built with the DER writer', () => {
  const names = ['root.linkerd.cluster.local', 'root.é', 'Root CA (east) 2026', 'a\\,b', 'x"q"y', 'a_b*c'];
  for (const alg of ['p256', 'p384', 'rsa2048'] as const) {
    it(`an anchor (${alg}) has the TBSCertificate @peculiar/x509 made for the same fields`, async () => {
      const { signer, privateKey } = await webcryptoKeys(alg);
      for (const cn of names) {
        const anchor = await createAnchorCertificate({ signer, now: NOW, commonName: cn });
        const ski = keyIdentifier(signer.publicKeyDer);
        const expected = await x509Tbs(anchor, {
          alg,
          privateKey,
          // the serialNumber attribute (2.5.4.5): the first 16 hex digits of the SKI, uppercase
          subject: [{ CN: [cn] }, { '2.5.4.5': [ski.toString('hex').slice(0, 16).toUpperCase()] }],
          issuer: [{ CN: [cn] }, { '2.5.4.5': [ski.toString('hex').slice(0, 16).toUpperCase()] }],
          extensions: x509CaExtensions(ski, ski, undefined),
        });
        assert.ok(anchor.tbs.equals(expected), `${alg} ${cn}`);
      }
    });
  }

  for (const alg of ['p256', 'rsa2048'] as const) {
    it(`an issuer under a ${alg} anchor has the TBSCertificate @peculiar/x509 made, name constraints included`, async () => {
      const { signer, privateKey } = await webcryptoKeys(alg);
      const anchor = await createAnchorCertificate({ signer, now: NOW, commonName: 'root.é' });
      const issuerKey = createKeyObjectSigner(await generateKey('p384'));
      const cases = [
        { cluster: 'east' },
        {
          cluster: 'west-2',
          commonName: 'identity.west',
          permitDns: ['.west.example', 'svc'],
          permitSpiffe: 'west.td',
        },
      ];
      for (const c of cases) {
        const issuer = await createIssuerCertificate({
          ...c,
          anchor,
          anchorSigner: remoteSigner(signer),
          issuerPublicKeyDer: issuerKey.publicKeyDer,
          now: NOW,
        });
        const expected = await x509Tbs(issuer, {
          alg,
          privateKey,
          subject: [{ CN: [c.commonName ?? 'identity.linkerd.cluster.local'] }, { OU: [c.cluster] }],
          issuer: new x509.X509Certificate(bytes(anchor.der)).subjectName,
          extensions: x509CaExtensions(
            keyIdentifier(issuerKey.publicKeyDer),
            anchor.subjectKeyId ?? Buffer.alloc(0),
            0,
            nameConstraintsDer(c.permitDns ?? [], c.permitSpiffe),
          ),
        });
        assert.ok(issuer.tbs.equals(expected), c.cluster);
      }
    });
  }
});
