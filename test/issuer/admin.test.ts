import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { systemClock } from '../../ca/index.js';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { fingerprint, parseCertificatesPem } from '../../ca/index.js';
import { HEALTH_SERVICE } from '../../issuer/health.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { startTestIssuer, type TestIssuer } from '../support/issuer.js';
import { makeCsr, testPki, type TestPki } from '../support/pki.js';
import { defer } from '../support/cleanup.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';

function healthCheck(target: string, service: string): Promise<string> {
  const def = protoLoader.loadSync(healthProtoPath, { keepCase: true, enums: String });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  const client = new pkg.grpc.health.v1.Health(
    target,
    grpc.credentials.createInsecure(),
  ) as unknown as grpc.Client & {
    Check(
      req: { service: string },
      cb: (err: grpc.ServiceError | null, res?: { status: string }) => void,
    ): void;
  };
  return new Promise((resolve, reject) => {
    client.Check({ service }, (err, res) => {
      client.close();
      if (err !== null || res === undefined) reject(err ?? new Error('no response'));
      else resolve(res.status);
    });
  });
}

describe('admin HTTP and gRPC health', () => {
  let pki: TestPki;
  let t: TestIssuer;
  before(async () => {
    pki = await testPki({ now: systemClock.now() });
    t = await startTestIssuer({ pki, authenticator: scriptedAuthenticator() });
    const csr = (await makeCsr({ dns: [ID] })).der;
    await t.certify({ identity: ID, token: Buffer.from('sa:default:web'), certificate_signing_request: csr });
  });
  after(async () => {
    await t.close();
  });

  it('answers /live and /ready with 200 once a credential is loaded', async () => {
    assert.equal((await fetch(`${t.adminUrl}/live`)).status, 200);
    assert.equal((await fetch(`${t.adminUrl}/ready`)).status, 200);
  });

  it('serves the trust anchors at /v1/bundle', async () => {
    const res = await fetch(`${t.adminUrl}/v1/bundle`);
    assert.equal(res.status, 200);
    const certs = parseCertificatesPem(await res.text(), 'bundle');
    assert.deepEqual(
      certs.map((c) => c.serialHex),
      [pki.anchor.cert.serialHex],
    );
  });

  it('reports the issuer, anchors and issuance per anchor at /v1/status', async () => {
    const s = (await (await fetch(`${t.adminUrl}/v1/status`)).json()) as Record<string, unknown> & {
      issuer: { serial: string; anchorFingerprint: string; anchorsReached: string[]; subject: string };
      anchors: { fingerprint: string; subject: string }[];
      issuedByAnchor: { anchorFingerprint: string; issued: number; latestNotAfter: string }[];
      certificatesIssued: number;
    };
    assert.equal(s.cluster, 'east');
    assert.equal(s.trustDomain, 'cluster.local');
    assert.equal(s.ready, true);
    assert.equal(s.issuer.serial, pki.issuers.east?.cert.serialHex);
    const fp = fingerprint(pki.anchor.cert.der);
    assert.equal(s.issuer.anchorFingerprint, fp);
    assert.deepEqual(s.issuer.anchorsReached, [fp]);
    assert.deepEqual(
      s.anchors.map((a) => a.fingerprint),
      [fp],
    );
    assert.equal(s.certificatesIssued, 1);
    // the full subject DN, as node:crypto's independent parser reads it
    const dn = (der: Buffer): string => new X509Certificate(der).subject.split('\n').join(', ');
    assert.equal(s.issuer.subject, 'CN=identity.linkerd.cluster.local, OU=east');
    assert.equal(s.issuer.subject, dn(pki.issuers.east?.cert.der as Buffer));
    assert.deepEqual(
      s.anchors.map((a) => a.subject),
      [dn(pki.anchor.cert.der)],
    );
    assert.equal(s.issuedByAnchor[0]?.anchorFingerprint, fp);
    assert.ok(Date.parse(s.issuedByAnchor[0]?.latestNotAfter ?? '') > 0);
  });

  it('exposes the Prometheus metrics', async () => {
    const text = await (await fetch(`${t.adminUrl}/metrics`)).text();
    for (const name of [
      'lanyard_requests_total{api="Certify",result="OK"} 1',
      'lanyard_request_duration_seconds_bucket',
      'lanyard_requests_in_flight',
      'lanyard_issuer_expiry_timestamp_seconds{cluster="east"}',
      'lanyard_anchor_expiry_timestamp_seconds{fingerprint=',
      'lanyard_credential_reloads_total{result="ok"} 1',
      'lanyard_credential_last_reload_timestamp_seconds{result="ok"} ',
      'lanyard_ready 1',
      'lanyard_renewal_cache_lookups_total{cache="csr",result="miss"} 1',
      'lanyard_renewal_cache_lookups_total{cache="csr",result="hit"} 0',
      'lanyard_renewal_cache_lookups_total{cache="token",result="hit"} 0',
      'lanyard_renewal_cache_entries{cache="csr"} 1',
      'lanyard_renewal_cache_entries{cache="token"} 0',
      'lanyard_renewal_cache_bytes{cache="csr"} ',
      'lanyard_renewal_cache_evictions_total{cache="csr"} 0',
    ]) {
      assert.ok(text.includes(name), `missing ${name}`);
    }
  });

  it('reports SERVING on the standard gRPC health service', async () => {
    assert.equal(await healthCheck(t.target, ''), 'SERVING');
    assert.equal(await healthCheck(t.target, HEALTH_SERVICE), 'SERVING');
  });
});

describe('gRPC health without a credential', () => {
  it('reports NOT_SERVING', async (ctx) => {
    const t = await startTestIssuer({ authenticator: scriptedAuthenticator(), emptyDir: true });
    defer(ctx, () => t.close());
    assert.equal(await healthCheck(t.target, ''), 'NOT_SERVING');
  });
});
