// An issuer under the new anchor B serving [issuer_B, cross(B by A)]: what the credential accepts and
// refuses at load, which anchors it reaches, how leaf validity is clamped, and that every leaf verifies
// with openssl against A alone and against B alone, whichever bundle the issuer holds.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  DEFAULT_IDENTITY_DOMAIN,
  DEFAULT_LEAF_POLICY,
  createIssuerCredential,
  encodePem,
  fingerprint,
  parseCertificate,
  workloadIdentity,
  type CertificateInfo,
  type IssuerCredential,
  type ParsedCsr,
} from '../../ca/index.js';
import { issueForCsr } from '../../ca/credential.js';
import { parseCsr } from '../../ca/csr.js';
import { createIssuerCertificate } from '../../ca/profiles.js';
import { issuerCredentialFromPem } from '../../ca/store/index.js';
import { DAY, HOUR } from '../support/clock.js';
import {
  crossCertificate,
  crossOf,
  defaultCrossPki,
  legacyAnchor,
  testAnchor,
  type CrossPki,
} from '../support/cross-pki.js';
import { opensslVerify, opensslVerifyEach } from '../support/openssl.js';
import { opensslAnchor } from '../support/openssl-ca.js';
import { makeCsr, testKey } from '../support/pki.js';
import { tempDir } from '../support/temp-dir.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const WEB = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'web' });
const pem = (...certs: CertificateInfo[]): string =>
  certs.map((c) => encodePem('CERTIFICATE', c.der)).join('');

