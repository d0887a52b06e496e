// `lanyard serve --jwks-refresh/--jwks-max-age` (LANYARD_JWKS_REFRESH/LANYARD_JWKS_MAX_AGE), parsed as the
// command parses them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IssuerConfig } from '../../issuer/config.js';
import { parseServe } from '../deploy/support.js';

const BASE = ['serve', '--issuer-dir', '/issuer', '--token-issuer', 'https://kubernetes.default.svc'];
const URL_ARGS = [...BASE, '--jwks-url', 'https://kubernetes.default.svc/openid/v1/jwks'];

function serve(args: readonly string[], env: Record<string, string> = {}): IssuerConfig {
  return parseServe({
    name: 'lanyard',
    args: [...args],
    env: Object.entries(env).map(([name, value]) => ({ name, value })),
  }).config;
}

function jwks(config: IssuerConfig): { refresh?: number; maxAge?: number } {
  assert.equal(config.auth.kind, 'jwt');
  if (config.auth.kind !== 'jwt') return {};
  return {
    ...(config.auth.jwksRefreshMs !== undefined ? { refresh: config.auth.jwksRefreshMs } : {}),
    ...(config.auth.jwksMaxAgeMs !== undefined ? { maxAge: config.auth.jwksMaxAgeMs } : {}),
  };
}

describe('lanyard serve: JWKS refresh flags', () => {
  it('refreshes a --jwks-url every 5 minutes and trusts its keys for at most 1 hour by default', () => {
    assert.deepEqual(jwks(serve(URL_ARGS)), { refresh: 300_000, maxAge: 3_600_000 });
  });

  it('takes --jwks-refresh and --jwks-max-age, or LANYARD_JWKS_REFRESH and LANYARD_JWKS_MAX_AGE', () => {
    assert.deepEqual(jwks(serve([...URL_ARGS, '--jwks-refresh', '1m', '--jwks-max-age', '20m'])), {
      refresh: 60_000,
      maxAge: 1_200_000,
    });
    assert.deepEqual(jwks(serve(URL_ARGS, { LANYARD_JWKS_REFRESH: '30s', LANYARD_JWKS_MAX_AGE: '2h' })), {
      refresh: 30_000,
      maxAge: 7_200_000,
    });
  });

  it('refuses a maximum age not longer than the refresh interval, and a refresh under 1 s', () => {
    for (const extra of [
      ['--jwks-refresh', '2h'],
      ['--jwks-refresh', '10m', '--jwks-max-age', '10m'],
      ['--jwks-refresh', '500ms'],
    ]) {
      assert.throws(() => serve([...URL_ARGS, ...extra]), { code: 'ERR_USAGE' }, extra.join(' '));
    }
  });

  it('refuses the flags without --jwks-url (a JWKS file is re-read when it changes)', () => {
    assert.throws(() => serve([...BASE, '--jwks-file', '/jwks.json', '--jwks-refresh', '1m']), {
      code: 'ERR_USAGE',
    });
    assert.throws(() => serve([...BASE, '--auth', 'token-review', '--jwks-max-age', '2h']), {
      code: 'ERR_USAGE',
    });
  });
});
