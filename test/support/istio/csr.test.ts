import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openssl } from '../openssl-run.js';
import { testDir } from '../temp-dir.js';
import { istioCsr } from './index.js';

const ID = 'spiffe://cluster.local/ns/bookinfo/sa/reviews';

/** `openssl req -text -noout -verify` of a PEM CSR (the signature must verify). */
function reqText(dir: string, pem: string): string {
  const file = join(dir, 'req.pem');
  writeFileSync(file, pem);
  const r = openssl(['req', '-in', file, '-noout', '-text', '-verify']);
  assert.ok(r.ok, r.stderr);
  return r.stdout;
}

/** The DER of the subject Name, as `openssl asn1parse` shows the CSR's first fields. */
function subjectDump(dir: string, pem: string): string {
  const file = join(dir, 'req.pem');
  writeFileSync(file, pem);
  const r = openssl(['asn1parse', '-in', file]);
  assert.ok(r.ok, r.stderr);
  // lines after the version INTEGER up to the SubjectPublicKeyInfo SEQUENCE (depth 2)
  const lines = r.stdout.split('\n');
  const v = lines.findIndex((l) => /d=2 .*INTEGER/.test(l));
  const spki = lines.findIndex((l, i) => i > v + 1 && /d=2 .*cons: SEQUENCE/.test(l));
  return lines.slice(v + 1, spki).join('\n');
}

describe('the Istio test client: CSRs as the real clients make them', () => {
  it('istio-agent: RSA-2048 (e=65537), subject O= with an empty PrintableString, one critical URI SAN, SHA-256', async (t) => {
    const dir = testDir(t);
    const { csrPem } = await istioCsr({ style: 'istio-agent', spiffeId: ID });
    assert.match(csrPem, /^-----BEGIN CERTIFICATE REQUEST-----\n/);
    const text = reqText(dir, csrPem);
    assert.match(text, /Public-Key: \(2048 bit\)/);
    assert.match(text, /Exponent: 65537 \(0x10001\)/);
    assert.match(text, /Subject: O\s*=\s*\n/);
    assert.match(
      text,
      /X509v3 Subject Alternative Name: critical\n\s+URI:spiffe:\/\/cluster\.local\/ns\/bookinfo\/sa\/reviews\n/,
    );
    assert.match(text, /Signature Algorithm: sha256WithRSAEncryption/);
    // the subject is one RDN with organizationName = "" (PrintableString), not an empty Name
    const subject = subjectDump(dir, csrPem);
    assert.match(subject, /OBJECT\s+:organizationName/);
    assert.match(subject, /l=\s*0 prim: PRINTABLESTRING/);
  });

  it('istio-agent with an ECDSA key (ECC_SIGNATURE_ALGORITHM): P-256 or P-384, the same subject and SAN', async (t) => {
    const dir = testDir(t);
    for (const [key, curve] of [
      ['p256', 'prime256v1'],
      ['p384', 'secp384r1'],
    ] as const) {
      const text = reqText(dir, (await istioCsr({ style: 'istio-agent', spiffeId: ID, key })).csrPem);
      assert.match(text, new RegExp(`ASN1 OID: ${curve}`), key);
      assert.match(text, /Subject: O\s*=\s*\n/, key);
      assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/, key);
    }
  });

  it('ztunnel: P-256, an empty subject, one critical URI SAN, ECDSA with SHA-256', async (t) => {
    const dir = testDir(t);
    const { csrPem } = await istioCsr({ style: 'ztunnel', spiffeId: ID });
    const text = reqText(dir, csrPem);
    assert.match(text, /ASN1 OID: prime256v1/);
    assert.match(text, /Subject:\s*\n/);
    assert.match(
      text,
      /X509v3 Subject Alternative Name: critical\n\s+URI:spiffe:\/\/cluster\.local\/ns\/bookinfo\/sa\/reviews\n/,
    );
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(subjectDump(dir, csrPem), /^\s*\d+:d=2\s+hl=2 l=\s*0 cons: SEQUENCE\s*$/);
  });

  it('the key it returns is the CSR key, and every call makes a new one', async (t) => {
    const dir = testDir(t);
    const a = await istioCsr({ style: 'ztunnel', spiffeId: ID });
    const b = await istioCsr({ style: 'ztunnel', spiffeId: ID });
    writeFileSync(join(dir, 'req.pem'), a.csrPem);
    const pub = openssl(['req', '-in', join(dir, 'req.pem'), '-noout', '-pubkey']);
    assert.equal(pub.stdout, a.publicKey.export({ type: 'spki', format: 'pem' }));
    assert.notEqual(pub.stdout, b.publicKey.export({ type: 'spki', format: 'pem' }));
    assert.equal(a.privateKey.asymmetricKeyType, 'ec');
  });

  it('makes the bad CSRs the refusal tests need: extra SANs, a CN, a short RSA key', async (t) => {
    const dir = testDir(t);
    const text = reqText(
      dir,
      (
        await istioCsr({
          style: 'istio-agent',
          spiffeId: ID,
          key: 'rsa1024',
          extraSans: [{ type: 'dns', value: 'reviews.bookinfo.svc' }],
          subject: [{ '2.5.4.3': ['reviews'] }],
        })
      ).csrPem,
    );
    assert.match(text, /Public-Key: \(1024 bit\)/);
    assert.match(text, /Subject: CN\s*=\s*reviews/);
    assert.match(
      text,
      /URI:spiffe:\/\/cluster\.local\/ns\/bookinfo\/sa\/reviews, DNS:reviews\.bookinfo\.svc/,
    );
  });
});
