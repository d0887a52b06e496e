import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runs } from './harness.js';
import { PEM_GROUPS, createPemSuite } from './pem-suite.js';
import { assertGroup, formatKinds, runInput, type FuzzSuite } from './suite.js';

describe('fuzz: the strict PEM reader (decodePem) returns what another decoder reads, or a coded refusal', () => {
  let suite: FuzzSuite;

  before(async () => {
    suite = await createPemSuite();
  });

  after(async () => {
    await suite.close();
  });

  it('accepts the unmutated texts (certificates, keys, a CSR; ours and OpenSSL-made; LF and CRLF)', async () => {
    for (const s of suite.seeds) {
      const o = await runInput(suite, s.input);
      assert.equal(o.kind, 'accepted', `${s.name}: ${o.code ?? ''} ${o.message ?? ''}`);
    }
  });

  for (const [name, weight] of [
    [PEM_GROUPS.text, 3000],
    [PEM_GROUPS.lines, 3000],
    [PEM_GROUPS.blocks, 1500],
    [PEM_GROUPS.random, 1500],
  ] as const)
    it(name, async () => {
      await assertGroup(suite, name, runs(weight / 4));
    });

  it('edge cases: empty, an empty body, a BOM, a huge body, many blocks, an unterminated flood', async () => {
    for (const input of suite.edgeCases) await runInput(suite, input);
  });

  it('accepted and refused inputs alike, each within the time bound', (t) => {
    const { runner, stats } = suite;
    t.diagnostic(
      `${runner.count} inputs, ${stats.accepted} accepted (${stats.reverified} re-read by @peculiar/x509), slowest ${runner.slowestMs.toFixed(1)} ms; outcomes: ${formatKinds(stats)}`,
    );
    assert.ok(stats.accepted > 100, `only ${stats.accepted} inputs accepted: the oracle is barely exercised`);
    assert.ok(stats.kinds.has('ERR_PEM_HEADERS') && stats.kinds.has('ERR_PEM_MALFORMED'));
  });
});
