import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLeafTemplate, parseCertificate, type CertificateInfo } from '../../ca/index.js';
import { decodeOnePem } from '../../ca/pem.js';
import { type Signer } from '../../ca/keys/index.js';
import { openssl } from './openssl.js';
import { spkiOf, testKey, type TestPki } from './pki.js';

export interface OpensslIssuer {
  readonly cert: CertificateInfo;
  readonly signer: Signer;
}

/**
 * Makes intermediates the way other tools (cert-manager, openssl) can and Lanyard's profiles never do:
 * each signed by `pki`'s anchor with `openssl x509 -req -extfile`, a CA (pathLen given, default 0)
 * with `extra` extension lines (e.g. `nameConstraints = critical,excluded;DNS:x`). Files go to `dir`.
 */
export function opensslIssuerFactory(
  pki: TestPki,
  dir: string,
): (extra: readonly string[], pathLen?: number | null) => Promise<OpensslIssuer> {
  writeFileSync(join(dir, 'anchor.crt'), pki.anchorsPem);
  writeFileSync(join(dir, 'anchor.key'), pki.anchor.keyPem);
  let n = 0;
  return async (extra, pathLen = 0) => {
    const id = `i${++n}`;
    const { signer, keyPem } = await testKey('p256');
    const key = join(dir, `${id}.key`);
    writeFileSync(key, keyPem);
    const csr = openssl([
      'req',
      '-new',
      '-key',
      key,
      '-subj',
      `/CN=${id}.example`,
      '-out',
      join(dir, `${id}.csr`),
    ]);
    assert.ok(csr.ok, csr.stderr);
    opensslSign({
      csr: join(dir, `${id}.csr`),
      ca: { cert: join(dir, 'anchor.crt'), key: join(dir, 'anchor.key') },
      serial: String(1000 + n),
      days: 30,
      extensions: [
        `basicConstraints = critical,CA:TRUE${pathLen !== null ? `,pathlen:${pathLen}` : ''}`,
        'keyUsage = critical,keyCertSign,cRLSign',
        'subjectKeyIdentifier = hash',
        'authorityKeyIdentifier = keyid',
        ...extra,
      ],
      out: join(dir, `${id}.crt`),
    });
    const cert = parseCertificate(
      decodeOnePem(readFileSync(join(dir, `${id}.crt`), 'utf8'), 'CERTIFICATE', id),
    );
    return { cert, signer };
  };
}

/**
 * A leaf for `names` signed by `issuer` through the fast-path template (a fresh P-256 key), valid from
 * `now` − 20 s for an hour: what a Lanyard issuer made by another tool would sign.
 */
export function templateLeaf(
  issuer: { readonly cert: CertificateInfo; readonly signer: Signer },
  now: Date,
  names: { readonly dnsName: string; readonly uri: string },
): Buffer {
  return createLeafTemplate(issuer.cert, issuer.signer).sign({
    spki: spkiOf(),
    dnsName: names.dnsName,
    uri: names.uri,
    notBefore: new Date(now.getTime() - 20_000),
    notAfter: new Date(now.getTime() + 3_600_000),
  }).der;
}

export const IDENTITY_SVC_NAME = 'linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local';

/**
 * The identity service's serving certificate as Linkerd's control plane has one: a leaf for `name`
 * (a DNS SAN) signed by `issuer` (a mesh issuer's tls.crt / tls.key) with `openssl x509 -req`, so it chains to the mesh's
 * trust anchors. PEM: the leaf then the issuer (what a kubernetes.io/tls Secret holds in tls.crt).
 * `key` picks the serving key, `eku` its extended key usage ('none': no EKU extension).
 */
