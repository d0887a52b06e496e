import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  DEFAULTS,
  createLeafTemplate,
  encodePem,
  parseCertificate,
  workloadIdentity,
  type IdentityDomain,
  type LeafPolicy,
  type ServiceAccountRef,
} from '../../ca/index.js';
import { issueForCsr } from '../../ca/credential.js';
import { keyIdentifier } from '../../ca/profiles.js';
import { leafValidity } from '../../ca/policy.js';
import { parseCsr } from '../../ca/csr.js';
import { type KeyAlgorithm } from '../../ca/keys/index.js';
import { OID } from '../../ca/der/oids.js';
import { webcrypto, x509 } from '../../ca/x509.js';
import { DAY, HOUR } from '../support/clock.js';
import { extensionBlock, openssl, opensslText, opensslVerify, parseOpensslText } from '../support/openssl.js';
import { tempDir } from '../support/temp-dir.js';
import { csrKey, makeCsr, spkiOf, testPki, type TestPki } from '../support/pki.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const ISSUER_KEYS = ['p256', 'p384'] as const satisfies readonly KeyAlgorithm[];
const SKEW_MS = DEFAULTS.clockSkewMs;

/** DNS-1123 labels: short ones for trust domains, up to the full 63 characters for names. */
const shortLabel = fc.stringMatching(/^[a-z0-9](?:[-a-z0-9]{0,14}[a-z0-9])?$/);
const label = fc.oneof(shortLabel, fc.stringMatching(/^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/));
const domainArb: fc.Arbitrary<IdentityDomain> = fc.record({
  trustDomain: fc.array(shortLabel, { minLength: 1, maxLength: 4 }).map((ls) => ls.join('.')),
  controlNamespace: shortLabel,
});
const accountArb: fc.Arbitrary<ServiceAccountRef> = fc.record({ namespace: label, name: label });
/** A serial as the template takes it: the positive INTEGER's content octets, 1 to 20 of them. */
const serialArb = fc
  .tuple(fc.integer({ min: 1, max: 0x7f }), fc.uint8Array({ maxLength: 19 }))
  .map(([first, rest]) => Buffer.from([first, ...rest]));
const lifetimeArb = fc.integer({ min: 60_000, max: 48 * HOUR });

const EXPECTED_EXTENSIONS: readonly [string, boolean][] = [
  [OID.basicConstraints, true],
  [OID.keyUsage, true],
  [OID.extKeyUsage, false],
  [OID.authorityKeyIdentifier, false],
  [OID.subjectKeyIdentifier, false],
  [OID.subjectAltName, true],
];

const floorSeconds = (ms: number): number => Math.floor(ms / 1000) * 1000;

/**
 * Checks a leaf with @peculiar/x509, an independent parser: exactly the requested subject, names,
 * serial, validity and key, the fixed extensions with their criticality, and the issuer's signature.
 */
async function checkWithPeculiar(
  der: Buffer,
  expected: {
    issuer: x509.X509Certificate;
    issuerSki: Buffer;
    spki: Buffer;
    dns: string;
    uri: string;
    serialHex: string;
    notBefore: number;
    notAfter: number;
  },
): Promise<void> {
  const cert = new x509.X509Certificate(new Uint8Array(der));
  assert.equal(cert.subject, '');
  assert.equal(cert.issuer, expected.issuer.subject);
  assert.equal(cert.serialNumber, expected.serialHex);
  assert.equal(cert.notBefore.getTime(), expected.notBefore);
  assert.equal(cert.notAfter.getTime(), expected.notAfter);
  assert.ok(Buffer.from(cert.publicKey.rawData).equals(expected.spki));
  assert.deepEqual(
    [...cert.extensions].map((e) => [e.type, e.critical]),
    EXPECTED_EXTENSIONS,
  );
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  assert.ok(san);
  assert.deepEqual(san.names.toJSON(), [
    { type: 'dns', value: expected.dns },
    { type: 'url', value: expected.uri },
  ]);
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  assert.equal(bc?.ca, false);
  assert.equal(bc.pathLength, undefined);
  assert.equal(cert.getExtension(x509.KeyUsagesExtension)?.usages, x509.KeyUsageFlags.digitalSignature);
  assert.deepEqual(
    [...(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages ?? [])],
    [OID.serverAuth, OID.clientAuth],
  );
  assert.equal(
    cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId,
    expected.issuerSki.toString('hex'),
  );
  assert.equal(
    cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId,
    keyIdentifier(expected.spki).toString('hex'),
  );
  assert.equal(await cert.verify({ publicKey: expected.issuer, signatureOnly: true }, webcrypto), true);
}

