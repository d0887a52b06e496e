// `--workers N`: the primary validates the credential once and hands it to the workers (issue 12, point 4).
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import {
  createHandedCredentialSource,
  receiveCredentialFromPrimary,
} from '../../issuer/credential-handoff.js';
import { createDirectoryCredentialSource, type CredentialMaterial } from '../../issuer/credentials.js';
import { FakeClock } from '../support/clock.js';
import { writeIssuerDir } from '../support/issuer.js';
import { tempDir } from '../support/temp-dir.js';
import { testPki, type TestPki } from '../support/pki.js';

const silent = pino({ level: 'silent' });

function materialOf(pki: TestPki, cluster: string, clock: FakeClock): CredentialMaterial {
  const i = pki.issuers[cluster];
  assert.ok(i !== undefined);
  return {
    certificatePem: i.certPem,
    keyPem: i.keyPem,
    anchorsPem: pki.anchorsPem,
    validatedAt: clock.now().toISOString(),
    loadedAt: clock.now().toISOString(),
    anchorsSequence: 7,
  };
}

describe('credential hand-off to cluster workers', () => {
  it('the primary’s directory source reports the material of each credential that validated, and only those', async (t) => {
    const clock = new FakeClock();
    const pki = await testPki({ now: clock.now(), clusters: ['east', 'next'] });
    const { dir, cleanup } = tempDir('lanyard-handoff-');
    t.after(cleanup);
    writeIssuerDir(dir, pki, 'east');
    const handed: CredentialMaterial[] = [];
    const source = await createDirectoryCredentialSource({
      dir,
      clock,
      scheduler: clock,
      logger: silent,
      pollIntervalMs: 1000,
      onMaterial: (m) => handed.push(m),
    });
    t.after(() => source.close());
    assert.equal(handed.length, 1);
    assert.equal(handed[0]?.certificatePem, pki.issuers.east?.certPem);
    assert.equal(handed[0]?.validatedAt, clock.now().toISOString());
    assert.equal(handed[0]?.anchorsSequence, source.anchorsSequence?.());
    writeIssuerDir(dir, pki, 'next');
    assert.equal((await source.reload()).result, 'loaded');
    assert.equal(handed.length, 2);
    assert.equal(handed[1]?.certificatePem, pki.issuers.next?.certPem);
  });

  it('a worker builds the credential it is handed, and keeps the previous one when handed one that does not validate', async () => {
    const clock = new FakeClock();
    const pki = await testPki({ now: clock.now(), clusters: ['east', 'next'] });
    const source = createHandedCredentialSource({ logger: silent });
    assert.equal(source.current(), undefined);
    const changes: string[] = [];
    source.onChange((c) => changes.push(c.certificate.serialHex));
    source.receive(undefined);
    assert.equal(source.current(), undefined, 'the primary has none yet');
    source.receive(materialOf(pki, 'east', clock));
    assert.equal(source.current()?.certificate.serialHex, pki.issuers.east?.cert.serialHex);
    assert.equal(source.loadedAt()?.getTime(), clock.now().getTime());
    assert.equal(source.anchorsSequence?.(), 7);
    const mismatched = { ...materialOf(pki, 'next', clock), keyPem: pki.issuers.east?.keyPem as string };
    source.receive(mismatched);
    assert.equal(source.current()?.certificate.serialHex, pki.issuers.east?.cert.serialHex);
    source.receive(materialOf(pki, 'next', clock));
    assert.deepEqual(changes, [pki.issuers.east?.cert.serialHex, pki.issuers.next?.cert.serialHex]);
    assert.deepEqual(await source.reload(), { result: 'unchanged' }, 'a worker reads no file');
  });

  it('a starting worker asks the primary for the credential and takes every one sent after', async () => {
    const clock = new FakeClock();
    const pki = await testPki({ now: clock.now(), clusters: ['east', 'next'] });
    const channel = new EventEmitter();
    const sent: unknown[] = [];
    const proc = {
      on: (event: string, fn: (m: unknown) => void) => channel.on(event, fn),
      send: (m: unknown) => {
        sent.push(m);
        return true;
      },
    } as unknown as Pick<NodeJS.Process, 'on' | 'send'>;
    const pending = receiveCredentialFromPrimary({ logger: silent, process: proc });
    assert.deepEqual(sent, [{ type: 'credential-wanted' }]);
    channel.emit('message', { type: 'drain', graceMs: 1 });
    channel.emit('message', { type: 'credential', material: materialOf(pki, 'east', clock) });
    const source = await pending;
    assert.equal(source.current()?.certificate.serialHex, pki.issuers.east?.cert.serialHex);
    channel.emit('message', { type: 'credential', material: materialOf(pki, 'next', clock) });
    assert.equal(source.current()?.certificate.serialHex, pki.issuers.next?.cert.serialHex);
  });
});
