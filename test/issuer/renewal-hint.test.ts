// Renewal hints (issue 13, point 4): the pure valid_until rule and the flags (the RFC 3339
// reader: test/ca/time.test.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LanyardError } from '../../ca/index.js';
import {
  DEFAULT_RENEW_SPREAD_MS,
  RENEWAL_FRACTION,
  validUntilFor,
  type RenewalHint,
} from '../../issuer/renewal-hint.js';
import { createIssuerMetrics } from '../../issuer/metrics.js';
import { runLanyard } from '../support/cli-inproc.js';
import { HOUR } from '../support/clock.js';
import { testConfig } from '../support/issuer.js';

const MIN = 60_000;
const now = new Date('2026-07-01T12:00:00Z');
const at = (ms: number): Date => new Date(now.getTime() + ms);
const hint = (afterMs: number, spreadMs: number): RenewalHint => ({ after: at(afterMs), spreadMs });
/** when a caller renewing at 70 % of (valid_until − now) renews */
const renewsAt = (validUntil: Date): number =>
  now.getTime() + RENEWAL_FRACTION * (validUntil.getTime() - now.getTime());

describe('validUntilFor', () => {
  it('without a hint, valid_until is notAfter', () => {
    const notAfter = at(24 * HOUR);
    assert.equal(validUntilFor({ now, notAfter, hint: undefined, random: () => 0.5 }), notAfter);
  });

  it('aims the renewal at after + random × spread, whatever random gives in [0, 1)', () => {
    for (const r of [0, 0.25, 0.5, 0.999999]) {
      const v = validUntilFor({
        now,
        notAfter: at(24 * HOUR),
        hint: hint(10 * MIN, 10 * MIN),
        random: () => r,
      });
      const target = now.getTime() + 10 * MIN + r * 10 * MIN;
      assert.ok(renewsAt(v) >= target && renewsAt(v) < target + 1, `random ${r}: renews at ${renewsAt(v)}`);
    }
  });

  it('once the hint has passed (or at it), valid_until is notAfter', () => {
    const notAfter = at(24 * HOUR);
    for (const afterMs of [-HOUR, -1, 0])
      assert.equal(
        validUntilFor({ now, notAfter, hint: hint(afterMs, 10 * MIN), random: () => 0.5 }),
        notAfter,
      );
  });

  it('a hint beyond notAfter gives notAfter, never later', () => {
    const notAfter = at(HOUR);
    for (const [afterMs, r] of [
      [50 * MIN, 0], // after / 0.7 is already past notAfter
      [2 * HOUR, 0.5],
      [40 * MIN, 0.999], // within the window, the late end crosses notAfter
    ] as const)
      assert.equal(
        validUntilFor({ now, notAfter, hint: hint(afterMs, 10 * MIN), random: () => r }).getTime(),
        notAfter.getTime(),
        `after +${afterMs / MIN} min, random ${r}`,
      );
    // and the early end of the same window stays before it
    const early = validUntilFor({ now, notAfter, hint: hint(40 * MIN, 10 * MIN), random: () => 0 });
    assert.ok(early.getTime() < notAfter.getTime());
  });

  it('a spread of 0 aims every renewal at the hint itself', () => {
    for (const r of [0, 0.3, 0.9]) {
      const v = validUntilFor({ now, notAfter: at(24 * HOUR), hint: hint(10 * MIN, 0), random: () => r });
      assert.ok(renewsAt(v) >= now.getTime() + 10 * MIN && renewsAt(v) < now.getTime() + 10 * MIN + 1);
    }
  });
});

describe('serve --renew-after / --renew-spread', () => {
  it('builds the hint, with a 10 min spread by default', () => {
    const c = testConfig('/nonexistent', { renewAfter: '2026-07-01T12:00:00Z' });
    assert.equal(c.renewalHint?.after.toISOString(), '2026-07-01T12:00:00.000Z');
    assert.equal(c.renewalHint?.spreadMs, DEFAULT_RENEW_SPREAD_MS);
    assert.equal(DEFAULT_RENEW_SPREAD_MS, 10 * MIN);
    assert.equal(testConfig('/nonexistent').renewalHint, undefined);
  });

  it('refuses a --renew-after that is not RFC 3339 as a usage error (ERR_USAGE)', () => {
    assert.throws(
      () => testConfig('/nonexistent', { renewAfter: 'in ten minutes' }),
      (err: unknown) => err instanceof LanyardError && err.code === 'ERR_USAGE',
    );
  });

  it('refuses --renew-spread without --renew-after (ERR_USAGE) rather than ignoring it', () => {
    assert.throws(
      () => testConfig('/nonexistent', { renewSpreadMs: 15 * MIN }),
      (err: unknown) => err instanceof LanyardError && err.code === 'ERR_USAGE',
    );
    const c = testConfig('/nonexistent', { renewAfter: '2026-07-01T12:00:00Z', renewSpreadMs: 15 * MIN });
    assert.equal(c.renewalHint?.spreadMs, 15 * MIN);
  });

  it('exits with the usage status (2) on the command line', async () => {
    // a serve command line that is complete but for the flags under test
    const serve = (...flags: string[]): ReturnType<typeof runLanyard> =>
      runLanyard([
        'serve',
        '--issuer-dir',
        '/nonexistent',
        '--jwks-file',
        '/dev/null',
        '--token-issuer',
        'test',
        '--workers',
        '1',
        ...flags,
      ]);
    const r = await serve('--renew-after', '2026-07-01');
    assert.equal(r.code, 2, r.err);
    const bad = await runLanyard(['serve', '--issuer-dir', '/nonexistent', '--renew-spread', 'soon']);
    assert.equal(bad.code, 2, bad.err);
    const alone = await serve('--renew-spread', '15m');
    assert.equal(alone.code, 2, alone.err);
  });
});

describe('lanyard_renewal_hint_timestamp_seconds', () => {
  it('is set by createIssuerMetrics from the hint (one place for the single process and the primary); 0 without one', async () => {
    const after = new Date('2026-07-01T12:00:00Z');
    const gauge = async (m: ReturnType<typeof createIssuerMetrics>): Promise<number> =>
      Number(/^lanyard_renewal_hint_timestamp_seconds (\S+)$/m.exec(await m.stateRegistry.metrics())?.[1]);
    const hinted = createIssuerMetrics({ defaultMetrics: false, renewalHint: { after, spreadMs: 10 * MIN } });
    assert.equal(await gauge(hinted), after.getTime() / 1000);
    assert.equal(await gauge(createIssuerMetrics({ defaultMetrics: false })), 0);
  });
});
