// The strict PEM reader (decodePem, under every certificate, key, CSR and bundle file) as a fuzz suite.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { buildCsr, encodePem, systemClock } from '../../ca/index.js';
import { createKeyObjectSigner, generateKey } from '../../ca/keys/index.js';
import { x509 } from '../../ca/x509.js';
import { openssl } from '../support/openssl.js';
import { testPki } from '../support/pki.js';
import { FuzzRunner, describeInput, type Outcome } from './harness.js';
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

/** Every code decodePem documents. */
export const PEM_CODES = new Set(['ERR_PEM_MALFORMED', 'ERR_PEM_HEADERS']);
const TIME_BOUND_MS = 2000;

export const PEM_GROUPS = {
  text: 'character changes, truncations, insertions and deletions of valid PEM texts',
  lines:
    'line edits: lines deleted, doubled, swapped, inserted (headers, boundaries, padding), re-wrapped, indented, other line ends, other labels',
  blocks: 'well-formed PEM assembled from random labels, bodies, widths and text between blocks',
  random: 'random text, random bytes and PEM-shaped random text',
} as const;

type LineEdit =
  | { readonly kind: 'delete' | 'duplicate'; readonly at: number }
  | { readonly kind: 'swap'; readonly at: number; readonly with: number }
  | { readonly kind: 'insert'; readonly at: number; readonly line: string }
  | { readonly kind: 'rewrap'; readonly width: number }
  | { readonly kind: 'indent'; readonly at: number; readonly before: string; readonly after: string }
  | { readonly kind: 'eol'; readonly eol: string }
  | { readonly kind: 'relabel'; readonly at: number; readonly label: string };

const position = fc.nat({ max: 10_000 });
const b64Char = fc.constantFrom(
  ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/='.split(''),
);
const label = fc.oneof(
  fc.constantFrom(
    'CERTIFICATE',
    'PRIVATE KEY',
    'CERTIFICATE REQUEST',
    'PUBLIC KEY',
    'EC PRIVATE KEY',
    'X509 CRL',
  ),
  fc.stringMatching(/^[A-Z0-9 ]{1,20}$/),
  fc.constantFrom('certificate', 'CERT-IFICATE', '', ' ', 'CERTIFICATE ', 'Ü'),
);
const oddLine = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '\t',
    'Proc-Type: 4,ENCRYPTED',
    'DEK-Info: AES-128-CBC,0011223344556677',
    '-----BEGIN CERTIFICATE-----',
    '-----END CERTIFICATE-----',
    '-----BEGIN PRIVATE KEY-----',
    '-----END X-----',
    '-----BEGIN  CERTIFICATE-----',
    '-----BEGIN certificate-----',
    '----- BEGIN CERTIFICATE -----',
    '-----',
    '=',
    '==',
    'AA==',
    'A',
    'MII',
    'some explanatory text',
    'Certificate:',
  ),
  fc.string({ unit: b64Char, maxLength: 80 }),
  fc.string({ maxLength: 20 }),
);
const lineEdit: fc.Arbitrary<LineEdit> = fc.oneof(
  fc.record({ kind: fc.constantFrom('delete' as const, 'duplicate' as const), at: position }),
  fc.record({ kind: fc.constant('swap' as const), at: position, with: position }),
  fc.record({ kind: fc.constant('insert' as const), at: position, line: oddLine }),
  fc.record({ kind: fc.constant('rewrap' as const), width: fc.integer({ min: 1, max: 120 }) }),
  fc.record({
    kind: fc.constant('indent' as const),
    at: position,
    before: fc.constantFrom('', ' ', '\t', '  ', '\u00a0', '\ufeff', '\v'),
    after: fc.constantFrom('', ' ', '\t', '\r', '\u00a0'),
  }),
  fc.record({ kind: fc.constant('eol' as const), eol: fc.constantFrom('\r\n', '\r', '\n\n', '\n \n') }),
  fc.record({ kind: fc.constant('relabel' as const), at: position, label }),
);

