// The CSR reader (parseCsr) as a fuzz suite: mutated, random, PEM-wrapped and hand-picked CSRs.
import assert from 'node:assert/strict';
import { createHash, createPublicKey } from 'node:crypto';
import fc from 'fast-check';
import { buildCsr, encodePem } from '../../ca/index.js';
import { createKeyObjectSigner, generateKey } from '../../ca/keys/index.js';
import { looksLikePem } from '../../ca/pem.js';
import { webcrypto, x509 } from '../../ca/x509.js';
import { openssl, opensslCsr } from '../support/openssl.js';
import { makeCsr } from '../support/pki.js';
import {
  FuzzRunner,
  byteMutationArb,
  describeInput,
  lengthFields,
  mutateBytes,
  type LengthField,
  type Outcome,
} from './harness.js';
import { assertSettled, countKind, countOracle, group, newStats, type FuzzSuite } from './suite.js';

/** Every code parseCsr documents; anything else (or another class) is a finding. */
export const CSR_CODES = new Set([
  'ERR_CSR_TOO_LARGE',
  'ERR_PEM_MALFORMED',
  'ERR_PEM_HEADERS',
  'ERR_PEM_UNEXPECTED_TYPE',
  'ERR_DER_MALFORMED',
  'ERR_DER_TRUNCATED',
  'ERR_DER_TRAILING_DATA',
  'ERR_CSR_MALFORMED',
  'ERR_CSR_UNSUPPORTED_KEY',
  'ERR_CSR_WEAK_KEY',
  'ERR_CSR_UNSUPPORTED_SIGNATURE',
  'ERR_CSR_SIGNATURE',
]);
/** the statuses a caller may see for a bad CSR; INTERNAL would mean the error table misses a code */
const CSR_STATUSES = new Set(['INVALID_ARGUMENT', 'PERMISSION_DENIED']);
/** per-input time bound, ms: parseCsr takes well under a millisecond */
const TIME_BOUND_MS = 2000;

export const CSR_GROUPS = {
  mutations:
    'bit flips, byte changes, truncations, insertions, deletions and length-octet changes of valid CSRs',
  random: 'random bytes, DER-shaped random bytes and splices of two CSRs',
  pem: 'PEM-wrapped mutated CSRs with odd labels, headers and line breaks',
} as const;

interface Seed {
  readonly name: string;
  readonly der: Buffer;
  readonly fields: readonly LengthField[];
}

export interface CsrSuiteOptions {
  /**
   * how many accepted CSRs `openssl req -verify` checks besides @peculiar/x509: a number (the first
   * so many), or 'each-distinct' (every distinct accepted DER once; same bytes, same verdict)
   */
  readonly opensslChecks: number | 'each-distinct';
}

