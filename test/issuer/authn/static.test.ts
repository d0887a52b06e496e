import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createStaticAuthenticator } from '../../../issuer/authn/index.js';
import { authenticatorContract, contractTokenTable } from './contract.js';

authenticatorContract('static', () => {
  // the table is fixed at construction, so every account the contract asks for is prepared up front
  const { table, validToken } = contractTokenTable();
  return Promise.resolve({
    authenticator: createStaticAuthenticator(table),
    validToken,
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
