// A stand-in for cert-manager's CA issuer: turns a Certificate resource into the Secret data
// cert-manager would write for it (tls.crt, tls.key, ca.crt), so a test can mount exactly what a
// cluster would hold. Only the fields the deploy/ Certificates use are understood; any other field
// of the spec throws, so a Certificate the stand-in cannot honour is never silently approximated.
//
// What cert-manager does (pkg/util/pki: generate.go, certificatetemplate.go, keyusage.go,
// parse_certificate_chain.go), as followed here:
// - the key: privateKey.algorithm RSA (the default; size 2048), ECDSA (size 256/384/521, default 256)
//   or Ed25519; privateKey.encoding PKCS1 (the default: "RSA PRIVATE KEY" / "EC PRIVATE KEY") or
//   PKCS8 ("PRIVATE KEY"; Ed25519 is always PKCS#8);
// - the subject from commonName and subject.organizationalUnits, dnsNames as DNS SANs, the SAN
//   extension critical when the subject is empty;
// - basicConstraints critical with CA from isCA; keyUsage critical from usages (default: digital
//   signature, key encipherment; "cert sign" added for a CA); extendedKeyUsage from usages, absent
//   when no usage is an extended one;
// - notBefore now, notAfter now + duration (default 90 days: 2160h);
// - signed by the ClusterIssuer's CA Secret (tls.crt / tls.key); tls.crt holds the new certificate
//   and the CA's chain without a self-signed root, ca.crt the CA (here: the root).
// Signing is done by the openssl binary (`openssl x509 -req`), so the certificate is not made by
// Lanyard's own code.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ICertificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate';
import { openssl } from '../support/openssl.js';
import { goDurationMs } from './support.js';

/** The data of the Secret cert-manager writes (type kubernetes.io/tls). */
export type IssuedSecret = Readonly<Record<'tls.crt' | 'tls.key' | 'ca.crt', string>>;

/** A CA Secret (kubernetes.io/tls) that a `ClusterIssuer` of kind `ca` reads. */
export interface CaSecret {
  readonly certPem: string;
  readonly keyPem: string;
}

const KEY_USAGES: Record<string, string> = {
  signing: 'digitalSignature',
  'digital signature': 'digitalSignature',
  'content commitment': 'nonRepudiation',
  'key encipherment': 'keyEncipherment',
  'key agreement': 'keyAgreement',
  'data encipherment': 'dataEncipherment',
  'cert sign': 'keyCertSign',
  'crl sign': 'cRLSign',
  'encipher only': 'encipherOnly',
  'decipher only': 'decipherOnly',
};
const EXT_KEY_USAGES: Record<string, string> = {
  'server auth': 'serverAuth',
  'client auth': 'clientAuth',
  'code signing': 'codeSigning',
  'email protection': 'emailProtection',
  's/mime': 'emailProtection',
  timestamping: 'timeStamping',
  'ocsp signing': 'OCSPSigning',
  any: 'anyExtendedKeyUsage',
};

/** Spec fields this stand-in honours; anything else in a Certificate's spec is refused. */
const UNDERSTOOD = new Set([
  'secretName',
  'secretTemplate',
  'commonName',
  'subject',
  'dnsNames',
  'duration',
  'renewBefore',
  'isCA',
  'privateKey',
  'usages',
  'issuerRef',
]);

