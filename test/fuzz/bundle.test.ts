import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runs } from './harness.js';
import { BUNDLE_GROUPS, createBundleSuite } from './bundle-suite.js';
import { assertGroup, formatKinds, runInput, type FuzzSuite } from './suite.js';

describe('fuzz: the trust-bundle reader (parseTrustBundle) accepts only CA certificates OpenSSL agrees on', () => {
  let suite: FuzzSuite;

  before(async () => {
    suite = await createBundleSuite();
  });

  after(async () => {
    await suite.close();
  });

  it('accepts the unmutated bundles (P-256, P-384, RSA and OpenSSL-made anchors, an intermediate, a duplicate)', async () => {
    for (const s of suite.seeds) {
      const o = await runInput(suite, s.input);
      assert.equal(o.kind, 'accepted', `${s.name}: ${o.code ?? ''} ${o.message ?? ''}`);
    }
  });

  for (const [name, weight] of [
    [BUNDLE_GROUPS.text, 1500],
    [BUNDLE_GROUPS.der, 4000],
    [BUNDLE_GROUPS.assembled, 1000],
    [BUNDLE_GROUPS.random, 500],
  ] as const)
    it(name, async () => {
      await assertGroup(suite, name, runs(weight / 4));
    });

  it('edge cases: empty, a non-CA certificate alone, 1,500 copies of one anchor, 1,000 anchors', async () => {
    for (const input of suite.edgeCases) await runInput(suite, input);
  });

  it('reached every refusal code, each input within the time bound', (t) => {
    const { runner, stats } = suite;
    t.diagnostic(
      `${runner.count} inputs, ${stats.accepted} accepted (${stats.reverified} re-verified with OpenSSL and @peculiar/x509), slowest ${runner.slowestMs.toFixed(1)} ms; outcomes: ${formatKinds(stats)}`,
    );
    for (const code of [
      'ERR_PEM_MALFORMED',
      'ERR_PEM_HEADERS',
      'ERR_PEM_UNEXPECTED_TYPE',
      'ERR_CERT_MALFORMED',
      'ERR_NOT_CA',
    ])
      assert.ok(stats.kinds.has(code), `${code} never reached`);
    assert.ok(stats.accepted > 50, `only ${stats.accepted} bundles accepted: the oracle is barely exercised`);
  });
});
