import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { lengthFields, runs } from './harness.js';
import { CSR_GROUPS, createCsrSuite } from './csr-suite.js';
import { assertGroup, formatKinds, runInput, type FuzzSuite } from './suite.js';

describe('fuzz: the CSR reader (parseCsr) rejects every malformed input with a coded InvalidRequestError', () => {
  let suite: FuzzSuite;

  before(async () => {
    // openssl req -verify checks the first dozen accepted CSRs (npm run fuzz: every distinct one)
    suite = await createCsrSuite({ opensslChecks: 12 });
  });

  after(async () => {
    await suite.close();
  });

  it('accepts the unmutated seeds (P-256, P-384, RSA; three encoders)', async () => {
    for (const s of suite.seeds) {
      const o = await runInput(suite, s.input);
      assert.equal(o.kind, 'accepted', `${s.name}: ${o.code ?? ''} ${o.message ?? ''}`);
      const fields = lengthFields(s.input).length;
      assert.ok(fields > 10, `${s.name}: the DER walker found only ${fields} length fields`);
    }
  });

  it(CSR_GROUPS.mutations, async () => {
    await assertGroup(suite, CSR_GROUPS.mutations, runs(6000));
  });

  it(CSR_GROUPS.random, async () => {
    await assertGroup(suite, CSR_GROUPS.random, runs(2500));
  });

  it(CSR_GROUPS.pem, async () => {
    await assertGroup(suite, CSR_GROUPS.pem, runs(400));
  });

  it('edge cases: empty, oversized, deeply nested, indefinite lengths, a valid PEM', async () => {
    for (const input of suite.edgeCases) await runInput(suite, input);
  });

  it('reached many distinct rejection codes, each input within the time bound', (t) => {
    const { runner, stats } = suite;
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
