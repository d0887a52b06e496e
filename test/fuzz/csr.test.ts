import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lengthFields } from './harness.js';
import { CSR_GROUPS, createCsrSuite } from './csr-suite.js';
import { formatKinds } from './suite.js';
import { itAcceptsSeeds, itRunsGroups, itRunsEdgeCases, useSuite } from './suite-tests.js';

describe('fuzz: the CSR reader (parseCsr) rejects every malformed input with a coded InvalidRequestError', () => {
  // openssl req -verify checks the first dozen accepted CSRs (npm run fuzz: every distinct one)
  const suite = useSuite(() => createCsrSuite({ opensslChecks: 12 }));

  itAcceptsSeeds('accepts the unmutated seeds (P-256, P-384, RSA; three encoders)', suite, (s) => {
    const fields = lengthFields(s.input).length;
    assert.ok(fields > 10, `${s.name}: the DER walker found only ${fields} length fields`);
  });

  itRunsGroups(suite, [
    [CSR_GROUPS.mutations, 6000],
    [CSR_GROUPS.random, 2500],
    [CSR_GROUPS.pem, 400],
  ]);

  itRunsEdgeCases('edge cases: empty, oversized, deeply nested, indefinite lengths, a valid PEM', suite);

  it('reached many distinct rejection codes, each input within the time bound', (t) => {
    const { runner, stats } = suite();
    t.diagnostic(
      `${runner.count} inputs, ${stats.accepted} accepted (${stats.reverified} re-verified), slowest ${runner.slowestMs.toFixed(1)} ms; codes: ${formatKinds(stats)}`,
    );
    assert.ok(
      stats.kinds.size >= 5,
      `only ${stats.kinds.size} codes reached: the mutations stay too shallow`,
    );
    assert.ok(stats.kinds.has('ERR_CSR_SIGNATURE'), 'no mutation got as far as the signature check');
  });
});