/** Runs of the template property whose leaves also go through openssl (the rest: @peculiar/x509 only). */
const OPENSSL_RUNS = 40;
const LEAF_KEYS = ['p256', 'p384'] as const;

/**
 * `openssl verify -x509_strict -no_check_time -purpose <purpose>` of many leaves in one invocation
 * (the leaves' validity windows span 1990-2090, so time is not checked here; leafValidity and the
 * chain tests cover it). Returns the files openssl did not answer "OK" for.
 */
function opensslVerifyMany(
  leaves: readonly Buffer[],
  issuer: Buffer,
  anchor: Buffer,
  purpose: 'sslclient' | 'sslserver',
): string[] {
  const { dir, cleanup } = tempDir('lanyard-prop-');
  try {
    writeFileSync(join(dir, 'anchor.pem'), encodePem('CERTIFICATE', anchor));
    writeFileSync(join(dir, 'issuer.pem'), encodePem('CERTIFICATE', issuer));
    const files = leaves.map((der, i) => {
      const f = join(dir, `leaf${i}.pem`);
      writeFileSync(f, encodePem('CERTIFICATE', der));
      return f;
    });
    const r = openssl([
      'verify',
      '-x509_strict',
      '-no_check_time',
      '-purpose',
      purpose,
      '-CAfile',
      join(dir, 'anchor.pem'),
      '-untrusted',
      join(dir, 'issuer.pem'),
      ...files,
    ]);
    const ok = new Set((r.stdout.match(/^(.*): OK$/gm) ?? []).map((l) => l.slice(0, -': OK'.length)));
    return files.filter((f) => !ok.has(f)).map((f) => `${f}: ${r.stdout}${r.stderr}`);
  } finally {
    cleanup();
  }
}

