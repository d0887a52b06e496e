// The node check inside CreateCertificate (createIstioCertifier): it runs only for a caller whose token
// verified and who is a trusted node account, so nobody else can make the issuer ask the API server.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  DEFAULT_IDENTITY_DOMAIN,
  DEFAULT_LEAF_POLICY,
  LanyardError,
  workloadIdentity,
} from '../../ca/index.js';
import { createStaticCredentialSource } from '../../issuer/credentials.js';
import { createNodeImpersonationCheck, type NodeImpersonationCheck } from '../../issuer/impersonation.js';
import { createIstioCertifier, type IstioCertify } from '../../issuer/istio-certify.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { FakeClock, HOUR } from '../support/clock.js';
import { istioCsr } from '../support/istio-csr.js';
import { opensslVerifyIstioChain } from '../support/istio/index.js';
import { standInPodUid, startPodListStandIn, type PodListStandIn } from '../support/pod-list-stand-in.js';
import { csrKey, testPki } from '../support/pki.js';

const WEB = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'web' });
const ZTUNNEL_POD = {
  namespace: 'istio-system',
  name: 'ztunnel-a1',
  serviceAccountName: 'ztunnel',
  nodeName: 'node-a',
  containers: [{ name: 'istio-proxy' }],
};
const WEB_POD = {
  namespace: 'default',
  name: 'web-1',
  serviceAccountName: 'web',
  nodeName: 'node-a',
  containers: [{ name: 'app' }],
};
const ZTUNNEL_TOKEN = `sa:istio-system:ztunnel:${ZTUNNEL_POD.name}:${standInPodUid(ZTUNNEL_POD)}`;

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    assert.ok(err instanceof LanyardError, String(err));
    return err.code;
  }
}

describe('CreateCertificate with the impersonation node check', () => {
  let api: PodListStandIn;
  let node: NodeImpersonationCheck;
  let certify: IstioCertify;
  let base = 0;
  const seen = (): readonly string[] => api.requests.slice(base);
  const ask = async (token: string, id = WEB.spiffeId, csrUri = id) =>
    certify(
      {
        token: Buffer.from(token),
        csr: await istioCsr({ key: csrKey('p256'), uris: [csrUri] }),
        validitySeconds: 0,
        impersonatedIdentity: id,
      },
      { signal: new AbortController().signal },
    );

  before(async () => {
    api = await startPodListStandIn([ZTUNNEL_POD, WEB_POD]);
    const clock = new FakeClock('2026-06-01T00:00:00Z');
    const pki = await testPki({ now: clock.now(), issuerLifetimeMs: 48 * HOUR, clusters: ['east'] });
    assert.ok(pki.issuers.east);
    node = createNodeImpersonationCheck({
      connection: { server: api.url, caPem: api.caPem, token: api.callerToken },
      clock,
      scheduler: clock,
      limits: { cacheTtlMs: 0 },
    });
    certify = createIstioCertifier({
      clock,
      credentials: createStaticCredentialSource(pki.issuers.east.credential),
      authenticator: scriptedAuthenticator(),
      policy: DEFAULT_LEAF_POLICY,
      domain: DEFAULT_IDENTITY_DOMAIN,
      maxTtlMs: 24 * HOUR,
      trustedNodeAccounts: [{ namespace: 'istio-system', name: 'ztunnel' }],
      impersonation: node.check,
    });
  });
  after(async () => {
    node.close();
    await api.close();
  });
  beforeEach(() => {
    base = api.requests.length;
  });

  it('issues the target’s leaf to a trusted node account whose node runs a pod of the target', async () => {
    const r = await ask(ZTUNNEL_TOKEN);
    assert.equal(r.identity.spiffeId, WEB.spiffeId);
    assert.deepEqual(opensslVerifyIstioChain(r.certChain, { atSeconds: r.now.getTime() / 1000 }), []);
    assert.equal(seen().length, 2);
  });

  it('refuses a target with no pod on the node (after asking the API server)', async () => {
    const id = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'db' }).spiffeId;
    assert.equal(await codeOf(ask(ZTUNNEL_TOKEN, id)), 'ERR_IMPERSONATION_DENIED');
    assert.equal(seen().length, 2);
  });

  it('never asks the API server for a caller that is not a trusted node account, or not authenticated', async () => {
    const untrusted = `sa:default:web:${WEB_POD.name}:${standInPodUid(WEB_POD)}`;
    assert.equal(await codeOf(ask(untrusted)), 'ERR_IMPERSONATION_DENIED');
    assert.equal(await codeOf(ask('not-a-token')), 'ERR_TOKEN_INVALID');
    assert.equal(await codeOf(ask('')), 'ERR_TOKEN_INVALID');
    assert.equal(await codeOf(ask('down')), 'ERR_AUTHENTICATOR_UNAVAILABLE');
    // a target outside the trust domain is refused before the API server is asked too
    assert.equal(
      await codeOf(ask(ZTUNNEL_TOKEN, 'spiffe://other.domain/ns/default/sa/web')),
      'ERR_IMPERSONATION_DENIED',
    );
    assert.deepEqual(seen(), []);
  });

  it('refuses a CSR whose URI is not the ImpersonatedIdentity before asking the API server', async () => {
    const db = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'db' }).spiffeId;
    assert.equal(await codeOf(ask(ZTUNNEL_TOKEN, WEB.spiffeId, db)), 'ERR_CSR_IDENTITY');
    assert.deepEqual(seen(), []);
  });
});