describe('a credential serving a cross certificate', () => {
  let pki: CrossPki;
  let csr: ParsedCsr;
  before(async () => {
    pki = await defaultCrossPki(NOW);
    csr = parseCsr((await makeCsr({ dns: [WEB.dns] })).der);
  });

  const load = (o: { served?: CertificateInfo[]; bundle: CertificateInfo[]; now?: Date }): IssuerCredential =>
    createIssuerCredential({
      certificatePem: pem(...(o.served ?? [pki.issuer.cert, pki.cross])),
      signer: pki.issuer.signer,
      anchorsPem: pem(...o.bundle),
      now: o.now ?? NOW,
    });

  const bundles = (): {
    name: string;
    bundle: CertificateInfo[];
    reached: CertificateInfo[];
    anchor: CertificateInfo;
  }[] => [
    { name: '{A}', bundle: [pki.a.cert], reached: [pki.a.cert], anchor: pki.a.cert },
    {
      name: '{A, B}',
      bundle: [pki.a.cert, pki.b.cert],
      reached: [pki.a.cert, pki.b.cert],
      anchor: pki.b.cert,
    },
    {
      name: '{B, A}',
      bundle: [pki.b.cert, pki.a.cert],
      reached: [pki.b.cert, pki.a.cert],
      anchor: pki.b.cert,
    },
    { name: '{B}', bundle: [pki.b.cert], reached: [pki.b.cert], anchor: pki.b.cert },
  ];

  it('loads with bundle {A}, {A, B}, {B}: anchorsReached lists every anchor the chain reaches, in bundle order', () => {
    for (const c of bundles()) {
      const cred = load({ bundle: c.bundle });
      assert.deepEqual(
        cred.anchorsReached.map((a) => fingerprint(a.der)),
        c.reached.map((a) => fingerprint(a.der)),
        c.name,
      );
      assert.ok(cred.anchor.der.equals(c.anchor.der), `${c.name}: the shortest path's anchor`);
      assert.deepEqual(
        cred.chainDer,
        [pki.issuer.cert.der, pki.cross.der],
        `${c.name}: the cross certificate is served after the issuer`,
      );
    }
  });

  it('verifies each leaf on the path to every anchor reached and on the cross certificate taken as a root', () => {
    const label = new Map([
      [fingerprint(pki.issuer.cert.der), 'issuer'],
      [fingerprint(pki.cross.der), 'cross'],
      [fingerprint(pki.a.cert.der), 'A'],
      [fingerprint(pki.b.cert.der), 'B'],
    ]);
    const names = (cred: IssuerCredential): string[][] =>
      cred.leafPaths.map((p) => p.map((c) => label.get(fingerprint(c.der)) ?? '?'));
    assert.deepEqual(names(load({ bundle: [pki.a.cert] })), [
      ['issuer', 'cross', 'A'],
      ['issuer', 'cross'],
    ]);
    assert.deepEqual(names(load({ bundle: [pki.a.cert, pki.b.cert] })), [
      ['issuer', 'cross', 'A'],
      ['issuer', 'B'],
      ['issuer', 'cross'],
    ]);
    assert.deepEqual(names(load({ bundle: [pki.b.cert] })), [
      ['issuer', 'B'],
      ['issuer', 'cross'],
    ]);
  });

  for (const which of ['{A}', '{A, B}', '{B}'] as const) {
    it(`issues leaves (bundle ${which}) that openssl verifies with -CAfile A only and with -CAfile B only, as client and server`, () => {
      const c = bundles().find((b) => b.name === which);
      assert.ok(c);
      const cred = load({ bundle: c.bundle });
      const leaf = issueForCsr(cred, { csr, identity: WEB, policy: DEFAULT_LEAF_POLICY, now: NOW });
      assert.deepEqual(leaf.intermediates, [pki.issuer.cert.der, pki.cross.der]);
      assert.deepEqual(
        leaf.anchorsReached.map((a) => fingerprint(a.der)),
        c.reached.map((a) => fingerprint(a.der)),
      );
      const failures = opensslVerifyEach({
        leaf: leaf.der,
        intermediates: leaf.intermediates,
        roots: { A: pki.a.cert.der, B: pki.b.cert.der },
        atSeconds: NOW.getTime() / 1000,
      });
      assert.deepEqual(failures, [], which);
    });
  }

  it('loads from the files of an issuer directory (issuerCredentialFromPem, tls.crt = issuer + cross)', () => {
    const cred = issuerCredentialFromPem(
      {
        certificatePem: pki.issuer.pem + pki.crossPem,
        keyPem: pki.issuer.keyPem,
        keyPath: 'tls.key',
        anchorsPem: pki.a.pem + pki.b.pem,
      },
      NOW,
    );
    assert.equal(cred.chain.length, 2);
    assert.equal(cred.anchorsReached.length, 2);
  });

  it('clamps leaves to the cross certificate: chainNotAfter is the earliest of every served certificate and anchor reached', async () => {
    // a cross certificate that ends with the issuer, long before either anchor
    const issuerEnd = pki.issuer.cert.notAfter.getTime();
    const cross = await crossOf(pki, { now: NOW, lifetimeMs: issuerEnd - NOW.getTime() });
    assert.equal(cross.notAfter.getTime(), issuerEnd);
    assert.ok(cross.notAfter < pki.a.cert.notAfter && cross.notAfter < pki.b.cert.notAfter);
    const cred = load({ served: [pki.issuer.cert, cross], bundle: [pki.a.cert] });
    assert.equal(cred.chainNotAfter.getTime(), issuerEnd);
    const late = new Date(issuerEnd - HOUR);
    const leaf = issueForCsr(cred, { csr, identity: WEB, policy: DEFAULT_LEAF_POLICY, now: late });
    assert.equal(leaf.notAfter.getTime(), cross.notAfter.getTime());
    const r = opensslVerify({
      leaf: leaf.der,
      intermediates: leaf.intermediates,
      anchors: [pki.a.cert.der],
      purpose: 'sslclient',
      atSeconds: late.getTime() / 1000,
    });
    assert.ok(r.ok, r.stdout + r.stderr);
  });

  it('refuses a cross certificate that expires before the issuer certificate (ERR_CROSS_CERT_EXPIRES_FIRST)', async () => {
    const cross = await crossOf(pki, { now: NOW, lifetimeMs: 30 * DAY });
    for (const bundle of [[pki.a.cert], [pki.b.cert], [pki.a.cert, pki.b.cert]]) {
      assert.throws(() => load({ served: [pki.issuer.cert, cross], bundle }), {
        code: 'ERR_CROSS_CERT_EXPIRES_FIRST',
      });
    }
  });

  it("refuses a served certificate that is not the issuer's anchor by subject and key (ERR_CROSS_CERT_MISMATCH)", async () => {
    // cross(C by A): another anchor's subject and key
    const c = await testAnchor({ now: NOW, lifetimeMs: 800 * DAY });
    const crossC = await crossOf(pki, { now: NOW, subject: c.cert });
    // B's subject with another key (a twin of B), issued by A
    const twin = await legacyAnchor({ now: NOW, lifetimeMs: 800 * DAY, subjectDer: pki.b.cert.subjectDer });
    const crossTwin = await crossOf(pki, { now: NOW, subject: twin.cert }).catch((err: unknown) => err);
    assert.ok(!(crossTwin instanceof Error), String(crossTwin));
    for (const cross of [crossC, crossTwin as CertificateInfo]) {
      for (const bundle of [[pki.a.cert], [pki.b.cert], [pki.a.cert, pki.b.cert]]) {
        assert.throws(() => load({ served: [pki.issuer.cert, cross], bundle }), {
          code: 'ERR_CROSS_CERT_MISMATCH',
        });
      }
    }
  });

  it('refuses a cross certificate whose issuer is a bundle anchor that did not sign it (ERR_CROSS_CERT_UNTRUSTED)', async () => {
    const tampered = Buffer.from(pki.cross.der);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1;
    const bad = parseCertificate(tampered);
    // A's subject with another key, in the bundle in A's place
    const twinA = await legacyAnchor({ now: NOW, lifetimeMs: 400 * DAY, subjectDer: pki.a.cert.subjectDer });
    assert.throws(() => load({ served: [pki.issuer.cert, bad], bundle: [pki.a.cert] }), {
      code: 'ERR_CROSS_CERT_UNTRUSTED',
    });
    assert.throws(() => load({ served: [pki.issuer.cert, bad], bundle: [pki.a.cert, pki.b.cert] }), {
      code: 'ERR_CROSS_CERT_UNTRUSTED',
    });
    assert.throws(() => load({ bundle: [twinA.cert, pki.b.cert] }), { code: 'ERR_CROSS_CERT_UNTRUSTED' });
    // A outside the bundle (phase 5: {B}): the cross certificate cannot be checked here and is accepted
    assert.deepEqual(
      load({ served: [pki.issuer.cert, bad], bundle: [pki.b.cert] }).anchorsReached.map((a) =>
        fingerprint(a.der),
      ),
      [fingerprint(pki.b.cert.der)],
    );
  });

  it('refuses a cross certificate by an anchor with pathLen 1 (openssl-made) while that anchor is in the bundle (ERR_CROSS_PATHLEN); openssl refuses the path too', async () => {
    const { dir, cleanup } = tempDir('lanyard-cross-pathlen-');
    try {
      const old = await opensslAnchor(dir, { pathLen: 1 });
      const now = new Date(old.cert.notBefore.getTime() + 60_000);
      const b = await testAnchor({ now, lifetimeMs: 800 * DAY });
      const { signer } = await testKey('p256');
      const issuer = await createIssuerCertificate({
        anchor: b.cert,
        anchorSigner: b.signer,
        issuerPublicKeyDer: Buffer.from(signer.publicKeyDer),
        now,
        cluster: 'east',
        lifetimeMs: 90 * DAY,
      });
      // what anchor cross-sign now refuses to make, made by hand
      const cross = await crossCertificate({
        by: old,
        subject: b.cert,
        notBefore: now,
        notAfter: old.cert.notAfter,
      });
      const loadAt = (bundle: CertificateInfo[]): IssuerCredential =>
        createIssuerCredential({
          certificatePem: pem(issuer, cross),
          signer,
          anchorsPem: pem(...bundle),
          now,
        });
      assert.throws(() => loadAt([old.cert]), { code: 'ERR_CROSS_PATHLEN' });
      assert.throws(() => loadAt([old.cert, b.cert]), { code: 'ERR_CROSS_PATHLEN' });
      // the old anchor outside the bundle: nothing to check it against (as for ERR_CROSS_CERT_UNTRUSTED)
      const cred = loadAt([b.cert]);
      const leaf = issueForCsr(cred, { csr, identity: WEB, policy: DEFAULT_LEAF_POLICY, now });
      const verify = (roots: Record<string, Buffer>): string[] =>
        opensslVerifyEach({
          leaf: leaf.der,
          intermediates: leaf.intermediates,
          roots,
          purposes: ['sslclient'],
          atSeconds: Math.floor(now.getTime() / 1000),
        });
      assert.equal(
        verify({ old: old.cert.der }).length,
        1,
        'openssl refuses [leaf, issuer, cross] under a pathlen:1 anchor',
      );
      assert.deepEqual(verify({ B: b.cert.der }), []);
    } finally {
      cleanup();
    }
  });

  it('refuses a chain that reaches no anchor of the bundle as before (ERR_CHAIN_UNTRUSTED)', async () => {
    const other = await testAnchor({ now: NOW });
    assert.throws(() => load({ bundle: [other.cert] }), { code: 'ERR_CHAIN_UNTRUSTED' });
  });
});
