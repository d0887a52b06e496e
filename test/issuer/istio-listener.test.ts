// The Istio CA API's TLS listener (--istio-listen) in process, on a FakeClock that also runs the
// serving files' re-reads: a renewed serving pair reaches it, and hostile connections are refused and
// counted as on the Certify listener, without harming the server.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it, type TestContext } from 'node:test';
import { connect as connectTls } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { systemClock } from '../../ca/index.js';
import { protoPath } from '../../issuer/grpc/server.js';
import { createIssuerLogger, startIssuer, type RunningIssuer } from '../../issuer/index.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { defer } from '../support/cleanup.js';
import { FakeClock } from '../support/clock.js';
import { testConfig, writeIssuerDir } from '../support/issuer.js';
import { istioCsr } from '../support/istio-csr.js';
import { csrKey, testPki } from '../support/pki.js';
import { testDir } from '../support/temp-dir.js';
import { tlsThenBytes } from '../support/tls.js';
import { testCert, type TestCert } from '../support/tls-cert.js';
import { waitFor } from '../support/wait.js';

const POLL_MS = 1000;

async function start(t: TestContext, o: { prefaceTimeoutMs?: number } = {}) {
  const pki = await testPki({ now: systemClock.now() });
  const dir = testDir(t);
  writeIssuerDir(dir, pki);
  const tls = { certPath: join(dir, 'serving.crt'), keyPath: join(dir, 'serving.key') };
  const install = (c: TestCert): void => {
    writeFileSync(`${tls.keyPath}.new`, c.keyPem, { mode: 0o600 });
    writeFileSync(`${tls.certPath}.new`, c.certPem);
    renameSync(`${tls.keyPath}.new`, tls.keyPath);
    renameSync(`${tls.certPath}.new`, tls.certPath);
  };
  const serving = testCert('server', 'istio-listener-first');
  install(serving);
  const istio = {
    listen: { host: '127.0.0.1', port: 0 },
    tokenAudience: 'istio-ca',
    trustedNodeAccounts: [],
    maxTtlMs: 24 * 3600_000,
  };
  const config = { ...testConfig(dir, { pollIntervalMs: POLL_MS }), tls, istio };
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n'))
        if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const clock = new FakeClock(systemClock.now());
  const issuer: RunningIssuer = await startIssuer(config, {
    logger: createIssuerLogger(config, sink),
    clock,
    scheduler: clock,
    authenticator: scriptedAuthenticator(),
    istioAuthenticator: scriptedAuthenticator(),
    ...(o.prefaceTimeoutMs !== undefined ? { tlsPrefaceTimeoutMs: o.prefaceTimeoutMs } : {}),
  });
  defer(t, () => issuer.shutdown(500));
  assert.ok(issuer.istioAddress);
  return { issuer, clock, lines, install, istioPort: issuer.istioAddress.port, servingPem: serving.certPem };
}

/** The certificate a new TLS connection to `port` is served (its fingerprint). */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connectTls(
      { host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['h2'] },
      () => {
        resolve(sock.getPeerX509Certificate()?.fingerprint256 ?? 'none');
        sock.destroy();
      },
    );
    sock.on('error', reject);
  });
}

describe('the Istio CA API listener', () => {
  it('serves a renewed serving pair to new connections after the next poll', async (t) => {
    const s = await start(t);
    const first = await servedFingerprint(s.istioPort);
    const renewed = testCert('server', 'istio-listener-renewed');
    s.install(renewed);
    s.clock.advance(POLL_MS);
    await waitFor(() => s.lines.some((l) => l.event === 'serving_tls_reloaded'), 'the reload');
    const now = await servedFingerprint(s.istioPort);
    assert.notEqual(now, first);
    assert.equal(now, new X509Certificate(renewed.certPem).fingerprint256);
    assert.equal(await servedFingerprint(s.issuer.grpcAddress.port), now, 'the Certify listener too');
  });
});

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** an empty SETTINGS frame (RFC 9113 §6.5): length 0, type 4, flags 0, stream 0 */
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

/**
 * A TLS connection offering no ALPN that speaks HTTP/2 with prior knowledge (as a Linkerd proxy
 * does): resolves the type of the first frame the server sends back.
 */