export async function createCsrSuite(options: CsrSuiteOptions): Promise<FuzzSuite> {
  const runner = new FuzzRunner({ nowMs: 0 }, TIME_BOUND_MS);
  const stats = newStats();
  const seeds: Seed[] = [];
  const p256 = createKeyObjectSigner(await generateKey('p256'));
  const p384 = createKeyObjectSigner(await generateKey('p384'));
  const dns = 'web.default.serviceaccount.identity.linkerd.cluster.local';
  const raw: [string, Buffer][] = [
    ['buildCsr P-256', buildCsr(p256, { dnsNames: [dns] })],
    ['buildCsr P-384, two names', buildCsr(p384, { dnsNames: [dns, 'db.default.svc'] })],
    [
      '@peculiar/x509 P-256 with a subject and every SAN type',
      (
        await makeCsr({
          keySpec: 'p256',
          subject: 'CN=web',
          dns: [dns],
          uris: ['spiffe://cluster.local/ns/default/sa/web'],
          ips: ['10.0.0.1'],
          emails: ['a@b.c'],
        })
      ).der,
    ],
    ['@peculiar/x509 RSA-2048', (await makeCsr({ keySpec: 'rsa2048', dns: [dns] })).der],
    ['openssl req P-256', opensslCsr({ san: `DNS:${dns}` }).csrDer],
  ];
  for (const [name, der] of raw) seeds.push({ name, der, fields: lengthFields(der) });
  const seedAt = (i: number): Seed => seeds[i % seeds.length] as Seed;

  let opensslRuns = 0;
  const opensslVerified = new Set<string>();

  /**
   * An accepted CSR checked independently of parseCsr: @peculiar/x509 verifies its self-signature
   * (and `openssl req -verify` as configured), the DER it returns is the input itself when the input
   * is DER, and the SPKI it returns, the one a leaf would carry, is canonical (OpenSSL re-encodes it to
   * the same bytes) and is the CSR's own public key.
   */
  async function checkAccepted(input: Uint8Array, o: Outcome): Promise<void> {
    const what = `input ${describeInput(input)}`;
    assert.ok(o.csr !== undefined, `accepted without a parsed CSR: ${what}`);
    const der = Buffer.from(o.csr.der);
    const spki = Buffer.from(o.csr.spki);
    if (!looksLikePem(input))
      assert.ok(der.equals(Buffer.from(input)), `accepted DER, but returned other bytes: ${what}`);
    const req = new x509.Pkcs10CertificateRequest(der);
    assert.equal(
      await req.verify(webcrypto),
      true,
      `accepted, but @peculiar/x509 does not verify it: ${what}`,
    );
    countOracle(stats, '@peculiar/x509 verify');
    assert.ok(
      spki.equals(
        createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ type: 'spki', format: 'der' }),
      ),
      `accepted with a non-canonical SPKI ${spki.toString('hex')}: ${what}`,
    );
    assert.ok(
      spki.equals(Buffer.from(req.publicKey.rawData)),
      `the SPKI returned is not the CSR's own (${Buffer.from(req.publicKey.rawData).toString('hex')}): ${what}`,
    );
    let runOpenssl: boolean;
    if (options.opensslChecks === 'each-distinct') {
      const h = createHash('sha256').update(der).digest('hex');
      runOpenssl = !opensslVerified.has(h);
      opensslVerified.add(h);
    } else runOpenssl = opensslRuns < options.opensslChecks;
    if (runOpenssl) {
      opensslRuns++;
      const r = openssl(['req', '-inform', 'DER', '-verify', '-noout'], { input: der });
      assert.ok(r.ok, `accepted, but openssl req -verify fails (${r.stderr}): ${what}`);
      countOracle(stats, 'openssl req -verify');
    }
  }

  async function check(input: Uint8Array, o: Outcome): Promise<void> {
    if (o.kind === 'accepted') {
      stats.accepted++;
      await checkAccepted(input, o);
      stats.reverified++;
      return;
    }
    const what = `input ${describeInput(input)}`;
    assertSettled(o, 'parseCsr', what, TIME_BOUND_MS);
    assert.ok(
      o.code !== undefined && CSR_CODES.has(o.code),
      `undocumented code ${o.code ?? '(none)'} for ${what}`,
    );
    assert.equal(
      o.isInvalidRequestError,
      true,
      `${o.errorClass ?? '?'} is not an InvalidRequestError for ${what}`,
    );
    assert.ok(CSR_STATUSES.has(o.grpcStatus ?? ''), `${o.code} maps to ${o.grpcStatus ?? '?'} for ${what}`);
    countKind(stats, o.code);
  }

  const derShaped = fc
    .tuple(fc.constantFrom(0x30, 0x31, 0xa0, 0x02, 0x03, 0x04, 0x06), fc.uint8Array({ maxLength: 600 }))
    .map(([tag, body]) => {
      const len = body.length < 0x80 ? [body.length] : [0x82, body.length >> 8, body.length & 0xff];
      return Buffer.from([0x30, ...len, tag, ...len.slice(0, 1), ...body]);
    });
  const splice = fc
    .tuple(fc.nat({ max: 1000 }), fc.nat({ max: 1000 }), fc.nat({ max: 100_000 }), fc.nat({ max: 100_000 }))
    .map(([a, b, i, j]) => {
      const x = seedAt(a).der;
      const y = seedAt(b).der;
      return Buffer.concat([x.subarray(0, i % x.length), y.subarray(j % y.length)]);
    });

  const nested = (depth: number): Buffer => {
    let b = Buffer.alloc(0);
    for (let i = 0; i < depth; i++)
      b = Buffer.concat([Buffer.from([0x30, 0x82, b.length >> 8, b.length & 0xff]), b]);
    return b;
  };

  return {
    target: 'csr',
    runner,
    timeBoundMs: TIME_BOUND_MS,
    seeds: seeds.map((s) => ({ name: s.name, input: s.der })),
    groups: [
      group(
        CSR_GROUPS.mutations,
        6000,
        fc.tuple(fc.nat({ max: 1000 }), fc.array(byteMutationArb, { minLength: 1, maxLength: 4 })),
        ([seedIndex, mutations]) => {
          const seed = seedAt(seedIndex);
          let input: Uint8Array = seed.der;
          for (const m of mutations) input = mutateBytes(input, m, seed.fields);
          return input;
        },
      ),
      group(
        CSR_GROUPS.random,
        2500,
        fc.oneof(fc.uint8Array({ maxLength: 1024 }), derShaped, splice),
        (b) => b,
      ),
      group(
        CSR_GROUPS.pem,
        400,
        fc.tuple(
          fc.nat({ max: 1000 }),
          fc.array(byteMutationArb, { maxLength: 2 }),
          fc.constantFrom('CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST', 'CERTIFICATE', 'PRIVATE KEY', ''),
          fc.option(fc.string({ maxLength: 30 }), { nil: undefined }),
          fc.integer({ min: 1, max: 80 }),
          fc.nat({ max: 3 }),
        ),
        ([seedIndex, mutations, label, header, width, cut]) => {
          const seed = seedAt(seedIndex);
          let der: Uint8Array = seed.der;
          for (const m of mutations) der = mutateBytes(der, m, seed.fields);
          const body = (
            Buffer.from(der)
              .toString('base64')
              .match(new RegExp(`.{1,${width}}`, 'g')) ?? []
          ).join('\n');
          let pem = `-----BEGIN ${label}-----\n${header !== undefined ? `${header}\n\n` : ''}${body}\n-----END ${label}-----\n`;
          if (cut > 0) pem = pem.slice(0, Math.floor((pem.length * cut) / 4));
          return Buffer.from(pem, 'latin1');
        },
      ),
    ],
    edgeCases: [
      Buffer.alloc(0),
      Buffer.from([0x30]),
      Buffer.from([0x30, 0x80, 0x00, 0x00]),
      Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
      Buffer.alloc(40_000, 0x30),
      Buffer.concat([Buffer.from([0x30, 0x82, 0x40, 0x01]), Buffer.alloc(0x4001)]),
      nested(3000),
      Buffer.from(encodePem('CERTIFICATE REQUEST', seedAt(0).der), 'latin1'),
      Buffer.from('-----BEGIN CERTIFICATE REQUEST-----\n'.repeat(200), 'latin1'),
    ],
    check,
    stats,
    close: () => runner.close(),
  };
}