function applyLineEdit(text: string, e: LineEdit): string {
  const lines = text.split('\n');
  const at = (n: number): number => (lines.length === 0 ? 0 : n % lines.length);
  switch (e.kind) {
    case 'delete':
      lines.splice(at(e.at), 1);
      break;
    case 'duplicate':
      lines.splice(at(e.at), 0, lines[at(e.at)] ?? '');
      break;
    case 'swap': {
      const i = at(e.at);
      const j = at(e.with);
      [lines[i], lines[j]] = [lines[j] ?? '', lines[i] ?? ''];
      break;
    }
    case 'insert':
      lines.splice(e.at % (lines.length + 1), 0, e.line);
      break;
    case 'rewrap': {
      const out: string[] = [];
      let body: string[] | undefined;
      for (const l of lines) {
        if (l.startsWith('-----BEGIN ')) {
          out.push(l);
          body = [];
        } else if (l.startsWith('-----END ') && body !== undefined) {
          out.push(...(body.join('').match(new RegExp(`.{1,${e.width}}`, 'g')) ?? []), l);
          body = undefined;
        } else if (body !== undefined) body.push(l);
        else out.push(l);
      }
      if (body !== undefined) out.push(...body);
      return out.join('\n');
    }
    case 'indent': {
      const i = at(e.at);
      lines[i] = `${e.before}${lines[i] ?? ''}${e.after}`;
      break;
    }
    case 'eol':
      return lines.join(e.eol);
    case 'relabel': {
      const boundaries = lines.flatMap((l, i) => (/^-----(BEGIN|END) /.test(l) ? [i] : []));
      if (boundaries.length === 0) break;
      const i = boundaries[e.at % boundaries.length] as number;
      lines[i] = (lines[i] ?? '').replace(/^(-----(?:BEGIN|END) ).*(-----)$/, `$1${e.label}$2`);
      break;
    }
  }
  return lines.join('\n');
}

function wrap(labelText: string, der: Uint8Array, width: number): string {
  const body =
    Buffer.from(der)
      .toString('base64')
      .match(new RegExp(`.{1,${width}}`, 'g')) ?? [];
  return `-----BEGIN ${labelText}-----\n${body.join('\n')}\n-----END ${labelText}-----\n`;
}

