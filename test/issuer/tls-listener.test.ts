// The TLS listener in process: refusals counted and logged at most once per peer per minute (fake
// clock), the preface timeout, a renewed serving pair that fails the checks, and /v1/status when the
// serving certificate does not name the service.
import assert from 'node:assert/strict';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { systemClock } from '../../ca/index.js';
import { createIssuerLogger } from '../../issuer/logger.js';
import { startIssuer, type RunningIssuer } from '../../issuer/main.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { FakeClock } from '../support/clock.js';
import { testConfig, writeIssuerDir } from '../support/issuer.js';
import { IDENTITY_SVC_NAME, opensslServingCert } from '../support/openssl-ca.js';
import { tempDir } from '../support/temp-dir.js';
import { testPki } from '../support/pki.js';
import { waitFor } from '../support/wait.js';
import { tlsThenBytes } from '../support/tls.js';
import { connect as connectTls } from 'node:tls';
import { defer } from '../support/cleanup.js';

interface Started {
  issuer: RunningIssuer;
  clock: FakeClock;
  lines: Record<string, unknown>[];
  dir: string;
  tls: { certPath: string; keyPath: string };
  close(): Promise<void>;
}

async function start(
  options: { serverName?: string; servingName?: string; prefaceTimeoutMs?: number; servingKey?: 'p521' } = {},
): Promise<Started> {
  const pki = await testPki({ now: systemClock.now() });
  const { dir, cleanup } = tempDir('lanyard-tls-listener-');
  writeIssuerDir(dir, pki);
  const east = pki.issuers.east as { certPem: string; keyPem: string };
  const serving = opensslServingCert(east, dir, {
    ...(options.servingName !== undefined ? { name: options.servingName } : {}),
    ...(options.servingKey !== undefined ? { key: options.servingKey } : {}),
  });
  const tls = {
    certPath: serving.certPath,
    keyPath: serving.keyPath,
    ...(options.serverName !== undefined ? { serverName: options.serverName } : {}),
  };
  const config = { ...testConfig(dir, { pollIntervalMs: 200 }), tls };
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n'))
        if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  // the fake clock drives the log rate limit; validity checks still pass (it starts at the real now)
  const clock = new FakeClock(systemClock.now());
  const issuer = await startIssuer(config, {
    logger: createIssuerLogger(config, sink),
    clock,
    authenticator: scriptedAuthenticator(),
    ...(options.prefaceTimeoutMs !== undefined ? { tlsPrefaceTimeoutMs: options.prefaceTimeoutMs } : {}),
  });
  return {
    issuer,
    clock,
    lines,
    dir,
    tls,
    async close() {
      await issuer.shutdown(500);
      cleanup();
    },
  };
}

const refusals = (s: Started): Record<string, unknown>[] => s.lines.filter((l) => l.event === 'tls_refused');

