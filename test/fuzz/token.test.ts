import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CompactSign } from 'jose';
import { DEV_TOKEN_ISSUER } from '../../bin/token/index.js';
import { runs } from './harness.js';
import { NOW, TOKEN_GROUPS, createTokenSuite } from './token-suite.js';
import { assertGroup, formatKinds, runInput } from './suite.js';
import { itAcceptsSeeds, itRunsGroups, useSuite } from './suite-tests.js';

const NOW_S = NOW.getTime() / 1000;

describe('fuzz: the JWT check rejects every bad token with ERR_TOKEN_INVALID', () => {
  const suite = useSuite(createTokenSuite);

  itAcceptsSeeds('accepts the unmutated tokens', suite);

  itRunsGroups(suite, [
    [TOKEN_GROUPS.mutations, 3000],
    [TOKEN_GROUPS.headers, 600],
    [TOKEN_GROUPS.claims, 1500],
  ]);

  it(TOKEN_GROUPS.random, async () => {
    await assertGroup(suite(), TOKEN_GROUPS.random, runs(1200));
    for (const input of suite().edgeCases) await runInput(suite(), input);
  });

  it('rejects correctly signed tokens whose exp or nbf is beyond the Date range with ERR_TOKEN_INVALID (a RangeError once)', async () => {
    const base = {
      iss: DEV_TOKEN_ISSUER,
      aud: ['identity.l5d.io'],
      sub: 'system:serviceaccount:default:web',
    };
    for (const claims of [
      { ...base, exp: NOW_S + 3600, nbf: Number.MAX_SAFE_INTEGER },
      { ...base, exp: -1e308 },
      { ...base, exp: NOW_S + 3600, nbf: 1e300 },
    ]) {
      const jws = await new CompactSign(Buffer.from(JSON.stringify(claims)))
        .setProtectedHeader({ alg: 'ES256', kid: suite().key.kid })
        .sign(suite().key.key);
      const o = await suite().runner.run('token', Buffer.from(jws, 'latin1'));
      assert.equal(o.kind, 'rejected', `${JSON.stringify(claims)}: ${o.errorClass ?? ''} ${o.message ?? ''}`);
      assert.equal(o.code, 'ERR_TOKEN_INVALID');
    }
  });

  it('reached many distinct rejections, each input within the time bound', (t) => {
    const { runner, stats } = suite();
    t.diagnostic(
      `${runner.count} inputs, ${stats.accepted} accepted (${stats.reverified} re-verified with jose), slowest ${runner.slowestMs.toFixed(1)} ms; outcomes: ${formatKinds(stats, '; ')}`,
    );
    assert.ok(
      stats.kinds.size >= 8,
      `only ${stats.kinds.size} kinds of outcome: the inputs stay too shallow`,
    );
    assert.ok(stats.accepted > 0, 'no correctly signed token was accepted');
  });
});
