import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LanyardError } from '../../ca/index.js';
import { buildIssuerConfig, type ServeFlags } from '../../issuer/config.js';
import { parseServiceAccounts } from '../../issuer/service-accounts.js';

const BASE: ServeFlags = {
  issuerDir: '/x',
  listen: '127.0.0.1:0',
  adminListen: '127.0.0.1:0',
  cluster: 'east',
  trustDomain: 'cluster.local',
  controlNamespace: 'linkerd',
  auth: 'token-review',
  tokenAudience: 'identity.l5d.io',
  leafKeyTypes: 'p256',
  maxInFlight: '64',
  logLevel: 'error',
};
const TLS = { tlsCert: '/tls.crt', tlsKey: '/tls.key' };

function usageOf(flags: Partial<ServeFlags>): string | undefined {
  try {
    buildIssuerConfig({ ...BASE, ...flags });
  } catch (err) {
    assert.ok(err instanceof LanyardError);
    return err.code;
  }
  return undefined;
}

describe('the Istio CA flags (issuer config)', () => {
  it('leave the Istio API off by default', () => {
    assert.equal(buildIssuerConfig(BASE).istio, undefined);
  });

  it('turn it on with --istio-listen and the defaults of the contract', () => {
    const config = buildIssuerConfig({ ...BASE, ...TLS, istioListen: '0.0.0.0:15012' });
    assert.deepEqual(config.istio, {
      listen: { host: '0.0.0.0', port: 15012 },
      tokenAudience: 'istio-ca',
      trustedNodeAccounts: [],
      maxTtlMs: 24 * 3600 * 1000,
    });
  });

  it('take an audience, trusted node accounts and a maximum TTL', () => {
    const config = buildIssuerConfig({
      ...BASE,
      ...TLS,
      istioListen: '127.0.0.1:0',
      istioTokenAudience: 'my-ca',
      istioTrustedNodeAccounts: 'istio-system/ztunnel, kube-system/node-agent',
      istioMaxTtl: 3600_000,
    });
    assert.equal(config.istio?.tokenAudience, 'my-ca');
    assert.deepEqual(config.istio?.trustedNodeAccounts, [
      { namespace: 'istio-system', name: 'ztunnel' },
      { namespace: 'kube-system', name: 'node-agent' },
    ]);
    assert.equal(config.istio?.maxTtlMs, 3600_000);
  });

  it('refuse --istio-listen without --tls-cert/--tls-key, and its companions without it (ERR_USAGE)', () => {
    assert.equal(usageOf({ istioListen: '0.0.0.0:15012' }), 'ERR_USAGE');
    assert.equal(usageOf({ ...TLS, istioTokenAudience: 'istio-ca' }), 'ERR_USAGE');
    assert.equal(usageOf({ ...TLS, istioMaxTtl: 3600_000 }), 'ERR_USAGE');
    assert.equal(usageOf({ ...TLS, istioListen: 'nope' }), 'ERR_USAGE');
    assert.equal(usageOf({ ...TLS, istioListen: ':1', istioMaxTtl: 10 }), 'ERR_USAGE');
    assert.equal(usageOf({ ...TLS, istioListen: ':1', istioTokenAudience: '' }), 'ERR_USAGE');
  });

  it('read NS/SA lists strictly', () => {
    assert.deepEqual(parseServiceAccounts('', '--x'), []);
    for (const bad of ['ztunnel', 'a/b/c', 'A/b', 'a/', '/b', 'a/b,,c/d'])
      assert.throws(
        () => parseServiceAccounts(bad, '--x'),
        (e: unknown) => e instanceof LanyardError && e.code === 'ERR_USAGE',
        bad,
      );
  });
});
