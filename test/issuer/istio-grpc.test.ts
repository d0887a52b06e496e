import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import pino from 'pino';
import {
  DEFAULT_IDENTITY_DOMAIN,
  DEFAULT_LEAF_POLICY,
  parseCertificatesPem,
  workloadIdentity,
  type IssuerCredential,
} from '../../ca/index.js';
import { createStaticCredentialSource } from '../../issuer/credentials.js';
import { createIstioCaHandlers, loadIstioCaService } from '../../issuer/grpc/istio-server.js';
import { protoPath } from '../../issuer/grpc/server.js';
import { createIstioCertifier } from '../../issuer/istio-certify.js';
import { createIssuerMetrics } from '../../issuer/metrics.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { FakeClock, HOUR } from '../support/clock.js';
import { istioCsr, rsaKey } from '../support/istio-csr.js';
import { csrKey, testPki } from '../support/pki.js';

const WEB = workloadIdentity(DEFAULT_IDENTITY_DOMAIN, { namespace: 'default', name: 'web' });

interface Answer {
  code: number;
  trailerCode?: string;
  chain?: string[];
}

describe('the CreateCertificate handler (plaintext, in process)', () => {
  let server: grpc.Server;
  let client: grpc.Client & {
    CreateCertificate(
      req: Record<string, unknown>,
      md: grpc.Metadata,
      cb: (err: grpc.ServiceError | null, res?: { cert_chain: string[] }) => void,
    ): grpc.ClientUnaryCall;
  };
  let metrics: ReturnType<typeof createIssuerMetrics>;
  const lines: Record<string, unknown>[] = [];

  before(async () => {
    const clock = new FakeClock('2026-06-01T00:00:00Z');
    const pki = await testPki({ now: clock.now(), issuerLifetimeMs: 48 * HOUR, clusters: ['east'] });
    const cred: IssuerCredential | undefined = pki.issuers.east?.credential;
    assert.ok(cred);
    metrics = createIssuerMetrics({ defaultMetrics: false });
    const logger = pino(
      { level: 'info' },
      { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) },
    );
    const certify = createIstioCertifier({
      clock,
      credentials: createStaticCredentialSource(cred),
      authenticator: scriptedAuthenticator(),
      policy: DEFAULT_LEAF_POLICY,
      domain: DEFAULT_IDENTITY_DOMAIN,
      maxTtlMs: 24 * HOUR,
    });
    server = new grpc.Server();
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
    const def = protoLoader.loadSync(protoPath('istio-ca.proto'), {
      keepCase: true,
      longs: String,
      defaults: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      istio: { v1: { auth: { IstioCertificateService: grpc.ServiceClientConstructor } } };
    };
    client = new pkg.istio.v1.auth.IstioCertificateService(
      `127.0.0.1:${port}`,
      grpc.credentials.createInsecure(),
    ) as unknown as typeof client;
  });

  after(() => {
    client.close();
    server.forceShutdown();
  });

  function call(
    request: Record<string, unknown>,
    headers: Record<string, string> = { authorization: 'Bearer sa:default:web' },
  ): Promise<Answer> {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(headers)) md.set(k, v);
    return new Promise((resolve) => {
      let trailerCode: string | undefined;
      const c = client.CreateCertificate(request, md, (err, res) => {
        if (err) {
          const t = err.metadata.get('lanyard-error-code')[0];
          resolve({ code: err.code, ...(typeof t === 'string' ? { trailerCode: t } : {}) });
        } else
          resolve({
            code: grpc.status.OK,
            chain: res?.cert_chain ?? [],
            ...(trailerCode ? { trailerCode } : {}),
          });
      });
      c.on('status', (s: grpc.StatusObject) => {
        const t = s.metadata.get('lanyard-error-code')[0];
        if (typeof t === 'string') trailerCode = t;
      });
    });
  }

  it('answers an istio-agent style call (RSA-2048, O=, CertSigner "", clusterid) with leaf, issuer and roots', async () => {
    const csr = (
      await istioCsr({ key: rsaKey(2048), uris: [WEB.spiffeId], subject: [{ O: [''] }] })
    ).toString();
    const r = await call(
      { csr, validity_duration: 0, metadata: { fields: { CertSigner: { stringValue: '' } } } },
      { authorization: 'Bearer sa:default:web', clusterid: 'east' },
    );
    assert.equal(r.code, grpc.status.OK);
    assert.equal(r.chain?.length, 3);
    const leaf = parseCertificatesPem(r.chain?.[0] ?? '', 'leaf')[0];
    assert.ok(leaf?.der);
  });

  it('answers a call without metadata and with an empty clusterid', async () => {
    const csr = (await istioCsr({ key: csrKey('p256'), uris: [WEB.spiffeId] })).toString();
    const r = await call(
      { csr, validity_duration: 3600 },
      { authorization: 'Bearer sa:default:web', clusterid: '' },
    );
    assert.equal(r.code, grpc.status.OK);
  });

  const refusals: [
    string,
    Record<string, unknown>,
    Record<string, string> | undefined,
    grpc.status,
    string,
  ][] = [
    ['no authorization header', {}, {}, grpc.status.UNAUTHENTICATED, 'ERR_TOKEN_INVALID'],
    [
      'a token that is not valid',
      {},
      { authorization: 'Bearer forged' },
      grpc.status.UNAUTHENTICATED,
      'ERR_TOKEN_INVALID',
    ],
    [
      'another cluster',
      {},
      { authorization: 'Bearer sa:default:web', clusterid: 'west' },
      grpc.status.UNAUTHENTICATED,
      'ERR_CLUSTER_UNKNOWN',
    ],
    [
      'a TTL above the maximum',
      { validity_duration: 86401 },
      undefined,
      grpc.status.INVALID_ARGUMENT,
      'ERR_TTL_TOO_LONG',
    ],
    [
      'a CSR for another identity',
      { other: true },
      undefined,
      grpc.status.INVALID_ARGUMENT,
      'ERR_CSR_IDENTITY',
    ],
    [
      'impersonation (no node check wired)',
      { metadata: { fields: { ImpersonatedIdentity: { stringValue: WEB.spiffeId } } } },
      undefined,
      grpc.status.UNAUTHENTICATED,
      'ERR_IMPERSONATION_DENIED',
    ],
  ];
  for (const [what, extra, headers, code, errCode] of refusals) {
    it(`refuses ${what} with ${grpc.status[code]} (${errCode})`, async () => {
      const { other, ...fields } = extra as { other?: boolean };
      const uri = other === true ? 'spiffe://cluster.local/ns/default/sa/db' : WEB.spiffeId;
      const csr = (await istioCsr({ key: csrKey('p256'), uris: [uri] })).toString();
      const r = await call({ csr, ...fields }, headers);
      assert.equal(grpc.status[r.code], grpc.status[code]);
      assert.equal(r.trailerCode, errCode);
    });
  }

  it('logs a present but unparsable authorization header with reason malformed, an absent one with missing', async () => {
    const csr = (await istioCsr({ key: csrKey('p256'), uris: [WEB.spiffeId] })).toString();
    const cases: [Record<string, string>, string][] = [
      [{}, 'missing'],
      [{ authorization: 'Basic c2E6ZGVmYXVsdDp3ZWI=' }, 'malformed'],
      [{ authorization: 'Bearer sa:default:web extra' }, 'malformed'],
      [{ authorization: 'Bearer' }, 'malformed'],
      [{ authorization: 'sa:default:web' }, 'malformed'],
    ];
    for (const [headers, reason] of cases) {
      const before = lines.length;
      const r = await call({ csr }, headers);
      assert.equal(grpc.status[r.code], 'UNAUTHENTICATED');
      assert.equal(r.trailerCode, 'ERR_TOKEN_INVALID');
      const logged = lines.slice(before).find((l) => l.code === 'ERR_TOKEN_INVALID');
      assert.equal(logged?.reason, reason, JSON.stringify(headers));
    }
  });

  it('refuses an RSA-1024 key with INVALID_ARGUMENT (ERR_CSR_WEAK_KEY): a bad CSR, as istiod answers it', async () => {
    const csr = (await istioCsr({ key: rsaKey(1024), uris: [WEB.spiffeId] })).toString();
    const r = await call({ csr });
    assert.equal(grpc.status[r.code], 'INVALID_ARGUMENT');
    assert.equal(r.trailerCode, 'ERR_CSR_WEAK_KEY');
  });

  it('counts its calls under api="CreateCertificate" and logs them with rpc CreateCertificate', async () => {
    const m = await metrics.requests.get();
    const apis = new Set(m.values.map((v) => v.labels.api));
    assert.deepEqual([...apis], ['CreateCertificate']);
    assert.ok(m.values.some((v) => v.labels.result === 'OK' && v.value >= 2));
    assert.ok(lines.length > 0 && lines.every((l) => l.rpc === 'CreateCertificate'));
    assert.ok(lines.every((l) => !JSON.stringify(l).includes('sa:default:web')));
  });
});

