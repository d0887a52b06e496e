import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { X509Certificate } from 'node:crypto';
import { encodePem, parseCertificate } from '../../ca/index.js';
import { runLanyard } from '../support/cli-inproc.js';
import { testPki } from '../support/pki.js';
import { certPem, cliCode, NOW, nonCaCertificate, withPemHeaders } from './fixtures.js';
import { testDir } from '../support/temp-dir.js';

/**
 * A CA certificate whose subjectKeyIdentifier extension has tag 0x00 instead of SEQUENCE: Lanyard's
 * certificate reader skips over it (it still reads CA:TRUE), OpenSSL's parser refuses the certificate.
 */
function withExtensionTagZeroed(der: Buffer): Buffer {
  const at = der.indexOf(Buffer.from('0603551d0e', 'hex')) - 2;
  assert.ok(at > 0 && der[at] === 0x30, 'the anchor has a subjectKeyIdentifier extension');
  const out = Buffer.from(der);
  out[at] = 0x00;
  assert.equal(parseCertificate(out).isCa, true, "Lanyard's reader alone accepts it");
  assert.throws(() => new X509Certificate(out), "OpenSSL's does not");
  return out;
}

describe('bundle refusals name the offending file', () => {
  it('for PEM headers, a certificate that is not a CA, one OpenSSL cannot load, and trailing bytes after the DER', async (t) => {
    const pki = await testPki({ now: NOW });
    const dir = testDir(t, 'lanyard-bundle-refusal-');
    const cases: [string, string, string][] = [
      ['headers.pem', withPemHeaders(pki.anchorsPem), 'ERR_PEM_HEADERS'],
      ['not-ca.pem', certPem(await nonCaCertificate(pki)), 'ERR_NOT_CA'],
      ['openssl-refuses.pem', certPem(withExtensionTagZeroed(pki.anchor.cert.der)), 'ERR_CERT_MALFORMED'],
      [
        'trailing.pem',
        encodePem('CERTIFICATE', Buffer.concat([pki.anchor.cert.der, Buffer.from([0, 0])])),
        'ERR_CERT_MALFORMED',
      ],
    ];
    for (const [name, text, code] of cases) {
      const file = join(dir, name);
      writeFileSync(file, text);
      for (const args of [
        ['bundle', 'create', '--out', join(dir, `out-${name}`), file],
        ['bundle', 'show', file],
      ]) {
        const r = await runLanyard(args);
        assert.equal(r.code, 1, `${args.join(' ')}: ${r.err}`);
        assert.equal(cliCode(r.err), code, r.err);
        assert.ok(r.err.includes(file), `${args.join(' ')} names ${file}: ${r.err}`);
      }
    }
  });
});
