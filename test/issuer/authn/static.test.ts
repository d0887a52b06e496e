import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { ServiceAccountRef } from '../../../ca/index.js';
import { createStaticAuthenticator } from '../../../issuer/authn/index.js';
import { authenticatorContract } from './contract.js';

authenticatorContract('static', () => {
  const table: Record<string, ServiceAccountRef> = {};
  // the table is fixed at construction, so every account the contract asks for is prepared up front
  const accounts = [
    ['emojivoto', 'web'],
    ['emojivoto', 'voting'],
    ['booksapp', 'authors'],
    ['a', 'one'],
    ['a', 'two'],
    ['b', 'one'],
    ['linkerd', 'proxy'],
  ] as const;
  const byAccount = new Map<string, string>();
  for (const [namespace, name] of accounts) {
    const token = `static-${randomBytes(24).toString('base64url')}`;
    table[token] = { namespace, name };
    byAccount.set(`${namespace}/${name}`, token);
  }
  const authenticator = createStaticAuthenticator(table);
  return Promise.resolve({
    authenticator,
    validToken: (a: ServiceAccountRef) => {
      const t = byAccount.get(`${a.namespace}/${a.name}`);
      if (t === undefined) throw new Error(`no static token prepared for ${a.namespace}/${a.name}`);
      return Promise.resolve(t);
    },
    cleanup: () => Promise.resolve(),
  });
});

describe('createStaticAuthenticator', () => {
  it('refuses accounts whose names are not DNS-1123 labels', () => {
    assert.throws(() => createStaticAuthenticator({ t: { namespace: 'Bad_NS', name: 'web' } }), {
      code: 'ERR_USAGE',
    });
    assert.throws(() => createStaticAuthenticator({ t: { namespace: 'ns', name: '' } }), {
      code: 'ERR_USAGE',
    });
  });

  it('refuses an empty token string', () => {
    assert.throws(() => createStaticAuthenticator({ '': { namespace: 'ns', name: 'sa' } }), {
      code: 'ERR_USAGE',
    });
  });

  it('does not answer for names inherited from Object.prototype', async () => {
    const auth = createStaticAuthenticator({ t: { namespace: 'ns', name: 'sa' } });
    await assert.rejects(
      auth.authenticate(Buffer.from('constructor'), { signal: new AbortController().signal }),
      {
        code: 'ERR_TOKEN_INVALID',
      },
    );
  });
});
