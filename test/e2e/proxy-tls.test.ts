// `lanyard serve --tls-cert/--tls-key` as an unmodified Linkerd proxy reaches it: TLS 1.3, no ALPN,
// HTTP/2 with prior knowledge (test/support/proxy-client.ts), with one process and with two workers.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { createIdentityClient } from '../support/issuer.js';
import { lanyard, prepareIssuerFiles, serveArgs, startServe, type LongRunning } from '../support/cli.js';
import { IDENTITY_SVC_NAME, opensslServingCert } from '../support/openssl-ca.js';
import { opensslVerify } from '../support/openssl.js';
import { tempDir } from '../support/temp-dir.js';
import { tlsThenBytes } from '../support/tls.js';
import {
  buildCsr,
  proxyCertify,
  ProxyCertifyError,
  type ProxyCertificate,
  type ProxyClientOptions,
} from '../support/proxy-client.js';
import { generateKeyPairSync } from 'node:crypto';
import { decodePemOf } from '../../ca/pem.js';
import { encodePem, systemClock } from '../../ca/index.js';
import { createTestCertificate, testKey, testPki } from '../support/pki.js';
import { defer } from '../support/cleanup.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const codeIn = (s: string): string | undefined => /\((ERR_[A-Z_]+)\)\s*$/m.exec(s)?.[1];

function verifiedBothPurposes(leaf: Buffer, intermediates: readonly Buffer[], anchorsPem: string): void {
  const anchors = decodePemOf(anchorsPem, 'CERTIFICATE', 'anchors');
  for (const purpose of ['sslclient', 'sslserver'] as const) {
    const v = opensslVerify({ leaf, intermediates: [...intermediates], anchors, purpose });
    assert.ok(v.ok, `${purpose}: ${v.stderr}`);
  }
}

/** A client certificate (and key) that expired yesterday, as a proxy may still hold one. */
async function expiredClientCert(): Promise<{ certPem: string; keyPem: string }> {
  const now = systemClock.now().getTime();
  const pki = await testPki({ now: new Date(now - 3 * 86_400_000) });
  const { signer, keyPem } = await testKey('p256');
  const cert = await createTestCertificate({
    issuer: pki.anchor,
    subjectSigner: signer,
    commonName: 'expired-proxy',
    notBefore: new Date(now - 2 * 86_400_000),
    notAfter: new Date(now - 86_400_000),
    isCa: false,
  });
  return {
    certPem: encodePem('CERTIFICATE', cert.der),
    keyPem,
  };
}

