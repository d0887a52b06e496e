import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_QUOTED_CHARS, quoteListForMessage } from '../../ca/quote.js';
import { quoteForMessage } from '../../ca/index.js';

describe('quoteForMessage', () => {
  it('quotes a short printable string as JSON does', () => {
    for (const s of [
      'web.default.serviceaccount.identity.linkerd.cluster.local',
      '',
      'a "b" \\ c',
      'café ✓ 😀',
    ]) {
      assert.equal(quoteForMessage(s), JSON.stringify(s));
      assert.equal(JSON.parse(quoteForMessage(s)), s);
    }
  });

  it('cuts a long string to MAX_QUOTED_CHARS and says how long it was', () => {
    const q = quoteForMessage('x'.repeat(50_000));
    assert.ok(q.length < MAX_QUOTED_CHARS + 40, `${q.length} characters`);
    assert.ok(q.startsWith(JSON.stringify('x'.repeat(MAX_QUOTED_CHARS))));
    assert.match(q, /50000/);
  });

  it('does not split a surrogate pair when cutting', () => {
    const q = quoteForMessage(`${'x'.repeat(MAX_QUOTED_CHARS - 1)}😀😀`);
    assert.doesNotMatch(q, /\\ud83d/i);
    assert.ok(!/[\ud800-\udbff](?![\udc00-\udfff])/.test(q), 'a lone high surrogate');
  });

  it('escapes control, format and separator characters (C0, DEL, C1, bidi overrides, U+2028)', () => {
    const raw = 'a\u0000b\u0007c\r\nd\u007fe\u0085f\u009bg\u202eh\u2066i\u200bj\u2028k\u2029l\ufeffm\udfffn';
    const q = quoteForMessage(raw);
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(q, /[\u0000-\u001f\u007f-\u009f\u200b\u2028\u2029\u202e\u2066\ufeff\udfff]/);
    assert.equal(JSON.parse(q), raw, 'the escapes are JSON escapes of the same characters');
  });
});

describe('quoteListForMessage', () => {
  it('shows the first three items and counts the rest', () => {
    assert.equal(quoteListForMessage([]), '[]');
    assert.equal(quoteListForMessage(['a', 'b']), '["a", "b"]');
    const q = quoteListForMessage(Array.from({ length: 500 }, () => 'y'.repeat(1000)));
    assert.ok(q.length < 4 * MAX_QUOTED_CHARS, `${q.length} characters`);
    assert.match(q, /497 more/);
  });
});
