// The two gRPC servers of `serve --tls-cert … --istio-listen`: each port serves only its own API, and
// one admission control (one in-flight budget) covers both.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it, type TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { systemClock } from '../../ca/index.js';
import { createIssuerLogger, startIssuer, type RunningIssuer } from '../../issuer/index.js';
import { protoPath } from '../../issuer/grpc/server.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { defer } from '../support/cleanup.js';
import { createIdentityClient, grpcCodeOf, testConfig, writeIssuerDir } from '../support/issuer.js';
import { istioCsr } from '../support/istio-csr.js';
import { csrKey, makeCsr, testPki } from '../support/pki.js';
import { testDir } from '../support/temp-dir.js';
import { testCert } from '../support/tls-cert.js';
import { waitFor } from '../support/wait.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';

type CreateClient = grpc.Client & {
  CreateCertificate(
    req: Record<string, unknown>,
    md: grpc.Metadata,
    cb: (err: grpc.ServiceError | null) => void,
  ): grpc.ClientUnaryCall;
};

async function start(t: TestContext, o: { maxInFlight?: number } = {}) {
  const pki = await testPki({ now: systemClock.now() });
  const dir = testDir(t);
  writeIssuerDir(dir, pki);
  const serving = testCert('server', 'istio-admission');
  const tls = { certPath: join(dir, 'serving.crt'), keyPath: join(dir, 'serving.key') };
  writeFileSync(tls.keyPath, serving.keyPem, { mode: 0o600 });
  writeFileSync(tls.certPath, serving.certPem);
  const istio = {
    listen: { host: '127.0.0.1', port: 0 },
    tokenAudience: 'istio-ca',
    trustedNodeAccounts: [],
    maxTtlMs: 24 * 3600_000,
  };
  const limits = o.maxInFlight !== undefined ? { maxInFlight: o.maxInFlight } : {};
  const config = { ...testConfig(dir, limits), tls, istio };
  const sink = new Writable({
    write: (_c, _e, cb) => {
      cb();
    },
  });
  const linkerdAuthn = scriptedAuthenticator();
  const istioAuthn = scriptedAuthenticator();
  const issuer: RunningIssuer = await startIssuer(config, {
    logger: createIssuerLogger(config, sink),
    authenticator: linkerdAuthn,
    istioAuthenticator: istioAuthn,
  });
  defer(t, () => issuer.shutdown(500));
  assert.ok(issuer.istioAddress);
  const creds = (): grpc.ChannelCredentials => grpc.credentials.createSsl(Buffer.from(serving.certPem));
  const def = protoLoader.loadSync(protoPath('istio-ca.proto'), {
    keepCase: true,
    longs: String,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    istio: { v1: { auth: { IstioCertificateService: grpc.ServiceClientConstructor } } };
  };
  const istioClient = (port: number): CreateClient => {
    const c = new pkg.istio.v1.auth.IstioCertificateService(`localhost:${port}`, creds());
    defer(t, () => {
      c.close();
    });
    return c as unknown as CreateClient;
  };
  const linkerdClient = (port: number) => {
    const c = createIdentityClient(`localhost:${port}`, creds());
    defer(t, () => {
      c.close();
    });
    return c;
  };
  const csr = (
    await istioCsr({ key: csrKey('p256'), uris: ['spiffe://cluster.local/ns/default/sa/web'] })
  ).toString();
  const linkerdCsr = (await makeCsr({ dns: [ID] })).der;
  const createCertificate = (client: CreateClient): Promise<string> => {
    const md = new grpc.Metadata();
    md.set('authorization', 'Bearer sa:default:web');
    return new Promise((resolve) => {
      client.CreateCertificate({ csr }, md, (err) => {
        resolve(err ? (grpc.status[err.code] ?? String(err.code)) : 'OK');
      });
    });
  };
  const certify = (client: ReturnType<typeof linkerdClient>): Promise<string> =>
    grpcCodeOf(
      client.certify({
        identity: ID,
        token: Buffer.from('sa:default:web'),
        certificate_signing_request: linkerdCsr,
      }),
    );
  const ports = { linkerd: issuer.grpcAddress.port, istio: issuer.istioAddress.port };
  const onIstio = istioClient(ports.istio);
  const onLinkerd = linkerdClient(ports.linkerd);
  // the serving files are read asynchronously after start: wait for the first answers
  await waitFor(async () => (await createCertificate(onIstio)) === 'OK', 'CreateCertificate served');
  await waitFor(async () => (await certify(onLinkerd)) === 'OK', 'Certify served');
  return {
    issuer,
    ports,
    istioClient,
    linkerdClient,
    createCertificate,
    certify,
    linkerdAuthn,
    istioAuthn,
    onIstio,
    onLinkerd,
  };
}

describe('the Istio CA API on its own gRPC server', () => {
  it('each port answers only its own API: Certify on the Istio port and CreateCertificate on the Certify port are UNIMPLEMENTED', async (t) => {
    const s = await start(t);
    assert.equal(await s.certify(s.linkerdClient(s.ports.istio)), 'UNIMPLEMENTED');
    assert.equal(await s.createCertificate(s.istioClient(s.ports.linkerd)), 'UNIMPLEMENTED');
    assert.equal(await s.createCertificate(s.onIstio), 'OK');
    assert.equal(await s.certify(s.onLinkerd), 'OK');
  });

  it('shares one in-flight budget across the two APIs: a held Certify sheds CreateCertificate, and the reverse', async (t) => {
    const s = await start(t, { maxInFlight: 1 });
    const before = await requestSamples(s.issuer);
    s.linkerdAuthn.hold();
    const heldCertify = s.certify(s.onLinkerd);
    await waitFor(() => s.linkerdAuthn.waiting === 1, 'Certify in flight');
    assert.equal(await s.createCertificate(s.onIstio), 'RESOURCE_EXHAUSTED');
    s.linkerdAuthn.release();
    assert.equal(await heldCertify, 'OK');

    s.istioAuthn.hold();
    const heldCreate = s.createCertificate(s.onIstio);
    await waitFor(() => s.istioAuthn.waiting === 1, 'CreateCertificate in flight');
    const inFlight = (await s.issuer.metrics.inFlight.get()).values.find(
      (v) => v.labels.api === 'CreateCertificate',
    );
    assert.equal(inFlight?.value, 1);
    assert.equal(await s.certify(s.onLinkerd), 'RESOURCE_EXHAUSTED');
    s.istioAuthn.release();
    assert.equal(await heldCreate, 'OK');
    const after = await requestSamples(s.issuer);
    const delta = (k: string): number => (after.get(k) ?? 0) - (before.get(k) ?? 0);
    assert.equal(delta('CreateCertificate RESOURCE_EXHAUSTED'), 1);
    assert.equal(delta('Certify RESOURCE_EXHAUSTED'), 1);
    assert.equal(delta('CreateCertificate OK'), 1);
    assert.equal(delta('Certify OK'), 1);
  });
});

async function requestSamples(issuer: RunningIssuer): Promise<Map<string, number>> {
  const values = (await issuer.metrics.requests.get()).values;
  return new Map(values.map((v) => [`${String(v.labels.api)} ${String(v.labels.result)}`, v.value]));
}