for (const workers of [1, 2]) {
  describe(`lanyard serve --tls-cert/--tls-key --workers ${workers}, reached as a Linkerd proxy reaches it`, () => {
    let dir: string;
    let cleanup: () => void;
    let serve: LongRunning;
    let port: number;
    let adminUrl: string;
    let anchorsPem: string;
    /** Certify as the Linkerd proxy of pod web does (LINKERD2_PROXY_IDENTITY_* of this install) */
    const asProxy = (o: Partial<ProxyClientOptions> = {}): Promise<ProxyCertificate> =>
      proxyCertify({
        addr: `127.0.0.1:${port}`,
        serviceName: IDENTITY_SVC_NAME,
        trustAnchorsPem: anchorsPem,
        identity: ID,
        tokenFile: join(dir, 'web.token'),
        ...o,
      });

    before(async () => {
      ({ dir, cleanup } = tempDir('lanyard-proxy-tls-'));
      prepareIssuerFiles(dir, ['web']);
      anchorsPem = readFileSync(join(dir, 'anchor', 'anchor.crt'), 'utf8');
      const issuer = {
        certPem: readFileSync(join(dir, 'east', 'tls.crt'), 'utf8'),
        keyPem: readFileSync(join(dir, 'east', 'tls.key'), 'utf8'),
      };
      const serving = opensslServingCert(issuer, dir);
      serve = startServe(dir, [
        '--tls-cert',
        serving.certPath,
        '--tls-key',
        serving.keyPath,
        '--workers',
        String(workers),
      ]);
      const m = await serve.waitFor(/gRPC on [^:]+:(\d+).*admin on (http:\/\/\S+)/);
      port = Number(m[1]);
      adminUrl = m[2] as string;
    });

    after(async () => {
      await serve.stop();
      cleanup();
    });

    it('issues a leaf to a client offering no ALPN (TLS 1.3, SNI and server name checked against the anchors)', async () => {
      const got = await asProxy();
      assert.equal(got.alpn, false, 'no ALPN protocol was negotiated');
      verifiedBothPurposes(got.leafDer, got.intermediatesDer, anchorsPem);
    });

    it('issues a leaf to a client offering h2 (grpc-js)', async (t) => {
      const client = createIdentityClient(
        `127.0.0.1:${port}`,
        grpc.credentials.createSsl(Buffer.from(anchorsPem)),
        { 'grpc.ssl_target_name_override': IDENTITY_SVC_NAME, 'grpc.default_authority': IDENTITY_SVC_NAME },
      );
      defer(t, () => {
        client.close();
      });
      const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      const res = await client.certify({
        identity: ID,
        token: readFileSync(join(dir, 'web.token')),
        certificate_signing_request: buildCsr(key, ID),
      });
      verifiedBothPurposes(res.leaf_certificate, res.intermediate_certificates, anchorsPem);
    });

    it('issues a leaf to a client that holds an expired client certificate (none is asked for)', async () => {
      const expired = await expiredClientCert();
      const got = await asProxy({ clientCertificate: expired });
      verifiedBothPurposes(got.leafDer, got.intermediatesDer, anchorsPem);
    });

    it('disconnects other ALPN protocols, HTTP/1.1 and garbage, counts them, and keeps serving', async () => {
      assert.equal(await tlsThenBytes(port, { alpn: ['http/1.1'] }), 'handshake_refused');
      assert.equal(
        await tlsThenBytes(port, { send: Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n') }),
        'closed_by_server',
      );
      assert.equal(
        await tlsThenBytes(port, { alpn: ['h2'], send: Buffer.from('\x00\x01garbage') }),
        'closed_by_server',
      );
      const got = await asProxy();
      assert.ok(got.leafDer.length > 0);
      const metrics = await (await fetch(`${adminUrl}/metrics`)).text();
      const count = (outcome: string): number =>
        Number(
          new RegExp(
            `^lanyard_tls_connections_total\\{outcome="${outcome}",listener="grpc"\\} (\\d+)`,
            'm',
          ).exec(metrics)?.[1] ?? 0,
        );
      assert.ok(count('alpn_refused') >= 1, metrics);
      assert.ok(count('not_http2') >= 2, metrics);
      assert.ok(count('no_alpn') >= 1, metrics);
      const status = (await (await fetch(`${adminUrl}/v1/status`)).json()) as {
        servingTls: { serverName: string; namesServer: boolean } | null;
      };
      assert.deepEqual(
        { serverName: status.servingTls?.serverName, namesServer: status.servingTls?.namesServer },
        { serverName: IDENTITY_SVC_NAME, namesServer: true },
      );
    });

    it('answers a bad token with UNAUTHENTICATED over the proxy transport', async () => {
      const err = await asProxy({ tokenFile: join(dir, 'anchor', 'anchor.crt') }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof ProxyCertifyError);
      assert.equal(err.grpcStatus, grpc.status.UNAUTHENTICATED);
    });
  });
}

describe('lanyard serve refuses a serving certificate proxies cannot use, before binding', () => {
  let dir: string;
  let cleanup: () => void;
  let issuer: { certPem: string; keyPem: string };
  before(() => {
    ({ dir, cleanup } = tempDir('lanyard-proxy-tls-refuse-'));
    prepareIssuerFiles(dir, []);
    issuer = {
      certPem: readFileSync(join(dir, 'east', 'tls.crt'), 'utf8'),
      keyPem: readFileSync(join(dir, 'east', 'tls.key'), 'utf8'),
    };
  });
  after(() => {
    cleanup();
  });

  const serveOnce = (certPath: string, keyPath: string, extra: string[] = []) =>
    lanyard(serveArgs(dir, ['--tls-cert', certPath, '--tls-key', keyPath, ...extra]));

  for (const workers of ['1', '2']) {
    it(`an RSA serving key: exit 1, ERR_SERVING_KEY_UNUSABLE (--workers ${workers})`, () => {
      const rsa = opensslServingCert(issuer, dir, { key: 'rsa2048' });
      const r = serveOnce(rsa.certPath, rsa.keyPath, ['--workers', workers]);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(codeIn(r.stderr), 'ERR_SERVING_KEY_UNUSABLE');
      assert.doesNotMatch(r.stdout, /gRPC on/);
    });
  }

  it('a serving certificate whose EKU lacks serverAuth: exit 1, ERR_SERVING_CERT_EKU', () => {
    const c = opensslServingCert(issuer, dir, { eku: 'clientAuth' });
    const r = serveOnce(c.certPath, c.keyPath, ['--workers', '1']);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(codeIn(r.stderr), 'ERR_SERVING_CERT_EKU');
  });
});
