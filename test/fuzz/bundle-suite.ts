// The strict trust-bundle reader (parseTrustBundle: what `lanyard bundle`, `check`, `rotate` and
// `certify --bundle-url` read) as a fuzz suite.
import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { buildCsr, encodePem, systemClock } from '../../ca/index.js';
import { createKeyObjectSigner, generateKey } from '../../ca/keys/index.js';
import { x509 } from '../../ca/x509.js';
import { openssl } from '../support/openssl.js';
import { tempDir } from '../support/temp-dir.js';
import { createTestCertificate, testPki } from '../support/pki.js';
import {
  FuzzRunner,
  byteMutationArb,
  describeInput,
  lengthFields,
  mutateBytes,
  type LengthField,
  type Outcome,
} from './harness.js';
import {
  assertSettled,
  countKind,
  countOracle,
  group,
  newStats,
  pemLines,
  seedTextMutations,
  type FuzzSuite,
} from './suite.js';

/** Every code parseTrustBundle documents. */
export const BUNDLE_CODES = new Set([
  'ERR_PEM_MALFORMED',
  'ERR_PEM_HEADERS',
  'ERR_PEM_UNEXPECTED_TYPE',
  'ERR_CERT_MALFORMED',
  'ERR_NOT_CA',
]);
/** JavaScript's own errors: one wrapped into a coded error is a crash all the same */
const RUNTIME_ERRORS = new Set(['TypeError', 'RangeError', 'ReferenceError', 'SyntaxError']);
const TIME_BOUND_MS = 2000;

export const BUNDLE_GROUPS = {
  text: 'character changes, truncations, insertions and deletions of valid bundles',
  der: 'byte, bit and length-octet changes of one certificate of a valid bundle',
  assembled: 'bundles assembled from CA and non-CA certificates, keys, CSRs, duplicates and headers',
  random: 'random text and bytes',
} as const;

interface Cert {
  readonly name: string;
  readonly der: Buffer;
  readonly fields: readonly LengthField[];
}

