import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { DEFAULTS, encodePem, parseCertificate, type CertificateInfo } from '../../ca/index.js';
import { createCrossCertificate, keyIdentifier, randomSerial, truncateToSeconds } from '../../ca/profiles.js';
import { extension, nameDer, signCertificate } from '../../ca/certificate-builder.js';
import { OID, seq } from '../../ca/der/index.js';
import { signatureVerifies } from '../../ca/chain.js';
import { HOUR } from '../support/clock.js';
import { crossOf, crossPki, legacyAnchor, testAnchor, type CrossPki } from '../support/cross-pki.js';
import { extensionBlock, openssl, opensslText, parseOpensslText } from '../support/openssl.js';
import { opensslAnchor } from '../support/openssl-ca.js';
import { testKey, testPki } from '../support/pki.js';
import { tempDir } from '../support/temp-dir.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const NOW = new Date('2026-06-01T00:00:00Z');
const NOW_S = NOW.getTime() / 1000;
const DAY = 24 * HOUR;

const colonHex = (b: Buffer): string => (b.toString('hex').toUpperCase().match(/../g) ?? []).join(':');

function ext(text: string, name: string): { critical: boolean; value: string } {
  const block = extensionBlock(text, name);
  assert.ok(block, `${name} is present`);
  return block;
}

/** A self-signed certificate whose basicConstraints say CA:FALSE. */
async function selfSignedNotCa(): Promise<CertificateInfo> {
  const { signer } = await testKey('p256');
  const name = nameDer([['CN', 'not-a-ca']]);
  const der = await signCertificate(signer, {
    serial: randomSerial(),
    issuer: name,
    subject: name,
    notBefore: truncateToSeconds(NOW),
    notAfter: truncateToSeconds(new Date(NOW.getTime() + DAY)),
    spki: Buffer.from(signer.publicKeyDer),
    extensions: [extension(OID.basicConstraints, true, seq())],
  });
  return parseCertificate(der);
}

