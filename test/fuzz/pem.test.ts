import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PEM_GROUPS, createPemSuite } from './pem-suite.js';
import { formatKinds } from './suite.js';
import { itAcceptsSeeds, itRunsEdgeCases, itRunsGroups, useSuite } from './suite-tests.js';

describe('fuzz: the strict PEM reader (decodePem) returns what another decoder reads, or a coded refusal', () => {
  const suite = useSuite(createPemSuite);

  itAcceptsSeeds(
    'accepts the unmutated texts (certificates, keys, a CSR; ours and OpenSSL-made; LF and CRLF)',
    suite,
  );

  itRunsGroups(suite, [
    [PEM_GROUPS.text, 3000 / 4],
    [PEM_GROUPS.lines, 3000 / 4],
    [PEM_GROUPS.blocks, 1500 / 4],
    [PEM_GROUPS.random, 1500 / 4],
  ]);

  itRunsEdgeCases(
    'edge cases: empty, an empty body, a BOM, a huge body, many blocks, an unterminated flood',
    suite,
  );

  it('accepted and refused inputs alike, each within the time bound', (t) => {
    const { runner, stats } = suite();
    t.diagnostic(
      `${runner.count} inputs, ${stats.accepted} accepted (${stats.reverified} re-read by @peculiar/x509), slowest ${runner.slowestMs.toFixed(1)} ms; outcomes: ${formatKinds(stats)}`,
    );
    assert.ok(stats.accepted > 100, `only ${stats.accepted} inputs accepted: the oracle is barely exercised`);
    assert.ok(stats.kinds.has('ERR_PEM_HEADERS') && stats.kinds.has('ERR_PEM_MALFORMED'));
  });
});
