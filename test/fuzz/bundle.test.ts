import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BUNDLE_GROUPS, createBundleSuite } from './bundle-suite.js';
import { formatKinds } from './suite.js';
import { itAcceptsSeeds, itRunsEdgeCases, itRunsGroups, useSuite } from './suite-tests.js';

describe('fuzz: the trust-bundle reader (parseTrustBundle) accepts only CA certificates OpenSSL agrees on', () => {
  const suite = useSuite(createBundleSuite);

  itAcceptsSeeds(
    'accepts the unmutated bundles (P-256, P-384, RSA and OpenSSL-made anchors, an intermediate, a duplicate)',
    suite,
  );

  itRunsGroups(suite, [
    [BUNDLE_GROUPS.text, 1500 / 4],
    [BUNDLE_GROUPS.der, 4000 / 4],
    [BUNDLE_GROUPS.assembled, 1000 / 4],
    [BUNDLE_GROUPS.random, 500 / 4],
  ]);

  itRunsEdgeCases(
    'edge cases: empty, a non-CA certificate alone, 1,500 copies of one anchor, 1,000 anchors',
    suite,
  );

  it('reached every refusal code, each input within the time bound', (t) => {
    const { runner, stats } = suite();
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
