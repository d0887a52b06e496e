import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import pino from 'pino';
import { DEFAULT_IDENTITY_DOMAIN, DEFAULT_LEAF_POLICY, type IssuerCredential } from '../../ca/index.js';
import { createStaticCredentialSource } from '../../issuer/credentials.js';
import { createAdmissionControl } from '../../issuer/grpc/admission.js';
import { createIstioCaHandlers, loadIstioCaService } from '../../issuer/grpc/istio-server.js';
import { protoPath } from '../../issuer/grpc/server.js';
import { createIstioCertifier } from '../../issuer/istio-certify.js';
import { createIssuerMetrics } from '../../issuer/metrics.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { defer } from '../support/cleanup.js';
import { FakeClock, HOUR } from '../support/clock.js';
import { istioCsr } from '../support/istio-csr.js';
import { csrKey, testPki } from '../support/pki.js';
import { waitFor } from '../support/wait.js';

type CreateClient = grpc.Client & {
  CreateCertificate(
    req: Record<string, unknown>,
    md: grpc.Metadata,
    cb: (err: grpc.ServiceError | null) => void,
  ): grpc.ClientUnaryCall;
};

describe('admission control of CreateCertificate', () => {
  it('shares the in-flight limit and counts a shed call under api="CreateCertificate"', async (ctx) => {
    const clock = new FakeClock('2026-06-01T00:00:00Z');
    const pki = await testPki({ now: clock.now(), issuerLifetimeMs: 48 * HOUR, clusters: ['east'] });
    const cred: IssuerCredential | undefined = pki.issuers.east?.credential;
    assert.ok(cred);
    const metrics = createIssuerMetrics({ defaultMetrics: false });
    const logger = pino({ level: 'silent' });
    const authn = scriptedAuthenticator();
    const certify = createIstioCertifier({
      clock,
      credentials: createStaticCredentialSource(cred),
      authenticator: authn,
      policy: DEFAULT_LEAF_POLICY,
      domain: DEFAULT_IDENTITY_DOMAIN,
      maxTtlMs: 24 * HOUR,
    });
    const admission = createAdmissionControl({ maxInFlight: 1, maxInFlightPerPeer: 1, logger, metrics });
    defer(ctx, () => {
      admission.close();
    });
    const server = new grpc.Server({ interceptors: [admission.interceptor] });
    server.addService(
      loadIstioCaService(),
      createIstioCaHandlers({ certify, logger, metrics, wallClock: clock, cluster: 'east' }),
    );
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => {
        if (err) reject(err);
        else resolve(p);
      });
    });
    defer(ctx, () => {
      server.forceShutdown();
    });
    const def = protoLoader.loadSync(protoPath('istio-ca.proto'), {
      keepCase: true,
      longs: String,
      defaults: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      istio: { v1: { auth: { IstioCertificateService: grpc.ServiceClientConstructor } } };
    };
    const client = new pkg.istio.v1.auth.IstioCertificateService(
      `127.0.0.1:${port}`,
      grpc.credentials.createInsecure(),
    ) as unknown as CreateClient;
    defer(ctx, () => {
      client.close();
    });
    const csr = (
      await istioCsr({ key: csrKey('p256'), uris: ['spiffe://cluster.local/ns/default/sa/web'] })
    ).toString();
    const call = (): Promise<string> => {
      const md = new grpc.Metadata();
      md.set('authorization', 'Bearer sa:default:web');
      return new Promise((resolve) => {
        client.CreateCertificate({ csr }, md, (err) => {
          resolve(err ? (grpc.status[err.code] ?? String(err.code)) : 'OK');
        });
      });
    };
    authn.hold();
    const first = call();
    await waitFor(() => authn.waiting === 1, 'the first call in flight');
    const inFlight = (await metrics.inFlight.get()).values.find((v) => v.labels.api === 'CreateCertificate');
    assert.equal(inFlight?.value, 1);
    assert.equal(await call(), 'RESOURCE_EXHAUSTED');
    authn.release();
    assert.equal(await first, 'OK');
    const samples = (await metrics.requests.get()).values.map(
      (v) => `${v.labels.api} ${v.labels.result} ${v.value}`,
    );
    assert.deepEqual(samples.sort(), ['CreateCertificate OK 1', 'CreateCertificate RESOURCE_EXHAUSTED 1']);
  });
});