export function opensslServingCert(
  issuer: { readonly certPem: string; readonly keyPem: string },
  dir: string,
  options: {
    name?: string;
    key?: 'p256' | 'p521' | 'rsa2048';
    eku?: 'serverAuth' | 'clientAuth' | 'serverAuth,clientAuth' | 'none';
    id?: string;
  } = {},
): { certPem: string; keyPem: string; certPath: string; keyPath: string } {
  const id = options.id ?? `serving-${options.key ?? 'p256'}-${options.eku ?? 'serverAuth'}`;
  const p = (ext: string): string => join(dir, `${id}.${ext}`);
  writeFileSync(p('issuer.crt'), issuer.certPem);
  writeFileSync(p('issuer.key'), issuer.keyPem, { mode: 0o600 });
  const keyArgs =
    options.key === 'rsa2048'
      ? ['-newkey', 'rsa:2048']
      : ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${options.key === 'p521' ? 'P-521' : 'P-256'}`];
  const req = openssl([
    'req',
    '-new',
    ...keyArgs,
    '-nodes',
    '-subj',
    '/',
    '-keyout',
    p('key'),
    '-out',
    p('csr'),
  ]);
  assert.ok(req.ok, req.stderr);
  const eku = options.eku ?? 'serverAuth';
  opensslSign({
    csr: p('csr'),
    ca: { cert: p('issuer.crt'), key: p('issuer.key') },
    serial: '0x' + randomBytes(8).toString('hex'),
    days: 2,
    extensions: [
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      `subjectAltName = critical,DNS:${options.name ?? IDENTITY_SVC_NAME}`,
      ...(eku === 'none' ? [] : [`extendedKeyUsage = ${eku}`]),
      'authorityKeyIdentifier = keyid',
    ],
    out: p('leaf.crt'),
  });
  const certPem = readFileSync(p('leaf.crt'), 'utf8') + issuer.certPem;
  writeFileSync(p('crt'), certPem);
  return { certPem, keyPem: readFileSync(p('key'), 'utf8'), certPath: p('crt'), keyPath: p('key') };
}

/** `openssl x509 -req`: signs `csr` with `ca`, with exactly `extensions` (openssl config lines). */
function opensslSign(o: {
  csr: string;
  ca: { cert: string; key: string };
  serial: string;
  days: number;
  extensions: readonly string[];
  out: string;
}): void {
  const ext = `${o.out}.ext`;
  writeFileSync(ext, ['[v3]', ...o.extensions, ''].join('\n'));
  const r = openssl([
    'x509',
    '-req',
    '-in',
    o.csr,
    '-CA',
    o.ca.cert,
    '-CAkey',
    o.ca.key,
    '-set_serial',
    o.serial,
    '-days',
    String(o.days),
    '-extfile',
    ext,
    '-extensions',
    'v3',
    '-out',
    o.out,
  ]);
  assert.ok(r.ok, r.stderr);
}

/**
 * A self-signed anchor made by `openssl req -x509` (as `step --profile root-ca` makes one: pathLen
 * given), valid from the real current time for `days`: pick `now` from its notBefore.
 */
export async function opensslAnchor(
  dir: string,
  o: { readonly pathLen?: number; readonly days?: number; readonly cn?: string } = {},
): Promise<{
  readonly cert: CertificateInfo;
  readonly signer: Signer;
  readonly keyPem: string;
  readonly pem: string;
}> {
  const { signer, keyPem } = await testKey('p256');
  const id = `root-${randomBytes(4).toString('hex')}`;
  writeFileSync(join(dir, `${id}.key`), keyPem, { mode: 0o600 });
  const r = openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    join(dir, `${id}.key`),
    '-subj',
    `/CN=${o.cn ?? id}`,
    '-days',
    String(o.days ?? 400),
    '-addext',
    `basicConstraints = critical,CA:TRUE${o.pathLen !== undefined ? `,pathlen:${o.pathLen}` : ''}`,
    '-addext',
    'keyUsage = critical,keyCertSign,cRLSign',
    '-out',
    join(dir, `${id}.crt`),
  ]);
  assert.ok(r.ok, r.stderr);
  const pem = readFileSync(join(dir, `${id}.crt`), 'utf8');
  return { cert: parseCertificate(decodeOnePem(pem, 'CERTIFICATE', id)), signer, keyPem, pem };
}
