import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { encodePem, LanyardError, systemClock } from '../../../ca/index.js';
import { generateKey } from '../../../ca/keys/index.js';
import { createCertifyClient, type CertifyClient } from '../../../bin/agent/agent.js';
import { scriptedAuthenticator } from '../../support/authn.js';
import { runLanyard } from '../../support/cli-inproc.js';
import { startTestIssuer } from '../../support/issuer.js';
import { testPki } from '../../support/pki.js';
import { defer } from '../../support/cleanup.js';
import { testDir } from '../../support/temp-dir.js';
import { certifyArgs, clientOptions, writeClientFiles } from '../../support/certify-client.js';

const isRoot = process.getuid?.() === 0;

const refusedKey = (err: unknown): boolean =>
  err instanceof LanyardError && err.code === 'ERR_KEY_PERMISSIONS';

async function keyPem(): Promise<string> {
  const key = await generateKey('p256');
  return encodePem('PRIVATE KEY', key.export({ type: 'pkcs8', format: 'der' }));
}

/** A certify client for OUT that talks to nothing (the key is settled before any call). */
function clientFor(dir: string, out: string): Promise<CertifyClient> {
  writeClientFiles(dir, '');
  return createCertifyClient({
    ...clientOptions(dir, '127.0.0.1:1'),
    outDir: out,
  });
}

/** OUT made by someone else (mode 0700) holding a tls.key with `mode`. */
async function plantKey(dir: string, mode: number): Promise<{ out: string; key: string; pem: string }> {
  const out = join(dir, 'out');
  mkdirSync(out, { mode: 0o700 });
  const key = join(out, 'tls.key');
  const pem = await keyPem();
  writeFileSync(key, pem);
  chmodSync(key, mode);
  return { out, key, pem };
}

describe('certify client: OUT/ and its key', () => {
  it('creates a missing --out, and its missing parents, with mode 0700, and tls.key with 0600', async (ctx) => {
    const dir = testDir(ctx, 'lanyard-client-key-');
    const out = join(dir, 'a', 'b', 'out');
    const client = await clientFor(dir, out);
    client.close();
    for (const d of [join(dir, 'a'), join(dir, 'a', 'b'), out])
      assert.equal((statSync(d).mode & 0o777).toString(8), '700', d);
    assert.equal((statSync(join(out, 'tls.key')).mode & 0o777).toString(8), '600');
  });

  it('refuses an existing tls.key that group or others can read or write (ERR_KEY_PERMISSIONS) and leaves it as it is', async (ctx) => {
    for (const mode of [0o644, 0o640, 0o604, 0o660, 0o666, 0o602]) {
      const dir = testDir(ctx, 'lanyard-client-key-');
      const { out, key, pem } = await plantKey(dir, mode);
      await assert.rejects(clientFor(dir, out), refusedKey, mode.toString(8));
      assert.equal(readFileSync(key, 'utf8'), pem, 'the key is not replaced');
      assert.equal(statSync(key).mode & 0o777, mode, 'nor its mode changed');
    }
  });

  it(
    'refuses an existing tls.key owned by another user, even with mode 0600',
    { skip: !isRoot && 'needs root to chown' },
    async (ctx) => {
      const dir = testDir(ctx, 'lanyard-client-key-');
      const { out, key } = await plantKey(dir, 0o600);
      chownSync(key, 4242, 4242);
      await assert.rejects(clientFor(dir, out), refusedKey);
      assert.equal(statSync(key).uid, 4242, 'left as it is');
    },
  );

  it('refuses a tls.key that is a symbolic link, even to a 0600 key of its own user', async (ctx) => {
    const dir = testDir(ctx, 'lanyard-client-key-');
    const elsewhere = join(dir, 'elsewhere.key');
    writeFileSync(elsewhere, await keyPem(), { mode: 0o600 });
    const out = join(dir, 'out');
    mkdirSync(out, { mode: 0o700 });
    symlinkSync(elsewhere, join(out, 'tls.key'));
    await assert.rejects(clientFor(dir, out), refusedKey);
  });

  it('reuses its own tls.key (0600, or stricter 0400) and certifies with it', async (ctx) => {
    const pki = await testPki({ now: systemClock.now() });
    const t = await startTestIssuer({ pki, authenticator: scriptedAuthenticator() });
    defer(ctx, () => t.close());
    for (const mode of [0o600, 0o400]) {
      const dir = testDir(ctx, 'lanyard-client-key-');
      const { out, pem } = await plantKey(dir, mode);
      writeClientFiles(dir, pki.anchorsPem);
      const client = await createCertifyClient({
        ...clientOptions(dir, t.target),
        outDir: out,
      });
      try {
        await client.certifyOnce();
      } finally {
        client.close();
      }
      assert.equal(readFileSync(join(out, 'tls.key'), 'utf8'), pem, mode.toString(8));
    }
  });

  it('lanyard certify --once exits 1 with ERR_KEY_PERMISSIONS for a loose tls.key and writes nothing', async (ctx) => {
    const dir = testDir(ctx, 'lanyard-client-key-');
    const { out } = await plantKey(dir, 0o644);
    writeClientFiles(dir, '');
    const r = await runLanyard([...certifyArgs(dir, '127.0.0.1:1', out), '--once']);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /\(ERR_KEY_PERMISSIONS\)$/);
    assert.equal(existsSync(join(out, 'tls.crt')), false);
  });
});
