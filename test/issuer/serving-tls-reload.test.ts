// The serving pair kept current on the file watch, on a FakeClock (no sleeping): a renewed pair is
// taken at the next poll; a pair caught mid-swap is not reported until it settles; a refused pair is
// reported once and the previous one keeps serving.
import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { DEFAULT_IDENTITY_DOMAIN, parseCertificatesPem, systemClock } from '../../ca/index.js';
import {
  checkServingTls,
  openServingTls,
  servingTlsStatus,
  type ServingPair,
} from '../../issuer/serving-tls.js';
import { FakeClock } from '../support/clock.js';
import { tempDir } from '../support/temp-dir.js';
import { testCert, type TestCert } from '../support/tls-cert.js';

const POLL_MS = 1000;

async function harness(t: { after(fn: () => void): void }) {
  const { dir, cleanup } = tempDir('lanyard-serving-reload-');
  t.after(cleanup);
  const files = { certPath: join(dir, 'serving.crt'), keyPath: join(dir, 'serving.key') };
  const install = (c: { certPem: string; keyPem: string }): void => {
    writeFileSync(`${files.keyPath}.new`, c.keyPem, { mode: 0o600 });
    writeFileSync(`${files.certPath}.new`, c.certPem);
    renameSync(`${files.keyPath}.new`, files.keyPath);
    renameSync(`${files.certPath}.new`, files.certPath);
  };
  const events: { event?: string; code?: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString('utf8').split('\n'))
        if (l !== '') events.push(JSON.parse(l) as { event?: string; code?: string });
      cb();
    },
  });
  install(testCert('server', 'reload-first'));
  const clock = new FakeClock(systemClock.now());
  const pairs: ServingPair[] = [];
  let expiry = 0;
  const tls = await openServingTls({
    files,
    domain: DEFAULT_IDENTITY_DOMAIN,
    intervalMs: POLL_MS,
    clock,
    scheduler: clock,
    logger: pino({ level: 'info' }, sink),
    onPair: (p) => pairs.push(p),
    expiry: { set: (v) => (expiry = v) },
  });
  t.after(() => {
    tls.close();
  });
  /** moves time one poll on and waits for the look it starts */
  const poll = async (): Promise<void> => {
    clock.advance(POLL_MS);
    await tls.reload();
  };
  const count = (event: string): number => events.filter((e) => e.event === event).length;
  return { tls, install, poll, pairs, count, expiry: () => expiry, files };
}

describe('serving TLS reload on the fake clock', () => {
  it('takes a renewed pair at the next poll and only then', async (t) => {
    const h = await harness(t);
    const first = h.tls.status().serial;
    const second: TestCert = testCert('server', 'reload-second');
    h.install(second);
    assert.equal(h.tls.status().serial, first, 'nothing happens before the poll');
    await h.poll();
    assert.notEqual(h.tls.status().serial, first);
    assert.equal(h.pairs.length, 1);
    assert.equal(h.pairs[0]?.certPem, second.certPem);
    assert.equal(h.count('serving_tls_reloaded'), 1);
    assert.equal(h.expiry(), Math.floor(h.tls.pair().certificate.notAfter.getTime() / 1000));
    await h.poll();
    assert.equal(h.pairs.length, 1, 'an unchanged pair is not handed over again');
  });

  it('waits one poll before reporting a key that does not match, reports it once, and keeps serving the previous pair', async (t) => {
    const h = await harness(t);
    const first = h.tls.status().serial;
    // a certificate renewed without its key (a swap caught half-way, that never completes)
    writeFileSync(h.files.certPath, testCert('server', 'reload-mismatch').certPem);
    await h.poll();
    assert.equal(h.count('serving_tls_refused'), 0, 'a swap in progress is not reported');
    await h.poll();
    await h.poll();
    assert.equal(h.count('serving_tls_refused'), 1);
    assert.equal(h.tls.status().serial, first);
    assert.equal(h.pairs.length, 0);
  });

  it('a missing file is read again at the next poll, silently', async (t) => {
    const h = await harness(t);
    const first = h.tls.status().serial;
    renameSync(h.files.certPath, `${h.files.certPath}.away`);
    await h.poll();
    assert.equal(h.count('serving_tls_refused'), 0);
    assert.equal(h.tls.status().serial, first);
    renameSync(`${h.files.certPath}.away`, h.files.certPath);
    h.install(testCert('server', 'reload-after-gap'));
    await h.poll();
    assert.equal(h.pairs.length, 1);
  });
});

describe('serving TLS status: the served chain', () => {
  it('chainPem is the --tls-cert chain, serving certificate first, every certificate of the file', async (t) => {
    const { dir, cleanup } = tempDir('lanyard-serving-chain-');
    t.after(cleanup);
    const leaf = testCert('server', 'chain-leaf');
    const extra = testCert('server', 'chain-extra');
    const files = { certPath: join(dir, 'serving.crt'), keyPath: join(dir, 'serving.key') };
    writeFileSync(files.keyPath, leaf.keyPem, { mode: 0o600 });
    writeFileSync(files.certPath, leaf.certPem + extra.certPem);
    const pair = await checkServingTls(files, systemClock.now());
    const s = servingTlsStatus(pair, 'identity.linkerd.cluster.local');
    const ders = parseCertificatesPem(s.chainPem, 'chain').map((c) => c.der.toString('base64'));
    const want = parseCertificatesPem(leaf.certPem + extra.certPem, 'file').map((c) =>
      c.der.toString('base64'),
    );
    assert.equal(ders.length, 2);
    assert.deepEqual(ders, want);
  });
});
