import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { systemClock } from '../../ca/index.js';
import { createIssuerLogger, createStaticCredentialSource, startIssuer } from '../../issuer/index.js';
import type { IstioConfig } from '../../issuer/config.js';
import { createIssuanceLedger } from '../../issuer/ledger.js';
import { createIssuerStatusReporter } from '../../issuer/status.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { defer } from '../support/cleanup.js';
import { FakeClock } from '../support/clock.js';
import { createIdentityClient, testConfig, writeIssuerDir } from '../support/issuer.js';
import { istioCreateCertificate, opensslVerifyIstioChain } from '../support/istio/index.js';
import { makeCsr, testPki } from '../support/pki.js';
import { testDir } from '../support/temp-dir.js';
import { testCert } from '../support/tls-cert.js';
import { waitFor } from '../support/wait.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const ISTIO: IstioConfig = {
  listen: { host: '::1', port: 15012 },
  tokenAudience: 'istio-ca',
  trustedNodeAccounts: [
    { namespace: 'istio-system', name: 'ztunnel' },
    { namespace: 'kube-system', name: 'node-proxy' },
  ],
  maxTtlMs: 12 * 3600_000,
};

describe('/v1/status: which APIs are served, and leaves by api', () => {
  const clock = new FakeClock('2026-06-01T00:00:00Z');
  const reporter = (
    config: ReturnType<typeof testConfig>,
    ledger = createIssuanceLedger(),
    bound?: () => { grpc?: number; istio?: number },
  ) =>
    createIssuerStatusReporter(config, {
      clock,
      credentials: createStaticCredentialSource(undefined),
      ledger,
      servingTls: undefined,
      ...(bound !== undefined ? { bound } : {}),
    });

  it('shows Certify alone, with its listener and token audience, without --istio-listen', (t) => {
    const config = testConfig(testDir(t, 'lanyard-status-apis-'));
    assert.deepEqual(reporter(config).status().apis, {
      Certify: { listen: '127.0.0.1:0', tokenAudience: 'identity.l5d.io' },
      CreateCertificate: null,
    });
  });

  it('shows the Istio API settings, and the ports actually bound once known', (t) => {
    const config = { ...testConfig(testDir(t, 'lanyard-status-apis-')), istio: ISTIO };
    let bound: { grpc?: number; istio?: number } = {};
    const r = reporter(config, createIssuanceLedger(), () => bound);
    assert.equal(r.status().apis.CreateCertificate?.listen, '[::1]:15012', 'the configured one until bound');
    bound = { grpc: 4143, istio: 15013 };
    assert.deepEqual(r.status().apis, {
      Certify: { listen: '127.0.0.1:4143', tokenAudience: 'identity.l5d.io' },
      CreateCertificate: {
        listen: '[::1]:15013',
        tokenAudience: 'istio-ca',
        trustedNodeAccounts: ['istio-system/ztunnel', 'kube-system/node-proxy'],
        maxTtlMs: 12 * 3600_000,
      },
    });
  });

  it('splits certificatesIssued by api', async (t) => {
    const pki = await testPki({ now: clock.now() });
    const ledger = createIssuanceLedger();
    const notAfter = new Date(clock.now().getTime() + 3600_000);
    ledger.record(pki.anchor.cert, notAfter);
    ledger.record(pki.anchor.cert, notAfter, 'Certify');
    ledger.record(pki.anchor.cert, notAfter, 'CreateCertificate');
    const s = reporter(testConfig(testDir(t, 'lanyard-status-apis-')), ledger).status();
    assert.equal(s.certificatesIssued, 3);
    assert.deepEqual(s.issuedByApi, { Certify: 2, CreateCertificate: 1 });
    assert.equal(s.issuedByAnchor[0]?.issued, 3);
  });

  it('in a serving process: the Istio port bound, and each API’s leaves counted as its own', async (t) => {
    const pki = await testPki({ now: systemClock.now() });
    const dir = testDir(t, 'lanyard-status-apis-');
    writeIssuerDir(dir, pki);
    const serving = testCert('server');
    const tls = { certPath: join(dir, 'serving.crt'), keyPath: join(dir, 'serving.key') };
    writeFileSync(tls.keyPath, serving.keyPem, { mode: 0o600 });
    writeFileSync(tls.certPath, serving.certPem);
    const istio = { ...ISTIO, listen: { host: '127.0.0.1', port: 0 } };
    const config = { ...testConfig(dir), tls, istio };
    const sink = new Writable({
      write: (_c, _e, cb) => {
        cb();
      },
    });
    const issuer = await startIssuer(config, {
      logger: createIssuerLogger(config, sink),
      authenticator: scriptedAuthenticator(),
      istioAuthenticator: scriptedAuthenticator(),
      // the node check's API server: never called here (no ImpersonatedIdentity is asked for)
      istioKubeConnection: { server: 'https://127.0.0.1:9' },
    });
    defer(t, () => issuer.shutdown(100));
    const istioPort = issuer.istioAddress?.port;
    assert.ok(istioPort !== undefined && istioPort !== 0);
    const spiffeId = 'spiffe://cluster.local/ns/default/sa/web';
    const ask = () =>
      istioCreateCertificate({
        addr: `127.0.0.1:${istioPort}`,
        serverName: 'localhost',
        rootPem: serving.certPem,
        style: 'istio-agent',
        spiffeId,
        token: 'sa:default:web',
        validitySeconds: 3600,
      });
    // the serving files are read asynchronously after start: the first moments may refuse
    let answer: Awaited<ReturnType<typeof ask>> | undefined;
    let last: unknown;
    await waitFor(
      async () =>
        (answer = await ask().catch((e: unknown) => {
          last = e;
          return undefined;
        })) !== undefined,
      () => `a CreateCertificate answer (last: ${String(last)})`,
      { timeoutMs: 5000, intervalMs: 50 },
    );
    assert.deepEqual(opensslVerifyIstioChain(answer?.chain ?? []), []);
    assert.deepEqual(answer?.uris, [spiffeId]);
    const client = createIdentityClient(
      `127.0.0.1:${issuer.grpcAddress.port}`,
      grpc.credentials.createSsl(Buffer.from(serving.certPem)),
      { 'grpc.ssl_target_name_override': 'localhost' },
    );
    defer(t, () => {
      client.close();
    });
    const csr = (await makeCsr({ dns: [ID] })).der;
    await client.certify({
      identity: ID,
      token: Buffer.from('sa:default:web'),
      certificate_signing_request: csr,
    });

    const s = (await (
      await fetch(`http://127.0.0.1:${issuer.adminAddress.port}/v1/status`)
    ).json()) as ReturnType<typeof issuer.status.status>;
    assert.equal(s.apis.CreateCertificate?.listen, `127.0.0.1:${istioPort}`);
    assert.equal(s.apis.Certify.listen, `127.0.0.1:${issuer.grpcAddress.port}`);
    assert.deepEqual(s.issuedByApi, { Certify: 1, CreateCertificate: 1 });
    assert.equal(s.certificatesIssued, 2);
  });
});
