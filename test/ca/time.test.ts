// The one RFC 3339 reader (ca/time.ts): serve --renew-after and rotate plan --renew-after.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRfc3339 } from '../../ca/index.js';

describe('parseRfc3339', () => {
  it('reads RFC 3339 date-times with Z or an offset, and fractions', () => {
    assert.equal(parseRfc3339('2026-07-01T12:00:00Z')?.toISOString(), '2026-07-01T12:00:00.000Z');
    assert.equal(parseRfc3339('2026-07-01t14:30:00.25+02:30')?.toISOString(), '2026-07-01T12:00:00.250Z');
    assert.equal(parseRfc3339('2026-07-01T11:00:00-01:00')?.toISOString(), '2026-07-01T12:00:00.000Z');
    assert.equal(parseRfc3339('2024-02-29T00:00:00Z')?.toISOString(), '2024-02-29T00:00:00.000Z');
  });

  it('refuses what is not one', () => {
    for (const s of [
      'tomorrow',
      '2026-07-01',
      '2026-07-01T12:00Z',
      '2026-07-01T12:00:00', // no offset
      '2026-07-01 12:00:00Z',
      '2026-02-29T00:00:00Z', // not a leap year
      '2026-13-01T00:00:00Z',
      '2026-07-01T24:00:00Z',
      '2026-07-01T12:00:00+24:00',
      '1751371200',
      ' 2026-07-01T12:00:00Z',
    ])
      assert.equal(parseRfc3339(s), undefined, s);
  });
});