function generate(spec: ICertificate['spec']): { key: KeyObject; pem: string } {
  const pk = spec.privateKey ?? {};
  const algorithm = pk.algorithm ?? 'RSA';
  const encoding = pk.encoding ?? 'PKCS1';
  if (algorithm === 'RSA') {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: pk.size ?? 2048 });
    const type = encoding === 'PKCS8' ? 'pkcs8' : 'pkcs1';
    return { key: privateKey, pem: privateKey.export({ type, format: 'pem' }) as string };
  }
  if (algorithm === 'ECDSA') {
    const curve = { 256: 'P-256', 384: 'P-384', 521: 'P-521' }[pk.size ?? 256];
    assert.ok(curve !== undefined, `ECDSA size ${String(pk.size)}`);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: curve });
    const type = encoding === 'PKCS8' ? 'pkcs8' : 'sec1';
    return { key: privateKey, pem: privateKey.export({ type, format: 'pem' }) as string };
  }
  assert.equal(algorithm, 'Ed25519', `privateKey.algorithm ${algorithm}`);
  const { privateKey } = generateKeyPairSync('ed25519');
  return { key: privateKey, pem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

function subjectOf(spec: ICertificate['spec']): string {
  const s = spec.subject ?? {};
  for (const k of Object.keys(s))
    assert.ok(k === 'organizationalUnits', `subject.${k} is not understood by the stand-in`);
  // Go's pkix.Name order: ... OU ... CN
  const rdns = [
    ...(s.organizationalUnits ?? []).map((ou) => `/OU=${ou}`),
    ...(spec.commonName !== undefined ? [`/CN=${spec.commonName}`] : []),
  ];
  return rdns.length === 0 ? '/' : rdns.join('');
}

/**
 * Issues `certificate` as cert-manager's CA issuer would with `ca` (the ClusterIssuer's Secret), at
 * the wall-clock time. Work files go to `dir` (one sub-name per call through `id`).
 */
export function issueCertificate(
  certificate: ICertificate,
  ca: CaSecret,
  dir: string,
  id = certificate.metadata?.name ?? 'certificate',
): IssuedSecret {
  const spec = certificate.spec;
  for (const k of Object.keys(spec))
    assert.ok(UNDERSTOOD.has(k), `spec.${k} is not understood by the cert-manager stand-in`);
  const p = (ext: string): string => join(dir, `${id}.${ext}`);
  const { pem: keyPem } = generate(spec);
  writeFileSync(p('key'), keyPem, { mode: 0o600 });
  writeFileSync(p('ca.crt'), ca.certPem);
  writeFileSync(p('ca.key'), ca.keyPem, { mode: 0o600 });

  const subject = subjectOf(spec);
  const req = openssl(['req', '-new', '-key', p('key'), '-subj', subject, '-out', p('csr')]);
  assert.ok(req.ok, req.stderr);

  const isCA = spec.isCA === true;
  const usages = spec.usages ?? ['digital signature', 'key encipherment'];
  const ku = new Set<string>();
  const eku: string[] = [];
  for (const u of usages) {
    const k = KEY_USAGES[u];
    const e = EXT_KEY_USAGES[u];
    assert.ok(k !== undefined || e !== undefined, `usage "${u}" is not understood by the stand-in`);
    if (k !== undefined) ku.add(k);
    if (e !== undefined) eku.push(e);
  }
  if (isCA) ku.add('keyCertSign');
  const dns = spec.dnsNames ?? [];
  writeFileSync(
    p('ext'),
    [
      '[v3]',
      `basicConstraints = critical,CA:${isCA ? 'TRUE' : 'FALSE'}`,
      ...(ku.size > 0 ? [`keyUsage = critical,${[...ku].join(',')}`] : []),
      ...(eku.length > 0 ? [`extendedKeyUsage = ${eku.join(',')}`] : []),
      ...(dns.length > 0
        ? [`subjectAltName = ${subject === '/' ? 'critical,' : ''}${dns.map((d) => `DNS:${d}`).join(',')}`]
        : []),
      // Go (cert-manager) gives only a CA a subject key identifier; openssl would add one to all
      `subjectKeyIdentifier = ${isCA ? 'hash' : 'none'}`,
      'authorityKeyIdentifier = keyid',
      '',
    ].join('\n'),
  );
  const serial = randomBytes(16);
  serial[0] = (serial[0] as number) & 0x7f;
  const days = Math.ceil(goDurationMs(spec.duration ?? '2160h') / 86_400_000);
  const signed = openssl([
    'x509',
    '-req',
    '-in',
    p('csr'),
    '-CA',
    p('ca.crt'),
    '-CAkey',
    p('ca.key'),
    '-set_serial',
    `0x${serial.toString('hex')}`,
    '-days',
    String(days),
    '-extfile',
    p('ext'),
    '-extensions',
    'v3',
    '-out',
    p('crt'),
  ]);
  assert.ok(signed.ok, signed.stderr);
  const leafPem = readFileSync(p('crt'), 'utf8');
  const caCert = new X509Certificate(ca.certPem);
  const selfSigned = caCert.checkIssued(caCert) && caCert.verify(caCert.publicKey);
  return {
    'tls.crt': selfSigned ? leafPem : leafPem + ca.certPem,
    'tls.key': keyPem,
    'ca.crt': ca.certPem,
  };
}