describe('the TLS listener', () => {
  it('logs refused connections at most once per peer per minute, and counts every one', async (t) => {
    const s = await start();
    defer(t, () => s.close());
    const port = s.issuer.grpcAddress.port;
    for (let i = 0; i < 5; i++) await tlsThenBytes(port, { send: Buffer.from('GET / HTTP/1.1\r\n\r\n') });
    assert.equal(refusals(s).length, 1);
    assert.equal(refusals(s)[0]?.outcome, 'not_http2');
    s.clock.advance(61_000);
    await tlsThenBytes(port, { send: Buffer.from('garbage-garbage-garbage!') });
    assert.equal(refusals(s).length, 2);
    const text = await s.issuer.metrics.requestRegistry.getSingleMetricAsString(
      'lanyard_tls_connections_total',
    );
    assert.match(text, /outcome="not_http2",listener="grpc"\} 6$/m);
  });

  it('ends a connection that sends no HTTP/2 preface within the limit', async (t) => {
    const s = await start({ prefaceTimeoutMs: 300 });
    defer(t, () => s.close());
    // this connection sends nothing at all after the handshake: the server ends it
    await tlsThenBytes(s.issuer.grpcAddress.port, {});
    const text = await s.issuer.metrics.requestRegistry.getSingleMetricAsString(
      'lanyard_tls_connections_total',
    );
    assert.match(text, /outcome="preface_timeout",listener="grpc"\} 1$/m);
  });

  it('ends a connection whose preface trickles in slower than the limit, byte by byte', async (t) => {
    const s = await start({ prefaceTimeoutMs: 300 });
    defer(t, () => s.close());
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
    await new Promise<void>((resolve) => {
      const sock = connectTls({
        host: '127.0.0.1',
        port: s.issuer.grpcAddress.port,
        servername: IDENTITY_SVC_NAME,
        rejectUnauthorized: false,
      });
      let i = 0;
      const drip = setInterval(() => {
        if (i < preface.length && !sock.destroyed) sock.write(preface.subarray(i, ++i));
      }, 50);
      sock.on('error', () => undefined);
      sock.on('close', () => {
        clearInterval(drip);
        resolve();
      });
    });
    const text = await s.issuer.metrics.requestRegistry.getSingleMetricAsString(
      'lanyard_tls_connections_total',
    );
    assert.match(text, /outcome="preface_timeout",listener="grpc"\} 1$/m);
  });

  it('keeps serving the previous pair when a renewed one is refused, and says why in the log', async (t) => {
    const s = await start();
    defer(t, () => s.close());
    const servedSerial = s.issuer.status.status().servingTls?.serial;
    const east = {
      certPem: readFileSync(join(s.dir, 'tls.crt'), 'utf8'),
      keyPem: readFileSync(join(s.dir, 'tls.key'), 'utf8'),
    };
    const rsa = opensslServingCert(east, s.dir, { key: 'rsa2048', id: 'renewed-rsa' });
    writeFileSync(`${s.tls.keyPath}.new`, rsa.keyPem);
    writeFileSync(`${s.tls.certPath}.new`, rsa.certPem);
    renameSync(`${s.tls.keyPath}.new`, s.tls.keyPath);
    renameSync(`${s.tls.certPath}.new`, s.tls.certPath);
    await waitFor(() => s.lines.some((l) => l.event === 'serving_tls_refused'), 'the refusal', 10_000);
    const refused = s.lines.find((l) => l.event === 'serving_tls_refused');
    assert.equal(refused?.code, 'ERR_SERVING_KEY_UNUSABLE');
    assert.equal(s.issuer.status.status().servingTls?.serial, servedSerial, 'the first pair still serves');
    const served = await new Promise<string>((resolve, reject) => {
      const sock = connectTls(
        {
          host: '127.0.0.1',
          port: s.issuer.grpcAddress.port,
          servername: IDENTITY_SVC_NAME,
          rejectUnauthorized: false,
        },
        () => {
          resolve(sock.getPeerCertificate().serialNumber.toLowerCase());
          sock.destroy();
        },
      );
      sock.on('error', reject);
    });
    assert.equal(served.replace(/^0+/, ''), servedSerial?.replace(/^0+/, ''), 'and new connections get it');
  });

  it('warns at start and shows in /v1/status when the serving certificate does not name the service', async (t) => {
    const s = await start({ servingName: 'lanyard.example.org' });
    defer(t, () => s.close());
    const warn = s.lines.find((l) => l.event === 'serving_tls_name');
    assert.equal(warn?.serverName, IDENTITY_SVC_NAME);
    const res = await fetch(`http://127.0.0.1:${s.issuer.adminAddress.port}/v1/status`);
    const body = (await res.json()) as { servingTls: { serverName: string; namesServer: boolean } };
    assert.deepEqual(
      { serverName: body.servingTls.serverName, namesServer: body.servingTls.namesServer },
      { serverName: IDENTITY_SVC_NAME, namesServer: false },
    );
  });

  it('takes --tls-server-name as the name to check', async (t) => {
    const s = await start({ servingName: 'lanyard.example.org', serverName: 'lanyard.example.org' });
    defer(t, () => s.close());
    assert.equal(
      s.lines.find((l) => l.event === 'serving_tls_name'),
      undefined,
    );
    assert.equal(s.issuer.status.status().servingTls?.namesServer, true);
  });

  it('warns at start when the serving key is P-521 (proxies before Linkerd 2.19 refuse it)', async (t) => {
    const s = await start({ servingKey: 'p521' });
    defer(t, () => s.close());
    assert.equal(s.lines.find((l) => l.event === 'serving_tls_curve')?.curve, 'P-521');
  });
});