describe('leaf properties', () => {
  const pkis = new Map<KeyAlgorithm, TestPki>();

  before(async () => {
    for (const alg of ISSUER_KEYS) pkis.set(alg, await testPki({ now: NOW, issuerKey: alg }));
  });

  function issuerFor(
    alg: KeyAlgorithm,
  ): NonNullable<TestPki['issuers'][string]> & { anchor: TestPki['anchor'] } {
    const pki = pkis.get(alg);
    const issuer = pki?.issuers.east;
    assert.ok(pki && issuer);
    return { ...issuer, anchor: pki.anchor };
  }

  it(`a template leaf carries exactly the requested fields (200 random requests and fresh keys, @peculiar/x509; ${OPENSSL_RUNS} also through openssl verify)`, async () => {
    const forOpenssl: { alg: KeyAlgorithm; der: Buffer; serialHex: string }[] = [];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ISSUER_KEYS),
        domainArb,
        accountArb,
        fc.option(serialArb, { nil: undefined }),
        // notBefore anywhere from 1990 to 2090 (UTCTime and GeneralizedTime), with milliseconds
        fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2090, 0, 1) }),
        lifetimeArb,
        fc.constantFrom(...LEAF_KEYS),
        async (alg, domain, account, serial, notBeforeMs, lifetimeMs, leafKey) => {
          const issuer = issuerFor(alg);
          const identity = workloadIdentity(domain, account);
          const spki = spkiOf(csrKey(leafKey));
          const leaf = createLeafTemplate(issuer.cert, issuer.signer).sign({
            spki,
            dnsName: identity.dns,
            uri: identity.spiffeId,
            notBefore: new Date(notBeforeMs),
            notAfter: new Date(notBeforeMs + lifetimeMs),
            ...(serial !== undefined ? { serial } : {}),
          });
          if (serial !== undefined) assert.equal(leaf.serialHex, serial.toString('hex'));
          assert.equal(leaf.notBefore.getTime(), floorSeconds(notBeforeMs));
          assert.equal(leaf.notAfter.getTime(), floorSeconds(notBeforeMs + lifetimeMs));
          await checkWithPeculiar(leaf.der, {
            issuer: new x509.X509Certificate(new Uint8Array(issuer.cert.der)),
            issuerSki: issuer.cert.subjectKeyId as Buffer,
            spki,
            dns: identity.dns,
            uri: identity.spiffeId,
            serialHex: leaf.serialHex,
            notBefore: floorSeconds(notBeforeMs),
            notAfter: floorSeconds(notBeforeMs + lifetimeMs),
          });
          const ours = parseCertificate(leaf.der);
          assert.equal(ours.serialHex, leaf.serialHex);
          assert.deepEqual(ours.dnsNames, [identity.dns]);
          assert.deepEqual(ours.uris, [identity.spiffeId]);
          if (forOpenssl.length < OPENSSL_RUNS)
            forOpenssl.push({ alg, der: leaf.der, serialHex: leaf.serialHex });
        },
      ),
      { numRuns: 200 },
    );
    assert.equal(forOpenssl.length, OPENSSL_RUNS);
    for (const alg of ISSUER_KEYS) {
      const issuer = issuerFor(alg);
      const leaves = forOpenssl.filter((l) => l.alg === alg).map((l) => l.der);
      if (leaves.length === 0) continue;
      for (const purpose of ['sslclient', 'sslserver'] as const) {
        assert.deepEqual(opensslVerifyMany(leaves, issuer.cert.der, issuer.anchor.cert.der, purpose), []);
      }
    }
    // the serial openssl reads is the one chosen (or drawn) for each leaf
    for (const l of forOpenssl) {
      assert.equal(parseOpensslText(opensslText(l.der)).serialHex, l.serialHex);
    }
  });

  it('issueForCsr leaves pass openssl verify as server and client with exactly the requested fields (25 runs, fresh P-256/P-384 keys)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ISSUER_KEYS),
        domainArb,
        accountArb,
        lifetimeArb,
        // anywhere in the issuer's first 30 days, to the millisecond
        fc.integer({ min: 0, max: 30 * DAY }),
        fc.constantFrom(...LEAF_KEYS),
        async (alg, domain, account, lifetimeMs, offsetMs, leafKey) => {
          const issuer = issuerFor(alg);
          const identity = workloadIdentity(domain, account);
          const now = new Date(NOW.getTime() + offsetMs);
          const policy: LeafPolicy = { lifetimeMs, clockSkewMs: SKEW_MS, allowedKeyTypes: ['p256', 'p384'] };
          const csr = parseCsr((await makeCsr({ key: csrKey(leafKey), dns: [identity.dns] })).der);
          const leaf = issueForCsr(issuer.credential, { csr, identity, policy, now });

          const notBefore = floorSeconds(now.getTime() - SKEW_MS);
          const notAfter = floorSeconds(
            Math.min(now.getTime() + lifetimeMs + SKEW_MS, issuer.credential.chainNotAfter.getTime()),
          );
          for (const purpose of ['sslserver', 'sslclient'] as const) {
            const r = opensslVerify({
              leaf: leaf.der,
              intermediates: leaf.intermediates,
              anchors: [issuer.anchor.cert.der],
              purpose,
              atSeconds: Math.floor(now.getTime() / 1000),
            });
            assert.ok(r.ok, r.stdout + r.stderr);
          }
          const text = opensslText(leaf.der);
          const fields = parseOpensslText(text);
          assert.equal(fields.subject, '');
          assert.equal(fields.serialHex, leaf.serialHex);
          assert.equal(fields.notBefore.getTime(), notBefore);
          assert.equal(fields.notAfter.getTime(), notAfter);
          assert.deepEqual(extensionBlock(text, 'X509v3 Subject Alternative Name'), {
            critical: true,
            value: `DNS:${identity.dns}, URI:${identity.spiffeId}`,
          });
          await checkWithPeculiar(leaf.der, {
            issuer: new x509.X509Certificate(new Uint8Array(issuer.cert.der)),
            issuerSki: issuer.cert.subjectKeyId as Buffer,
            spki: csr.spki,
            dns: identity.dns,
            uri: identity.spiffeId,
            serialHex: leaf.serialHex,
            notBefore,
            notAfter,
          });
        },
      ),
      { numRuns: 25 },
    );
  });

  it('leafValidity never starts after now, never outlives the chain and keeps whole seconds (500 runs)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2080, 0, 1) }),
        lifetimeArb,
        fc.integer({ min: 0, max: 120_000 }),
        fc.integer({ min: 1000, max: 60 * DAY }),
        (nowMs, lifetimeMs, clockSkewMs, chainLeftMs) => {
          const chainNotAfter = new Date(nowMs + chainLeftMs);
          const { notBefore, notAfter } = leafValidity(
            new Date(nowMs),
            { lifetimeMs, clockSkewMs, allowedKeyTypes: ['p256'] },
            chainNotAfter,
          );
          assert.ok(notBefore.getTime() <= nowMs - clockSkewMs);
          assert.ok(notBefore.getTime() > nowMs - clockSkewMs - 1000);
          assert.ok(notAfter.getTime() <= chainNotAfter.getTime());
          assert.ok(notAfter.getTime() <= nowMs + lifetimeMs + clockSkewMs);
          assert.ok(
            notAfter.getTime() > Math.min(nowMs + lifetimeMs + clockSkewMs, chainNotAfter.getTime()) - 1000,
          );
          assert.equal(notBefore.getTime() % 1000, 0);
          assert.equal(notAfter.getTime() % 1000, 0);
        },
      ),
      { numRuns: 500 },
    );
  });
});
