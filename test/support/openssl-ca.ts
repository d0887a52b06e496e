import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createKeyObjectSigner,
  createLeafTemplate,
  decodeOnePem,
  encodePem,
  generateKey,
  parseCertificate,
  type CertificateInfo,
  type Signer,
} from '../../ca/index.js';
import { openssl } from './openssl.js';
import { spkiOf, type TestPki } from './pki.js';

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
  writeFileSync(join(dir, 'anchor.key'), encodePem('PRIVATE KEY', pki.anchor.signer.exportPkcs8()));
  let n = 0;
  return async (extra, pathLen = 0) => {
    const id = `i${++n}`;
    const signer = createKeyObjectSigner(await generateKey('p256'));
    const key = join(dir, `${id}.key`);
    writeFileSync(key, encodePem('PRIVATE KEY', signer.exportPkcs8()));
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
    writeFileSync(
      join(dir, `${id}.ext`),
      [
        '[v3]',
        `basicConstraints = critical,CA:TRUE${pathLen !== null ? `,pathlen:${pathLen}` : ''}`,
        'keyUsage = critical,keyCertSign,cRLSign',
        'subjectKeyIdentifier = hash',
        'authorityKeyIdentifier = keyid',
        ...extra,
        '',
      ].join('\n'),
    );
    const r = openssl([
      'x509',
      '-req',
      '-in',
      join(dir, `${id}.csr`),
      '-CA',
      join(dir, 'anchor.crt'),
      '-CAkey',
      join(dir, 'anchor.key'),
      '-set_serial',
      String(1000 + n),
      '-days',
      '30',
      '-extfile',
      join(dir, `${id}.ext`),
      '-extensions',
      'v3',
      '-out',
      join(dir, `${id}.crt`),
    ]);
    assert.ok(r.ok, r.stderr);
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