describe('cross certificate (createCrossCertificate)', () => {
  let pki: CrossPki;
  before(async () => {
    pki = await crossPki({ now: NOW, aLifetimeMs: 400 * DAY, bLifetimeMs: 800 * DAY });
  });

  it("carries B's subject (byte for byte), key and SKI, issued by A (issuer, AKI, signature)", () => {
    const { a, b, cross } = pki;
    assert.ok(cross.subjectDer.equals(b.cert.subjectDer));
    assert.ok(cross.issuerDer.equals(a.cert.subjectDer));
    assert.ok(cross.spki.equals(b.cert.spki));
    assert.ok(cross.subjectKeyId?.equals(b.cert.subjectKeyId as Buffer));
    assert.ok(cross.authorityKeyId?.equals(a.cert.subjectKeyId as Buffer));
    assert.ok(signatureVerifies(cross, a.cert), 'signed with A');
    assert.ok(!signatureVerifies(cross, b.cert), 'not with B');
  });

  it('reads as a v3 CA for openssl: critical CA:TRUE without pathlen, critical keyCertSign + cRLSign, SKI, AKI', () => {
    const { a, b, cross } = pki;
    const text = opensslText(cross.der);
    const fields = parseOpensslText(text);
    const bFields = parseOpensslText(opensslText(b.cert.der));
    const aFields = parseOpensslText(opensslText(a.cert.der));
    assert.equal(fields.version, 3);
    assert.equal(fields.subject, bFields.subject);
    assert.equal(fields.issuer, aFields.subject);
    assert.match(fields.subject, /^CN = root\.linkerd\.cluster\.local, serialNumber = [0-9A-F]{16}$/);
    assert.notEqual(fields.subject, fields.issuer);
    assert.deepEqual([...fields.extensions].sort(), [
      'X509v3 Authority Key Identifier',
      'X509v3 Basic Constraints',
      'X509v3 Key Usage',
      'X509v3 Subject Key Identifier',
    ]);
    assert.deepEqual(ext(text, 'X509v3 Basic Constraints'), { critical: true, value: 'CA:TRUE' });
    assert.deepEqual(ext(text, 'X509v3 Key Usage'), { critical: true, value: 'Certificate Sign, CRL Sign' });
    assert.deepEqual(ext(text, 'X509v3 Subject Key Identifier'), {
      critical: false,
      value: colonHex(keyIdentifier(b.cert.spki)),
    });
    const aki = ext(text, 'X509v3 Authority Key Identifier');
    assert.equal(aki.critical, false);
    assert.equal(aki.value.replace(/^keyid:/, ''), colonHex(a.cert.subjectKeyId as Buffer));
    assert.match(text, /Public Key Algorithm: id-ecPublicKey/);
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.equal(fields.serialHex, pki.cross.serialHex);
    // the public key openssl prints is B's
    const pub = (der: Buffer): string =>
      /pub:\n([\s\S]*?)ASN1 OID/.exec(opensslText(der))?.[1]?.replace(/\s+/g, '') ?? '';
    assert.equal(pub(cross.der), pub(b.cert.der));
    assert.notEqual(pub(cross.der), pub(a.cert.der));
  });

  it('has a random positive serial of at least 64 bits, a new one each time', async () => {
    const again = await crossOf(pki, { now: NOW });
    for (const c of [pki.cross, again]) {
      assert.ok(c.serialHex.replace(/^0+/, '').length * 4 >= 64, c.serialHex);
      assert.ok(parseInt(c.serialHex.slice(0, 2), 16) < 0x80, 'positive');
    }
    assert.notEqual(again.serialHex, pki.cross.serialHex);
  });

  it("lies inside A's validity: notBefore now − skew (not before A's), notAfter the earlier of both anchors'", () => {
    const fields = parseOpensslText(opensslText(pki.cross.der));
    assert.equal(
      fields.notBefore.getTime(),
      Math.max(NOW.getTime() - DEFAULTS.clockSkewMs, pki.a.cert.notBefore.getTime()),
    );
    assert.equal(fields.notAfter.getTime(), pki.a.cert.notAfter.getTime());
  });

  it("ends with B when B expires first, and a --lifetime is capped at A's notAfter", async () => {
    const longA = await testAnchor({ now: NOW, lifetimeMs: 900 * DAY });
    const shortB = await testAnchor({ now: NOW, lifetimeMs: 100 * DAY });
    const byDefault = await createCrossCertificate({
      anchor: longA.cert,
      anchorSigner: longA.signer,
      subject: shortB.cert,
      now: NOW,
    });
    assert.equal(byDefault.notAfter.getTime(), shortB.cert.notAfter.getTime());
    const short = await createCrossCertificate({
      anchor: longA.cert,
      anchorSigner: longA.signer,
      subject: shortB.cert,
      now: NOW,
      lifetimeMs: 10 * DAY,
    });
    assert.equal(short.notAfter.getTime(), NOW.getTime() + 10 * DAY);
    const long = await crossOf(pki, { now: NOW, lifetimeMs: 5000 * DAY });
    assert.equal(long.notAfter.getTime(), pki.a.cert.notAfter.getTime());
    await assert.rejects(crossOf(pki, { now: NOW, lifetimeMs: 0 }), { code: 'ERR_USAGE' });
  });

  it('verifies under A with openssl verify -x509_strict (A alone in the trust store)', () => {
    const { dir, cleanup } = tempDir('lanyard-cross-');
    try {
      writeFileSync(join(dir, 'a.pem'), pki.a.pem);
      writeFileSync(join(dir, 'b.pem'), pki.b.pem);
      writeFileSync(join(dir, 'cross.pem'), pki.crossPem);
      const ok = openssl([
        'verify',
        '-x509_strict',
        '-attime',
        String(NOW_S),
        '-CAfile',
        join(dir, 'a.pem'),
        join(dir, 'cross.pem'),
      ]);
      assert.ok(ok.ok, ok.stdout + ok.stderr);
      const bOnly = openssl([
        'verify',
        '-x509_strict',
        '-partial_chain',
        '-attime',
        String(NOW_S),
        '-CAfile',
        join(dir, 'b.pem'),
        join(dir, 'cross.pem'),
      ]);
      assert.ok(!bOnly.ok, 'B did not sign it');
    } finally {
      cleanup();
    }
  });

  it('refuses a subject that is not a self-signed CA: an issuer (ERR_ANCHOR_NOT_SELF_SIGNED), a leaf (ERR_NOT_CA)', async () => {
    const other = await testPki({ now: NOW });
    const issuer = other.issuers.east;
    assert.ok(issuer);
    await assert.rejects(crossOf(pki, { now: NOW, subject: issuer.cert }), {
      code: 'ERR_ANCHOR_NOT_SELF_SIGNED',
    });
    // self-signed, but CA:FALSE
    const notCa = await selfSignedNotCa();
    await assert.rejects(crossOf(pki, { now: NOW, subject: notCa }), { code: 'ERR_NOT_CA' });
  });

  it('refuses two anchors with one subject (ERR_CROSS_SAME_SUBJECT): the anchor itself, two pre-#13 anchors', async () => {
    await assert.rejects(crossOf(pki, { now: NOW, subject: pki.a.cert }), { code: 'ERR_CROSS_SAME_SUBJECT' });
    const old1 = await legacyAnchor({ now: NOW, lifetimeMs: 100 * DAY });
    const old2 = await legacyAnchor({ now: NOW, lifetimeMs: 100 * DAY });
    await assert.rejects(
      createCrossCertificate({ anchor: old1.cert, anchorSigner: old1.signer, subject: old2.cert, now: NOW }),
      { code: 'ERR_CROSS_SAME_SUBJECT' },
    );
    // a pre-#13 anchor can cross-sign a new one (their subjects differ)
    const c = await createCrossCertificate({
      anchor: old1.cert,
      anchorSigner: old1.signer,
      subject: pki.b.cert,
      now: NOW,
    });
    assert.ok(c.issuerDer.equals(old1.cert.subjectDer));
  });

  it('refuses an expired signing anchor (ERR_CERT_EXPIRED) and a key that is not the anchor (ERR_KEY_MISMATCH)', async () => {
    const later = new Date(pki.a.cert.notAfter.getTime() + 1000);
    await assert.rejects(crossOf(pki, { now: later }), { code: 'ERR_CERT_EXPIRED' });
    await assert.rejects(crossOf(pki, { now: NOW, signer: pki.b.signer }), { code: 'ERR_KEY_MISMATCH' });
  });

  it("refuses a NEW anchor that has expired (ERR_CERT_EXPIRED) or is not yet valid (ERR_CERT_NOT_YET_VALID), caps a --lifetime at NEW's notAfter, and never writes notAfter ≤ notBefore (ERR_USAGE)", async () => {
    const longA = await testAnchor({ now: NOW, lifetimeMs: 900 * DAY });
    const shortB = await testAnchor({ now: NOW, lifetimeMs: DAY });
    const cross = (
      subject: CertificateInfo,
      now: Date,
      extra: { lifetimeMs?: number; clockSkewMs?: number } = {},
    ) => createCrossCertificate({ anchor: longA.cert, anchorSigner: longA.signer, subject, now, ...extra });
    await assert.rejects(cross(shortB.cert, new Date(NOW.getTime() + 2 * DAY)), { code: 'ERR_CERT_EXPIRED' });
    await assert.rejects(cross(shortB.cert, new Date(NOW.getTime() + 2 * DAY), { lifetimeMs: 10 * DAY }), {
      code: 'ERR_CERT_EXPIRED',
    });
    // NEW's last second: no longer usable (a cross certificate valid for nothing)
    await assert.rejects(cross(shortB.cert, shortB.cert.notAfter), { code: 'ERR_CERT_EXPIRED' });
    const futureB = await testAnchor({ now: new Date(NOW.getTime() + 10 * DAY) });
    await assert.rejects(cross(futureB.cert, NOW), { code: 'ERR_CERT_NOT_YET_VALID' });
    const capped = await cross(shortB.cert, NOW, { lifetimeMs: 500 * DAY });
    assert.equal(capped.notAfter.getTime(), shortB.cert.notAfter.getTime());
    assert.ok(capped.notAfter.getTime() > capped.notBefore.getTime());
    // a lifetime shorter than a second with no back-dating: both ends truncate to the same second
    await assert.rejects(cross(shortB.cert, NOW, { lifetimeMs: 500, clockSkewMs: 0 }), { code: 'ERR_USAGE' });
  });

  it('refuses an OLD anchor whose pathLen leaves no room for the issuer and the cross certificate (ERR_CROSS_PATHLEN), made by openssl', async () => {
    const { dir, cleanup } = tempDir('lanyard-cross-pathlen-');
    try {
      for (const pathLen of [0, 1, 2]) {
        const old = await opensslAnchor(dir, { pathLen });
        const now = new Date(old.cert.notBefore.getTime() + 60_000);
        const b = await testAnchor({ now });
        const signing = createCrossCertificate({
          anchor: old.cert,
          anchorSigner: old.signer,
          subject: b.cert,
          now,
        });
        if (pathLen < 2) await assert.rejects(signing, { code: 'ERR_CROSS_PATHLEN' });
        else assert.ok((await signing).issuerDer.equals(old.cert.subjectDer));
      }
    } finally {
      cleanup();
    }
  });

  it('gives two anchors made with one common name different subjects (serialNumber from the key)', async () => {
    const x = await testAnchor({ now: NOW });
    const y = await testAnchor({ now: NOW });
    assert.ok(!x.cert.subjectDer.equals(y.cert.subjectDer));
    assert.equal(x.cert.subjectCommonName, y.cert.subjectCommonName);
    assert.equal(encodePem('CERTIFICATE', x.cert.der), x.pem);
  });
});
