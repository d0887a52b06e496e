// The CSRs Istio's data plane sends, built from what istio-agent and ztunnel do (not from ca/):
// - istio-agent (security/pkg/pki/util GenCSR / GenCSRTemplate): RSA-2048 by default (ECDSA P-256
//   when ECC_SIGNATURE_ALGORITHM=ECDSA; P-384 when configured), subject = pkix.Name{Organization:
//   [""]}, i.e. one RDN O with an empty PrintableString, not an empty subject; one extension
//   requested: a critical subjectAltName holding the URI spiffe://<td>/ns/<ns>/sa/<sa>; signed
//   with SHA-256 (PKCS#1 v1.5 for RSA, as Go's x509.CreateCertificateRequest does).
// - ztunnel (src/tls/csr.rs, boring): ECDSA P-256, no subject set (an empty Name), the same critical
//   URI SAN, ECDSA with SHA-256.
// The request is PEM ("CERTIFICATE REQUEST"). @peculiar/x509 builds it; `openssl req -text` checks
// the shape in the tests.
import 'reflect-metadata';
import { KeyObject, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

export type IstioKeyKind = 'rsa2048' | 'rsa3072' | 'rsa4096' | 'p256' | 'p384' | 'rsa1024';
export type IstioClientStyle = 'istio-agent' | 'ztunnel';

export interface IstioCsr {
  readonly csrPem: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

type Params = RsaHashedKeyGenParams | (EcKeyGenParams & { hash: string });

function keyParams(kind: IstioKeyKind): Params {
  switch (kind) {
    case 'p256':
      return { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    case 'p384':
      return { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-256' };
    default: {
      const modulusLength = Number(kind.slice(3));
      const publicExponent = new Uint8Array([1, 0, 1]);
      return { name: 'RSASSA-PKCS1-v1_5', modulusLength, publicExponent, hash: 'SHA-256' };
    }
  }
}

/**
 * A CSR the way `style` makes it for `spiffeId`. istio-agent's key defaults to RSA-2048; ztunnel always
 * uses P-256 (a `key` for ztunnel is for negative tests only). `extraSans` adds names no real client
 * sends (for refusal tests); `subject` replaces the style's subject (e.g. `[{ '2.5.4.3': ['x'] }]`).
 */
export async function istioCsr(options: {
  style: IstioClientStyle;
  spiffeId: string;
  key?: IstioKeyKind;
  extraSans?: readonly x509.JsonGeneralName[];
  subject?: x509.JsonName;
}): Promise<IstioCsr> {
  const kind = options.key ?? (options.style === 'istio-agent' ? 'rsa2048' : 'p256');
  const params = keyParams(kind);
  const crypto = webcrypto as unknown as Crypto;
  const keys = await crypto.subtle.generateKey(params, true, ['sign', 'verify']);
  const subject = options.subject ?? (options.style === 'istio-agent' ? [{ '2.5.4.10': [''] }] : []);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: new x509.Name(subject),
      keys,
      signingAlgorithm: params,
      extensions: [
        new x509.SubjectAlternativeNameExtension(
          [{ type: 'url', value: options.spiffeId }, ...(options.extraSans ?? [])],
          true,
        ),
      ],
    },
    crypto,
  );
  return {
    csrPem: csr.toString('pem'),
    privateKey: KeyObject.from(keys.privateKey),
    publicKey: KeyObject.from(keys.publicKey),
  };
}
