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
import { systemClock } from '../../ca/index.js';
import { createIssuerLogger, startIssuer, type RunningIssuer } from '../../issuer/index.js';
import { scriptedAuthenticator } from '../support/authn.js';
import { defer } from '../support/cleanup.js';
import { FakeClock } from '../support/clock.js';
import { testConfig, writeIssuerDir } from '../support/issuer.js';
import { testPki } from '../support/pki.js';
import { testDir } from '../support/temp-dir.js';
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
  install(testCert('server', 'istio-listener-first'));
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
  return { issuer, clock, lines, install, istioPort: issuer.istioAddress.port };
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
