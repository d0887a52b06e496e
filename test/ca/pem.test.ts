import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeOnePem, decodePemOf, looksLikePem, type PemLabel } from '../../ca/pem.js';
import { decodePem, encodePem } from '../../ca/index.js';
import { openssl } from '../support/openssl.js';

const DER = Buffer.from('3003020105', 'hex');
const BODY = DER.toString('base64');
const block = (label: string, body = BODY): string =>
  `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;

describe('encodePem', () => {
  it('writes 64-character base64 lines between BEGIN and END', () => {
    const der = Buffer.alloc(100, 0xab);
    const pem = encodePem('CERTIFICATE', der);
    const lines = pem.trimEnd().split('\n');
    assert.equal(lines[0], '-----BEGIN CERTIFICATE-----');
    assert.equal(lines[lines.length - 1], '-----END CERTIFICATE-----');
    assert.deepEqual(
      lines.slice(1, -1).map((l) => l.length),
      [64, 64, 8],
    );
    assert.ok(pem.endsWith('\n'));
  });

  it('round-trips any bytes through decodePem (300 runs)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 2000 }),
        fc.constantFrom<PemLabel>('CERTIFICATE', 'PRIVATE KEY', 'CERTIFICATE REQUEST', 'PUBLIC KEY'),
        (bytes, label) => {
          const blocks = decodePem(encodePem(label, bytes));
          assert.equal(blocks.length, 1);
          assert.equal(blocks[0]?.label, label);
          assert.ok(blocks[0]?.der.equals(Buffer.from(bytes)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('writes PEM that openssl reads', () => {
    const r = openssl(['asn1parse'], { input: encodePem('CERTIFICATE', DER) });
    assert.ok(r.ok, r.stderr);
    assert.match(r.stdout, /INTEGER\s+:05/);
  });
});

describe('decodePem', () => {
  it('reads several blocks in order and ignores text between them', () => {
    const text = `leading words\n${block('CERTIFICATE')}between\n${block('PRIVATE KEY', 'AQID')}trailing`;
    const blocks = decodePem(text);
    assert.deepEqual(
      blocks.map((b) => [b.label, b.der.toString('hex')]),
      [
        ['CERTIFICATE', '3003020105'],
        ['PRIVATE KEY', '010203'],
      ],
    );
  });

  it('accepts CRLF line ends, indentation and a missing final newline', () => {
    assert.equal(decodePem(block('CERTIFICATE').replaceAll('\n', '\r\n')).length, 1);
    assert.equal(decodePem(block('CERTIFICATE').trimEnd()).length, 1);
    assert.equal(decodePem(block('CERTIFICATE').replaceAll('\n', '\n  ')).length, 1);
  });

  it('returns no blocks for text without PEM', () => {
    assert.deepEqual(decodePem(''), []);
    assert.deepEqual(decodePem('just some words\n'), []);
  });

  it('rejects RFC 1421 headers with ERR_PEM_HEADERS', () => {
    const encrypted = `-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0011\n\n${BODY}\n-----END RSA PRIVATE KEY-----\n`;
    assert.throws(() => decodePem(encrypted), { code: 'ERR_PEM_HEADERS' });
    assert.throws(() => decodePem(block('CERTIFICATE', `Comment: hello\n${BODY}`)), {
      code: 'ERR_PEM_HEADERS',
    });
  });

  it('rejects a body that is not base64 with ERR_PEM_MALFORMED', () => {
    for (const body of ['MAMCAQU*', 'MA MCAQU=', 'MAMCAQU=extra', 'M', 'MAMCAQU', '====']) {
      assert.throws(() => decodePem(block('CERTIFICATE', body)), { code: 'ERR_PEM_MALFORMED' }, body);
    }
  });

  it('rejects base64 with padding in the middle or non-canonical final bits with ERR_PEM_MALFORMED', () => {
    assert.throws(() => decodePem(block('CERTIFICATE', 'QQ==\nQQ==')), { code: 'ERR_PEM_MALFORMED' });
    assert.throws(() => decodePem(block('CERTIFICATE', 'QR==')), { code: 'ERR_PEM_MALFORMED' });
  });

  it('rejects an empty body with ERR_PEM_MALFORMED', () => {
    assert.throws(() => decodePem('-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n'), {
      code: 'ERR_PEM_MALFORMED',
    });
  });

  it('rejects an END line that does not match its BEGIN with ERR_PEM_MALFORMED', () => {
    assert.throws(() => decodePem(`-----BEGIN CERTIFICATE-----\n${BODY}\n-----END PRIVATE KEY-----\n`), {
      code: 'ERR_PEM_MALFORMED',
    });
  });

  it('rejects an unterminated block with ERR_PEM_MALFORMED', () => {
    assert.throws(() => decodePem(`-----BEGIN CERTIFICATE-----\n${BODY}\n`), { code: 'ERR_PEM_MALFORMED' });
    assert.throws(() => decodePem(block('CERTIFICATE') + `-----BEGIN CERTIFICATE-----\n${BODY}`), {
      code: 'ERR_PEM_MALFORMED',
    });
  });

  it('rejects a nested BEGIN, a stray END and malformed boundaries with ERR_PEM_MALFORMED', () => {
    const nested = `-----BEGIN CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\n${BODY}\n-----END CERTIFICATE-----\n`;
    for (const text of [
      nested,
      `-----END CERTIFICATE-----\n`,
      `-----BEGIN certificate-----\n${BODY}\n-----END certificate-----\n`,
      `----BEGIN CERTIFICATE-----\n${BODY}\n-----END CERTIFICATE-----\n`,
    ]) {
      assert.throws(() => decodePem(text), { code: 'ERR_PEM_MALFORMED' }, text);
    }
  });
});

describe('decodePemOf and decodeOnePem', () => {
  it('return the DER of every block with the label', () => {
    const ders = decodePemOf(block('CERTIFICATE') + block('CERTIFICATE', 'AQID'), 'CERTIFICATE', 'bundle');
    assert.deepEqual(
      ders.map((d) => d.toString('hex')),
      ['3003020105', '010203'],
    );
    assert.equal(decodeOnePem(block('PRIVATE KEY'), 'PRIVATE KEY', 'key').toString('hex'), '3003020105');
  });

  it('refuse any block with another label with ERR_PEM_UNEXPECTED_TYPE', () => {
    assert.throws(() => decodePemOf(block('CERTIFICATE') + block('PRIVATE KEY'), 'CERTIFICATE', 'bundle'), {
      code: 'ERR_PEM_UNEXPECTED_TYPE',
    });
    assert.throws(() => decodeOnePem(block('EC PRIVATE KEY'), 'PRIVATE KEY', 'key'), {
      code: 'ERR_PEM_UNEXPECTED_TYPE',
    });
  });

  it('refuse text without a block with ERR_PEM_MALFORMED', () => {
    assert.throws(() => decodePemOf('nothing here', 'CERTIFICATE', 'bundle'), { code: 'ERR_PEM_MALFORMED' });
  });

  it('decodeOnePem refuses two blocks with ERR_PEM_MALFORMED', () => {
    assert.throws(() => decodeOnePem(block('PRIVATE KEY') + block('PRIVATE KEY'), 'PRIVATE KEY', 'key'), {
      code: 'ERR_PEM_MALFORMED',
    });
  });
});

describe('looksLikePem', () => {
  it('tells PEM text from DER bytes', () => {
    assert.equal(looksLikePem(Buffer.from(block('CERTIFICATE'))), true);
    assert.equal(looksLikePem(Buffer.from(`\n  ${block('CERTIFICATE')}`)), true);
    assert.equal(looksLikePem(DER), false);
    assert.equal(looksLikePem(Buffer.alloc(0)), false);
    assert.equal(looksLikePem(Buffer.from('-----END CERTIFICATE-----')), false);
  });

  it('takes text with explanatory lines before the block (openssl -text output) as PEM', () => {
    const text = `Certificate:\n    Data:\n        Version: 3 (0x2)\n${block('CERTIFICATE')}`;
    assert.equal(looksLikePem(Buffer.from(text)), true);
    assert.deepEqual(decodePemOf(text, 'CERTIFICATE', 'cert'), [DER]);
  });

  it('still takes DER that happens to contain a BEGIN line as DER (it has control bytes)', () => {
    const der = Buffer.concat([DER, Buffer.from(`\n${block('CERTIFICATE')}`)]);
    assert.equal(looksLikePem(der), false);
  });

  it('still refuses headers inside a block after explanatory text with ERR_PEM_HEADERS', () => {
    const text = `Certificate:\n-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n${BODY}\n-----END CERTIFICATE-----\n`;
    assert.equal(looksLikePem(Buffer.from(text)), true);
    assert.throws(() => decodePemOf(text, 'CERTIFICATE', 'cert'), { code: 'ERR_PEM_HEADERS' });
  });
});
