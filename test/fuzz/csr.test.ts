import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { buildCsr, createKeyObjectSigner, encodePem, generateKey } from '../../ca/index.js';
import { webcrypto, x509 } from '../../ca/x509.js';
import { openssl, opensslCsr } from '../support/openssl.js';
import { makeCsr } from '../support/pki.js';
import {
  FuzzRunner,
  byteMutationArb,
  describeInput,
  lengthFields,
  mutateBytes,
  runs,
  type LengthField,
  type Outcome,
} from './harness.js';

/** Every code parseCsr documents; anything else (or another class) is a finding. */
const CSR_CODES = new Set([
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

interface Seed {
  readonly name: string;
  readonly der: Buffer;
  readonly fields: readonly LengthField[];
}

describe('fuzz: the CSR reader (parseCsr) rejects every malformed input with a coded InvalidRequestError', () => {
  const runner = new FuzzRunner({ nowMs: 0 }, TIME_BOUND_MS);
  const seeds: Seed[] = [];
  const codes = new Map<string, number>();
  let accepted = 0;
  let opensslChecked = 0;

  before(async () => {
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
  });

  after(async () => {
    await runner.close();
  });

  /**
   * An accepted CSR checked independently of parseCsr: @peculiar/x509 verifies its self-signature
   * (and openssl does for the first few), and the SPKI parseCsr returns, the one a leaf would carry,
   * is canonical (OpenSSL re-encodes it to the same bytes) and is the CSR's own public key.
   */
  async function checkAccepted(input: Uint8Array, o: Outcome): Promise<void> {
    const what = `input ${describeInput(input)}`;
    assert.ok(o.csr !== undefined, `accepted without a parsed CSR: ${what}`);
    const der = Buffer.from(o.csr.der);
    const spki = Buffer.from(o.csr.spki);
    const req = new x509.Pkcs10CertificateRequest(der);
    assert.equal(
      await req.verify(webcrypto),
      true,
      `accepted, but @peculiar/x509 does not verify it: ${what}`,
    );
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
    if (opensslChecked < 12) {
      opensslChecked++;
      const r = openssl(['req', '-inform', 'DER', '-verify', '-noout'], { input: der });
      assert.ok(r.ok, `accepted, but openssl req -verify fails (${r.stderr}): ${what}`);
    }
  }

  /** The one rule: accepted (a CSR that verifies independently), or rejected with a documented code and a client-error status. */
  async function check(input: Uint8Array, o: Outcome): Promise<void> {
    if (o.kind === 'accepted') {
      await checkAccepted(input, o);
      accepted++;
      return;
    }
    const what = `input ${describeInput(input)}`;
    assert.notEqual(o.kind, 'hung', `parseCsr did not return within ${TIME_BOUND_MS} ms for ${what}`);
    assert.equal(
      o.kind,
      'rejected',
      `parseCsr threw ${o.errorClass ?? '?'} (${o.message ?? ''}), not a LanyardError, for ${what}\n${o.stack ?? ''}`,
    );
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
    codes.set(o.code, (codes.get(o.code) ?? 0) + 1);
  }

  it('accepts the unmutated seeds (P-256, P-384, RSA; three encoders)', async () => {
    for (const s of seeds) {
      const o = await runner.run('csr', s.der);
      assert.equal(o.kind, 'accepted', `${s.name}: ${o.code ?? ''} ${o.message ?? ''}`);
      await checkAccepted(s.der, o);
      assert.ok(
        s.fields.length > 10,
        `${s.name}: the DER walker found only ${s.fields.length} length fields`,
      );
    }
  });

  it('bit flips, byte changes, truncations, insertions, deletions and length-octet changes of valid CSRs', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: 1000 }),
        fc.array(byteMutationArb, { minLength: 1, maxLength: 4 }),
        async (seedIndex, mutations) => {
          const seed = seeds[seedIndex % seeds.length] as Seed;
          let input: Uint8Array = seed.der;
          for (const m of mutations) input = mutateBytes(input, m, seed.fields);
          await check(input, await runner.run('csr', input));
        },
      ),
      { numRuns: runs(6000) },
    );
  });

  it('random bytes, DER-shaped random bytes and splices of two CSRs', async () => {
    const derShaped = fc
      .tuple(fc.constantFrom(0x30, 0x31, 0xa0, 0x02, 0x03, 0x04, 0x06), fc.uint8Array({ maxLength: 600 }))
      .map(([tag, body]) => {
        const len = body.length < 0x80 ? [body.length] : [0x82, body.length >> 8, body.length & 0xff];
        return Buffer.from([0x30, ...len, tag, ...len.slice(0, 1), ...body]);
      });
    const splice = fc
      .tuple(fc.nat({ max: 1000 }), fc.nat({ max: 1000 }), fc.nat({ max: 100_000 }), fc.nat({ max: 100_000 }))
      .map(([a, b, i, j]) => {
        const x = (seeds[a % seeds.length] as Seed).der;
        const y = (seeds[b % seeds.length] as Seed).der;
        return Buffer.concat([x.subarray(0, i % x.length), y.subarray(j % y.length)]);
      });
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 1024 }), derShaped, splice), async (input) => {
        await check(input, await runner.run('csr', input));
      }),
      { numRuns: runs(2500) },
    );
  });

  it('PEM-wrapped mutated CSRs with odd labels, headers and line breaks', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: 1000 }),
        fc.array(byteMutationArb, { maxLength: 2 }),
        fc.constantFrom('CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST', 'CERTIFICATE', 'PRIVATE KEY', ''),
        fc.option(fc.string({ maxLength: 30 }), { nil: undefined }),
        fc.integer({ min: 1, max: 80 }),
        fc.nat({ max: 3 }),
        async (seedIndex, mutations, label, header, width, cut) => {
          const seed = seeds[seedIndex % seeds.length] as Seed;
          let der: Uint8Array = seed.der;
          for (const m of mutations) der = mutateBytes(der, m, seed.fields);
          const body = (
            Buffer.from(der)
              .toString('base64')
              .match(new RegExp(`.{1,${width}}`, 'g')) ?? []
          ).join('\n');
          let pem = `-----BEGIN ${label}-----\n${header !== undefined ? `${header}\n\n` : ''}${body}\n-----END ${label}-----\n`;
          if (cut > 0) pem = pem.slice(0, Math.floor((pem.length * cut) / 4));
          const input = Buffer.from(pem, 'latin1');
          await check(input, await runner.run('csr', input));
        },
      ),
      { numRuns: runs(400) },
    );
  });

  it('edge cases: empty, oversized, deeply nested, indefinite lengths, a valid PEM', async () => {
    const nested = (depth: number): Buffer => {
      let b = Buffer.alloc(0);
      for (let i = 0; i < depth; i++)
        b = Buffer.concat([Buffer.from([0x30, 0x82, b.length >> 8, b.length & 0xff]), b]);
      return b;
    };
    const cases: Uint8Array[] = [
      Buffer.alloc(0),
      Buffer.from([0x30]),
      Buffer.from([0x30, 0x80, 0x00, 0x00]),
      Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
      Buffer.alloc(40_000, 0x30),
      Buffer.concat([Buffer.from([0x30, 0x82, 0x40, 0x01]), Buffer.alloc(0x4001)]),
      nested(3000),
      Buffer.from(encodePem('CERTIFICATE REQUEST', (seeds[0] as Seed).der), 'latin1'),
      Buffer.from('-----BEGIN CERTIFICATE REQUEST-----\n'.repeat(200), 'latin1'),
    ];
    for (const input of cases) await check(input, await runner.run('csr', input));
  });

  it('reached many distinct rejection codes, each input within the time bound', (t) => {
    t.diagnostic(
      `${runner.count} inputs, ${accepted} accepted, slowest ${runner.slowestMs.toFixed(1)} ms; codes: ${[
        ...codes.entries(),
      ]
        .sort((a, b) => b[1] - a[1])
        .map(([c, n]) => `${c} ${n}`)
        .join(', ')}`,
    );
    assert.ok(codes.size >= 5, `only ${codes.size} codes reached: the mutations stay too shallow`);
    assert.ok(codes.has('ERR_CSR_SIGNATURE'), 'no mutation got as far as the signature check');
  });
});