export async function createPemSuite(): Promise<FuzzSuite> {
  const runner = new FuzzRunner({ nowMs: 0 }, TIME_BOUND_MS);
  const stats = newStats();
  const pki = await testPki({ now: systemClock.now() });
  const issuer = pki.issuers.east;
  if (issuer === undefined) throw new Error('no issuer');
  const chainPem = issuer.certPem + pki.anchorsPem;
  const signer = createKeyObjectSigner(await generateKey('p256'));
  const csrPem = encodePem('CERTIFICATE REQUEST', buildCsr(signer, { dnsNames: ['web.default.svc'] }));
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const sec1 = ec.privateKey.export({ type: 'sec1', format: 'pem' }).toString();
  const spkiPem = ec.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const withText = openssl(['x509', '-inform', 'DER', '-text'], { input: pki.anchor.cert.der });
  if (!withText.ok) throw new Error('openssl x509 -text failed');
  const seedTexts: [string, string][] = [
    ['a chain of two certificates', chainPem],
    ['a PKCS#8 key', issuer.keyPem],
    ['a CSR', csrPem],
    ['a SEC1 key (OpenSSL)', sec1],
    ['a public key (OpenSSL)', spkiPem],
    ['openssl x509 -text: explanatory text before the block', withText.stdout],
    ['a chain with CRLF line ends', chainPem.replace(/\n/g, '\r\n')],
  ];
  const seeds = seedTexts.map(([name, text]) => ({ name, input: Buffer.from(text, 'utf8') }));
  const seedAt = (i: number): Buffer => (seeds[i % seeds.length] as { input: Buffer }).input;
  const ders = [pki.anchor.cert.der, issuer.cert.der, Buffer.from(signer.publicKeyDer)];

  /**
   * An accepted text checked against @peculiar/x509's PEM decoder (another implementation) after the
   * whitespace rules decodePem follows (lines trimmed, blank lines dropped): the same blocks, in the
   * same order, with the same labels and bytes, and no headers.
   */
  function checkAccepted(input: Uint8Array, o: Outcome): void {
    const what = `input ${describeInput(input)} (${JSON.stringify(Buffer.from(input).toString('utf8').slice(0, 300))})`;
    assert.ok(o.pem !== undefined, `accepted without blocks: ${what}`);
    let theirs: ReturnType<typeof x509.PemConverter.decodeWithHeaders>;
    try {
      theirs = x509.PemConverter.decodeWithHeaders(pemLines(Buffer.from(input).toString('utf8')));
    } catch (err) {
      assert.fail(`accepted, but @peculiar/x509 cannot read it (${(err as Error).message}): ${what}`);
    }
    countOracle(
      stats,
      o.pem.length > 0 ? 'blocks re-read by @peculiar/x509' : 'no block, none found by @peculiar/x509',
    );
    assert.equal(
      theirs.length,
      o.pem.length,
      `accepted ${o.pem.length} blocks, @peculiar/x509 reads ${theirs.length}: ${what}`,
    );
    o.pem.forEach((b, i) => {
      const t = theirs[i];
      assert.ok(t !== undefined);
      assert.equal(b.label, t.type, `block ${i}: label: ${what}`);
      assert.deepEqual(t.headers, [], `block ${i} has headers: ${what}`);
      assert.ok(Buffer.from(b.der).equals(Buffer.from(t.rawData)), `block ${i}: other bytes: ${what}`);
      assert.ok(b.der.length > 0, `block ${i} is empty: ${what}`);
    });
  }

  async function check(input: Uint8Array, o: Outcome): Promise<void> {
    await Promise.resolve();
    const what = `input ${describeInput(input)}`;
    assertSettled(o, 'decodePem', what, TIME_BOUND_MS);
    if (o.kind === 'accepted') {
      stats.accepted++;
      checkAccepted(input, o);
      stats.reverified++;
      countKind(stats, 'accepted');
      return;
    }
    assert.ok(
      o.code !== undefined && PEM_CODES.has(o.code),
      `undocumented code ${o.code ?? '(none)'} for ${what}`,
    );
    assert.equal(
      o.isInvalidRequestError,
      true,
      `${o.errorClass ?? '?'} is not an InvalidRequestError for ${what}`,
    );
    countKind(stats, o.code);
  }

  const block = fc.record({
    label,
    der: fc.oneof(fc.constantFrom(...ders), fc.uint8Array({ minLength: 0, maxLength: 200 })),
    width: fc.oneof(fc.constant(64), fc.integer({ min: 1, max: 200 })),
    between: fc.oneof(
      fc.constant(''),
      oddLine.map((l) => `${l}\n`),
    ),
  });
  const pemShaped = fc
    .tuple(
      label,
      fc.string({ unit: fc.oneof(b64Char, fc.constantFrom('\n', ' ', '\r')), maxLength: 300 }),
      label,
    )
    .map(([a, body, b]) => Buffer.from(`-----BEGIN ${a}-----\n${body}\n-----END ${b}-----\n`, 'utf8'));

  return {
    target: 'pem',
    runner,
    timeBoundMs: TIME_BOUND_MS,
    seeds,
    groups: [
      seedTextMutations(PEM_GROUPS.text, 3000, seedAt, { maxSeed: 1000, maxMutations: 4 }),
      group(
        PEM_GROUPS.lines,
        3000,
        fc.tuple(fc.nat({ max: 1000 }), fc.array(lineEdit, { minLength: 1, maxLength: 4 })),
        ([seedIndex, edits]) => {
          let text = seedAt(seedIndex).toString('utf8');
          for (const e of edits) text = applyLineEdit(text, e);
          return Buffer.from(text, 'utf8');
        },
      ),
      group(PEM_GROUPS.blocks, 1500, fc.array(block, { maxLength: 5 }), (blocks) =>
        Buffer.from(blocks.map((b) => `${b.between}${wrap(b.label, b.der, b.width)}`).join(''), 'utf8'),
      ),
      group(
        PEM_GROUPS.random,
        1500,
        fc.oneof(
          fc.string({ maxLength: 300 }).map((s) => Buffer.from(s, 'utf8')),
          fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
          pemShaped,
        ),
        (b) => b,
      ),
    ],
    edgeCases: [
      Buffer.alloc(0),
      Buffer.from('\n\n\n'),
      Buffer.from('-----BEGIN A-----\n-----END A-----\n'),
      Buffer.from(`\ufeff${chainPem}`, 'utf8'),
      Buffer.from(wrap('CERTIFICATE', Buffer.alloc(600_000, 7), 600_000 * 2)),
      Buffer.from(chainPem.repeat(500)),
      Buffer.from('-----BEGIN CERTIFICATE-----\n'.repeat(10_000)),
      Buffer.from(`-----BEGIN CERTIFICATE-----\n${'A'.repeat(100_000)}\n`),
      Buffer.from(`${'-'.repeat(100_000)}\n`),
    ],
    check,
    stats,
    close: () => runner.close(),
  };
}