describe('the CreateCertificate handler when the CA is not ready', () => {
  it('answers UNAVAILABLE (ERR_ISSUER_UNAVAILABLE) with no credential and with an expired one, counted under CreateCertificate', async (t) => {
    const clock = new FakeClock('2026-06-01T00:00:00Z');
    const pki = await testPki({ now: clock.now(), issuerLifetimeMs: 48 * HOUR, clusters: ['east'] });
    const metrics = createIssuerMetrics({ defaultMetrics: false });
    const logger = pino({ level: 'silent' });
    const ports: number[] = [];
    for (const credential of [undefined, pki.issuers.east?.credential]) {
      const certify = createIstioCertifier({
        clock,
        credentials: createStaticCredentialSource(credential),
        authenticator: scriptedAuthenticator(),
        policy: DEFAULT_LEAF_POLICY,
        domain: DEFAULT_IDENTITY_DOMAIN,
        maxTtlMs: 24 * HOUR,
      });
      const one = new grpc.Server();
      one.addService(
        loadIstioCaService(),
        createIstioCaHandlers({ certify, logger, metrics, wallClock: clock, cluster: 'east' }),
      );
      ports.push(
        await new Promise<number>((resolve, reject) => {
          one.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => {
            if (err) reject(err);
            else resolve(p);
          });
        }),
      );
      t.after(() => {
        one.forceShutdown();
      });
    }
    // the issuer of the second one expired two days ago
    clock.advance(96 * HOUR);
    const def = protoLoader.loadSync(protoPath('istio-ca.proto'), { keepCase: true, longs: String });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      istio: { v1: { auth: { IstioCertificateService: grpc.ServiceClientConstructor } } };
    };
    const csr = (await istioCsr({ key: csrKey('p256'), uris: [WEB.spiffeId] })).toString();
    for (const port of ports) {
      const client = new pkg.istio.v1.auth.IstioCertificateService(
        `127.0.0.1:${port}`,
        grpc.credentials.createInsecure(),
      );
      t.after(() => {
        client.close();
      });
      const md = new grpc.Metadata();
      md.set('authorization', 'Bearer sa:default:web');
      const err = await new Promise<grpc.ServiceError>((resolve, reject) => {
        (
          client as unknown as {
            CreateCertificate(r: object, m: grpc.Metadata, cb: (e: grpc.ServiceError | null) => void): void;
          }
        ).CreateCertificate({ csr }, md, (e) => {
          if (e) resolve(e);
          else reject(new Error('answered'));
        });
      });
      assert.equal(grpc.status[err.code], 'UNAVAILABLE');
      assert.equal(err.metadata.get('lanyard-error-code')[0], 'ERR_ISSUER_UNAVAILABLE');
    }
    const m = await metrics.requests.get();
    const unavailable = m.values.find(
      (v) => v.labels.api === 'CreateCertificate' && v.labels.result === 'UNAVAILABLE',
    );
    assert.equal(unavailable?.value, 2);
  });
});