export async function createBundleSuite(): Promise<FuzzSuite> {
  const runner = new FuzzRunner({ nowMs: 0 }, TIME_BOUND_MS);
  const stats = newStats();
  const now = systemClock.now();
  const p256 = await testPki({ now });
  const p384 = await testPki({ now, anchorKey: 'p384' });
  const rsa = await testPki({ now, anchorKey: 'rsa2048' });
  const constrained = await testPki({ now, permitDns: ['cluster.local'], clusters: ['west'] });
  const leaf = await createTestCertificate({
    issuer: p256.anchor,
    subjectSigner: createKeyObjectSigner(await generateKey('p256')),
    commonName: 'not-a-ca',
    notBefore: now,
    notAfter: new Date(now.getTime() + 3_600_000),
    isCa: false,
  });
  const made = tempDir('lanyard-fuzz-bundle-');
  const r = openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    '/CN=openssl-root',
    '-days',
    '30',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout',
    join(made.dir, 'k.pem'),
    '-outform',
    'DER',
    '-out',
    join(made.dir, 'ca.der'),
  ]);
  if (!r.ok) throw new Error(`openssl req -x509 failed: ${r.stderr}`);
  const opensslCa = readFileSync(join(made.dir, 'ca.der'));
  made.cleanup();
  const issuer = p256.issuers.east;
  if (issuer === undefined) throw new Error('no issuer');
  const cert = (name: string, der: Uint8Array): Cert => ({
    name,
    der: Buffer.from(der),
    fields: lengthFields(der),
  });
  const cas: Cert[] = [
    cert('anchor P-256', p256.anchor.cert.der),
    cert('anchor P-384', p384.anchor.cert.der),
    cert('anchor RSA-2048', rsa.anchor.cert.der),
    cert('anchor made by openssl', opensslCa),
    cert('issuer (an intermediate CA, pathLen 0)', issuer.cert.der),
    cert('issuer with name constraints', constrained.issuers.west?.cert.der ?? Buffer.alloc(0)),
  ];
  const caAt = (i: number): Cert => cas[i % cas.length] as Cert;
  const pem = (der: Uint8Array): string => encodePem('CERTIFICATE', der);
  const seedTexts: [string, string][] = [
    ['one anchor', pem(caAt(0).der)],
    ['two anchors', pem(caAt(0).der) + pem(caAt(1).der)],
    ['every CA, with explanatory text', cas.map((c) => `# ${c.name}\n${pem(c.der)}`).join('\n')],
    ['a duplicate', pem(caAt(2).der) + pem(caAt(3).der) + pem(caAt(2).der)],
  ];
  const seeds = seedTexts.map(([name, text]) => ({ name, input: Buffer.from(text, 'utf8') }));
  const seedAt = (i: number): Buffer => (seeds[i % seeds.length] as { input: Buffer }).input;

  /** anchors (by fingerprint) already checked with OpenSSL and @peculiar/x509: same bytes, same verdict */
  const checkedAnchors = new Set<string>();

  /**
   * An accepted bundle checked independently of parseTrustBundle: @peculiar/x509's PEM decoder reads
   * the same CERTIFICATE blocks (no headers, nothing else), whose distinct DERs are exactly the anchors
   * returned; OpenSSL (node:crypto X509Certificate) parses every anchor and gives the same SHA-256
   * fingerprint and notBefore; @peculiar/x509 finds basicConstraints CA:TRUE in each; the order is by
   * notBefore, then fingerprint.
   */
  function checkAccepted(input: Uint8Array, o: Outcome): void {
    const text = Buffer.from(input).toString('utf8');
    const what = `input ${describeInput(input)} (${JSON.stringify(text.slice(0, 300))})`;
    assert.ok(o.bundle !== undefined && o.bundle.length > 0, `accepted without anchors: ${what}`);
    let blocks: ReturnType<typeof x509.PemConverter.decodeWithHeaders>;
    try {
      blocks = x509.PemConverter.decodeWithHeaders(pemLines(text));
    } catch (err) {
      assert.fail(`accepted, but @peculiar/x509 cannot read the PEM (${(err as Error).message}): ${what}`);
    }
    countOracle(stats, 'bundle read by the @peculiar/x509 PEM decoder');
    for (const b of blocks) {
      assert.equal(b.type, 'CERTIFICATE', `accepted with a "${b.type}" block: ${what}`);
      assert.deepEqual(b.headers, [], `accepted with headers: ${what}`);
    }
    const fp = (der: Uint8Array): string =>
      (createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g) ?? []).join(':');
    const distinct = new Set(blocks.map((b) => fp(new Uint8Array(b.rawData))));
    assert.deepEqual(
      new Set(o.bundle.map((a) => a.fingerprint)),
      distinct,
      `the anchors are not the distinct blocks of the text: ${what}`,
    );
    assert.equal(o.bundle.length, distinct.size, `duplicates not folded: ${what}`);
    let previous: { notBeforeMs: number; fingerprint: string } | undefined;
    for (const a of o.bundle) {
      assert.equal(fp(a.der), a.fingerprint, `fingerprint is not the SHA-256 of the DER: ${what}`);
      if (previous !== undefined)
        assert.ok(
          previous.notBeforeMs < a.notBeforeMs ||
            (previous.notBeforeMs === a.notBeforeMs && previous.fingerprint < a.fingerprint),
          `anchors out of order: ${what}`,
        );
      previous = a;
      if (checkedAnchors.has(a.fingerprint)) {
        countOracle(stats, 'anchor seen before (same bytes, same verdict)');
        continue;
      }
      let ossl: X509Certificate;
      try {
        ossl = new X509Certificate(a.der);
      } catch (err) {
        assert.fail(`accepted an anchor OpenSSL cannot parse (${(err as Error).message}): ${what}`);
      }
      assert.equal(ossl.fingerprint256, a.fingerprint, `OpenSSL's fingerprint differs: ${what}`);
      assert.equal(
        Math.floor(a.notBeforeMs / 1000),
        Date.parse(ossl.validFrom) / 1000,
        `notBefore differs from OpenSSL's ${ossl.validFrom}: ${what}`,
      );
      let ca: boolean | undefined;
      try {
        ca = new x509.X509Certificate(new Uint8Array(a.der)).getExtension(x509.BasicConstraintsExtension)?.ca;
        countOracle(stats, 'anchor loaded by OpenSSL, CA:TRUE read by @peculiar/x509');
      } catch {
        // asn1js is stricter than OpenSSL in places (string types, BIT STRING padding): the openssl
        // command reads basicConstraints instead
        const r = openssl(['x509', '-inform', 'DER', '-noout', '-ext', 'basicConstraints'], { input: a.der });
        assert.ok(r.ok, `accepted an anchor openssl x509 cannot read (${r.stderr}): ${what}`);
        ca = /\bCA:TRUE\b/.test(r.stdout);
        countOracle(stats, 'anchor loaded by OpenSSL, CA:TRUE read by openssl x509 (asn1js refused it)');
      }
      assert.equal(ca, true, `accepted an anchor without basicConstraints CA:TRUE: ${what}`);
      checkedAnchors.add(a.fingerprint);
    }
  }

  async function check(input: Uint8Array, o: Outcome): Promise<void> {
    await Promise.resolve();
    const what = `input ${describeInput(input)}`;
    assertSettled(o, 'parseTrustBundle', what, TIME_BOUND_MS);
    if (o.kind === 'accepted') {
      stats.accepted++;
      checkAccepted(input, o);
      stats.reverified++;
      countKind(stats, 'accepted');
      return;
    }
    const runtime = (o.causes ?? []).find((c) => RUNTIME_ERRORS.has(c));
    assert.equal(
      runtime,
      undefined,
      `a ${runtime ?? ''} inside ${o.code ?? '?'} (${o.message ?? ''}) for ${what}`,
    );
    assert.ok(
      o.code !== undefined && BUNDLE_CODES.has(o.code),
      `undocumented code ${o.code ?? '(none)'} for ${what}`,
    );
    countKind(stats, o.code);
  }

  const csr = buildCsr(createKeyObjectSigner(await generateKey('p256')), { dnsNames: ['a.b'] });
  const item = fc.oneof(
    { weight: 6, arbitrary: fc.nat({ max: 100 }).map((i) => pem(caAt(i).der)) },
    fc.constant(pem(leaf.der)),
    fc.constant(issuer.keyPem),
    fc.constant(encodePem('CERTIFICATE REQUEST', csr)),
    fc.nat({ max: 100 }).map((i) => pem(caAt(i).der).replace('\n', '\nProc-Type: 4,ENCRYPTED\n\n')),
    fc.nat({ max: 100 }).map((i) => pem(caAt(i).der).replace('-----\n', '-----\n\n')),
    fc.constantFrom('', '\n', '# comment\n', 'subject=CN = root\n'),
  );

  return {
    target: 'bundle',
    runner,
    timeBoundMs: TIME_BOUND_MS,
    seeds,
    groups: [
      seedTextMutations(BUNDLE_GROUPS.text, 1500, seedAt, { maxSeed: 1000, maxMutations: 4 }),
      group(
        BUNDLE_GROUPS.der,
        4000,
        fc.tuple(
          fc.nat({ max: 1000 }),
          fc.array(byteMutationArb, { minLength: 1, maxLength: 3 }),
          fc.nat({ max: 1000 }),
          fc.boolean(),
        ),
        ([certIndex, mutations, otherIndex, withOther]) => {
          const c = caAt(certIndex);
          let der: Uint8Array = c.der;
          for (const m of mutations) der = mutateBytes(der, m, c.fields);
          return Buffer.from(pem(der) + (withOther ? pem(caAt(otherIndex).der) : ''), 'utf8');
        },
      ),
      group(BUNDLE_GROUPS.assembled, 1000, fc.array(item, { minLength: 1, maxLength: 6 }), (items) =>
        Buffer.from(items.join(''), 'utf8'),
      ),
      group(
        BUNDLE_GROUPS.random,
        500,
        fc.oneof(
          fc.string({ maxLength: 300 }).map((s) => Buffer.from(s, 'utf8')),
          fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
        ),
        (b) => b,
      ),
    ],
    edgeCases: [
      Buffer.alloc(0),
      Buffer.from('\n'),
      Buffer.from(pem(leaf.der)),
      Buffer.from(pem(caAt(0).der).repeat(1500)),
      Buffer.from(
        cas
          .map((c) => pem(c.der))
          .join('')
          .repeat(200),
      ),
    ],
    check,
    stats,
    close: () => runner.close(),
  };
}