function noAlpnHttp2(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = connectTls(
      { host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false },
      () => {
        sock.write(Buffer.concat([PREFACE, EMPTY_SETTINGS]));
      },
    );
    let seen = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      seen = Buffer.concat([seen, d]);
      if (seen.length < 9) return;
      resolve(seen[3] as number);
      sock.destroy();
    });
    sock.on('error', reject);
    sock.on('close', () => {
      reject(new Error('closed before a frame'));
    });
  });
}

/** A client whose highest TLS version is 1.1: resolves whether the handshake completed. */
function tls11Client(port: number): Promise<'handshake_refused' | 'connected'> {
  return new Promise((resolve) => {
    const sock = connectTls({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      rejectUnauthorized: false,
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    sock.on('secureConnect', () => {
      resolve('connected');
      sock.destroy();
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      resolve('handshake_refused');
    });
  });
}

async function istioCounts(issuer: RunningIssuer): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const v of (await issuer.metrics.tlsConnections.get()).values)
    if (v.labels.listener === 'istio') counts[String(v.labels.outcome)] = v.value;
  return counts;
}

async function createCertificateCode(port: number, caPem: string): Promise<string> {
  const def = protoLoader.loadSync(protoPath('istio-ca.proto'), {
    keepCase: true,
    longs: String,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    istio: { v1: { auth: { IstioCertificateService: grpc.ServiceClientConstructor } } };
  };
  const client = new pkg.istio.v1.auth.IstioCertificateService(
    `localhost:${port}`,
    grpc.credentials.createSsl(Buffer.from(caPem)),
  ) as unknown as grpc.Client & {
    CreateCertificate(
      req: Record<string, unknown>,
      md: grpc.Metadata,
      cb: (err: grpc.ServiceError | null) => void,
    ): grpc.ClientUnaryCall;
  };
  const csr = (
    await istioCsr({ key: csrKey('p256'), uris: ['spiffe://cluster.local/ns/default/sa/web'] })
  ).toString();
  const md = new grpc.Metadata();
  md.set('authorization', 'Bearer sa:default:web');
  try {
    return await new Promise((resolve) => {
      client.CreateCertificate({ csr }, md, (err) => {
        resolve(err ? (grpc.status[err.code] ?? String(err.code)) : 'OK');
      });
    });
  } finally {
    client.close();
  }
}

describe('hostile connections on the Istio CA API listener', () => {
  it('refuses a refused ALPN, TLS 1.1, HTTP/1.1 and a connection without the HTTP/2 preface; counts each under listener="istio"; keeps serving', async (t) => {
    const s = await start(t, { prefaceTimeoutMs: 300 });
    const port = s.istioPort;
    assert.equal(await tlsThenBytes(port, { alpn: ['http/1.1'] }), 'handshake_refused');
    assert.equal(await tls11Client(port), 'handshake_refused');
    assert.equal(
      await tlsThenBytes(port, { send: Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n') }),
      'closed_by_server',
    );
    // never sends the preface: ended when the preface timeout runs out
    assert.equal(await tlsThenBytes(port, { alpn: ['h2'] }), 'closed_by_server');
    assert.deepEqual(await istioCounts(s.issuer), {
      alpn_refused: 1,
      handshake_failed: 1,
      not_http2: 1,
      preface_timeout: 1,
    });
    assert.ok(
      s.lines.some((l) => l.event === 'tls_refused' && l.listener === 'istio'),
      'the refusals are logged with their listener',
    );
    assert.equal(await createCertificateCode(port, s.servingPem), 'OK', 'the server still serves');
  });

  it('serves a client offering no ALPN that speaks HTTP/2 (as on the Certify listener), counted no_alpn', async (t) => {
    const s = await start(t);
    assert.equal(await noAlpnHttp2(s.istioPort), 4, 'the server answers with its SETTINGS frame');
    assert.equal((await istioCounts(s.issuer)).no_alpn, 1);
    assert.equal(await noAlpnHttp2(s.issuer.grpcAddress.port), 4, 'as the Certify listener does');
  });
});
