import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCsr } from '../../ca/index.js';
import { makeCsr } from '../support/pki.js';

describe('parseCsr', () => {
  it('reads the DNS name and key type of a P-256 CSR', async () => {
    const { der } = await makeCsr({ dns: ['web.default.serviceaccount.identity.linkerd.cluster.local'] });
    const csr = parseCsr(der);
    assert.equal(csr.keyType, 'p256');
    assert.deepEqual(csr.dnsNames, ['web.default.serviceaccount.identity.linkerd.cluster.local']);
    assert.equal(csr.commonName, undefined);
  });
});
