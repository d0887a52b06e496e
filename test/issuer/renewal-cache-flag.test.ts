// `lanyard serve --renewal-cache-memory` (LANYARD_RENEWAL_CACHE_MEMORY), parsed as the command parses it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IssuerConfig } from '../../issuer/config.js';
import { DEFAULT_RENEWAL_CACHE_BYTES } from '../../issuer/renewal-cache.js';
import { parseServe } from '../deploy/support.js';

const BASE = ['serve', '--issuer-dir', '/issuer', '--token-issuer', 'iss', '--jwks-file', '/jwks.json'];

function serve(args: readonly string[], env: Record<string, string> = {}): IssuerConfig {
  return parseServe({
    name: 'lanyard',
    args: [...BASE, ...args],
    env: Object.entries(env).map(([name, value]) => ({ name, value })),
  }).config;
}

describe('lanyard serve --renewal-cache-memory', () => {
  it('gives each process 40 MiB by default', () => {
    assert.equal(serve([]).renewalCacheBytes, DEFAULT_RENEWAL_CACHE_BYTES);
    assert.equal(DEFAULT_RENEWAL_CACHE_BYTES, 40 * 1024 * 1024);
  });

  it('takes bytes, KiB, MiB and GiB, from the flag or LANYARD_RENEWAL_CACHE_MEMORY', () => {
    const cases: [string, number][] = [
      ['1048576', 1_048_576],
      ['512KiB', 512 * 1024],
      ['32MiB', 32 * 1024 * 1024],
      ['2GiB', 2 * 1024 ** 3],
    ];
    for (const [size, bytes] of cases) {
      assert.equal(serve(['--renewal-cache-memory', size]).renewalCacheBytes, bytes, size);
      assert.equal(serve([], { LANYARD_RENEWAL_CACHE_MEMORY: size }).renewalCacheBytes, bytes, size);
    }
  });

  it('refuses anything else with ERR_USAGE', () => {
    for (const size of [
      '',
      '0',
      '0MiB',
      '32MB',
      '32mib',
      '1.5GiB',
      '-1',
      'MiB',
      '32 MiB',
      '2048GiB',
      'lots',
    ]) {
      assert.throws(() => serve(['--renewal-cache-memory', size]), { code: 'ERR_USAGE' }, size);
    }
  });
});
