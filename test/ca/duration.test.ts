import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatDuration, parseDuration } from '../../ca/index.js';
import { DAY, HOUR } from '../support/clock.js';

const MINUTE = 60_000;

describe('parseDuration', () => {
  it('reads Go-style durations in milliseconds', () => {
    const cases: [string, number][] = [
      ['24h', DAY],
      ['8760h', 8760 * HOUR],
      ['87600h', 87_600 * HOUR],
      ['1h30m', HOUR + 30 * MINUTE],
      ['90s', 90_000],
      ['90m', 90 * MINUTE],
      ['30d', 30 * DAY],
      ['500ms', 500],
      ['1m1ms', MINUTE + 1],
      ['1.5h', 1.5 * HOUR],
      ['1d2h3m4s5ms', DAY + 2 * HOUR + 3 * MINUTE + 4000 + 5],
      ['  20s  ', 20_000],
      ['0s1ms', 1],
    ];
    for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
  });

  it('rejects empty, unit-less, unknown-unit, signed, spaced and zero durations with ERR_USAGE', () => {
    for (const bad of [
      '',
      '  ',
      '24',
      'h',
      '1x',
      '1H',
      '-1h',
      '+1h',
      '1h 30m',
      '1 h',
      '0s',
      '0h0m',
      '.5h',
      '1.h',
      '1h-',
    ]) {
      assert.throws(() => parseDuration(bad), { code: 'ERR_USAGE' }, JSON.stringify(bad));
    }
  });

  it('never returns a duration that rounds to zero', () => {
    assert.throws(() => parseDuration('0.4ms'), { code: 'ERR_USAGE' });
    assert.equal(parseDuration('0.5ms'), 1);
  });

  it('adds up components for any combination (300 runs)', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 400 }),
        fc.nat({ max: 100 }),
        fc.nat({ max: 100 }),
        fc.nat({ max: 100 }),
        fc.nat({ max: 1000 }),
        (d, h, m, s, ms) => {
          fc.pre(d + h + m + s + ms > 0);
          const text = `${d}d${h}h${m}m${s}s${ms}ms`;
          assert.equal(parseDuration(text), d * DAY + h * HOUR + m * MINUTE + s * 1000 + ms);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('formatDuration', () => {
  it('shows the two largest units', () => {
    const cases: [number, string][] = [
      [0, '0s'],
      [45_000, '45s'],
      [90_000, '1m 30s'],
      [HOUR, '1h 0m'],
      [23 * HOUR + 59 * MINUTE + 59_000, '23h 59m'],
      [DAY, '1d 0h'],
      [3 * DAY + 4 * HOUR + 5 * MINUTE, '3d 4h'],
      [365 * DAY, '365d 0h'],
      [1499, '1s'],
      [1500, '2s'],
    ];
    for (const [ms, text] of cases) assert.equal(formatDuration(ms), text, String(ms));
  });

  it('prefixes negative durations with "-"', () => {
    assert.equal(formatDuration(-90_000), '-1m 30s');
    assert.equal(formatDuration(-2 * DAY), '-2d 0h');
  });

  it('reads back through parseDuration when nothing is dropped (300 runs)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 59 * MINUTE + 59_000 }), (n) => {
        const ms = Math.round(n / 1000) * 1000;
        fc.pre(ms > 0 && ms < HOUR);
        assert.equal(parseDuration(formatDuration(ms).replace(' ', '')), ms);
      }),
      { numRuns: 300 },
    );
  });
});
