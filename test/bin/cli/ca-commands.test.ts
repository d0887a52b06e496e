import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodePemOf } from '../../../ca/pem.js';
import { systemClock } from '../../../ca/index.js';
import { allCommands, buildProgram, commandPath } from '../../../bin/cli/program.js';
import { lanyard } from '../../support/cli.js';
import { runLanyard } from '../../support/cli-inproc.js';
import { FakeClock, HOUR } from '../../support/clock.js';
import { opensslCsr, opensslVerify } from '../../support/openssl.js';
import { tempDir } from '../../support/temp-dir.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const codeIn = (s: string): string | undefined => /\((ERR_[A-Z_]+)\)\s*$/m.exec(s)?.[1];

describe('lanyard CLI', () => {
  let dir: string;
  let cleanup: () => void;
  before(() => {
    ({ dir, cleanup } = tempDir('lanyard-cli-'));
  });
  after(() => {
    cleanup();
  });

  it('answers --help with exit 0 for every command', async () => {
    const program = buildProgram({ clock: systemClock, env: {}, out: () => undefined, err: () => undefined });
    for (const c of allCommands(program)) {
      if (c.name() === 'help') continue;
      const args = [...commandPath(c).split(' ').slice(1), '--help'];
      const r = await runLanyard(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.err}`);
      assert.match(r.out, /Usage: lanyard/);
    }
  });

  it('works as the installed binary: `lanyard --help` from a real process exits 0', () => {
    const r = lanyard(['--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /anchor/);
  });

  it('exits 2 on usage errors: unknown flag, missing option, bad duration, bad key type', async () => {
    assert.equal((await runLanyard(['anchor', 'create', '--out', join(dir, 'x'), '--bogus'])).code, 2);
    assert.equal((await runLanyard(['anchor', 'create'])).code, 2);
    assert.equal(
      (await runLanyard(['anchor', 'create', '--out', join(dir, 'x'), '--lifetime', '5q'])).code,
      2,
    );
    assert.equal(
      (await runLanyard(['anchor', 'create', '--out', join(dir, 'x'), '--key-type', 'dsa'])).code,
      2,
    );
    assert.equal(
      (
        await runLanyard([
          'issuer',
          'create',
          '--anchor',
          dir,
          '--cluster',
          'e',
          '--out',
          dir,
          '--key-type',
          'rsa2048',
        ])
      ).code,
      2,
    );
    assert.equal((await runLanyard(['no-such-command'])).code, 2);
  });

  it('creates an anchor with a 0600 key and refuses to overwrite it without --force', async () => {
    const a = join(dir, 'anchor');
    const r = await runLanyard(['anchor', 'create', '--out', a]);
    assert.equal(r.code, 0, r.err);
    assert.equal(statSync(join(a, 'anchor.key')).mode & 0o777, 0o600);
    const before = readFileSync(join(a, 'anchor.key'));
    const again = await runLanyard(['anchor', 'create', '--out', a]);
    assert.equal(again.code, 1);
    assert.equal(codeIn(again.err), 'ERR_KEY_EXISTS');
    assert.ok(readFileSync(join(a, 'anchor.key')).equals(before), 'the key is unchanged');
    const forced = await runLanyard(['anchor', 'create', '--out', join(dir, 'anchor2')]);
    assert.equal(forced.code, 0);
    assert.equal((await runLanyard(['anchor', 'create', '--out', join(dir, 'anchor2'), '--force'])).code, 0);
  });

  it('creates east and west issuers under one anchor whose leaves openssl verifies with the anchor alone', async () => {
    const a = join(dir, 'anchor');
    for (const cluster of ['east', 'west']) {
      const out = join(dir, cluster);
      const r = await runLanyard(['issuer', 'create', '--anchor', a, '--cluster', cluster, '--out', out]);
      assert.equal(r.code, 0, r.err);
      assert.equal(statSync(join(out, 'tls.key')).mode & 0o777, 0o600);
      assert.equal(readFileSync(join(out, 'ca.crt'), 'utf8'), readFileSync(join(a, 'anchor.crt'), 'utf8'));
      const { csrDer } = opensslCsr({ san: `DNS:${ID}` });
      writeFileSync(join(dir, `${cluster}.csr`), csrDer);
      const leaf = await runLanyard([
        'leaf',
        'issue',
        '--issuer',
        out,
        '--csr',
        join(dir, `${cluster}.csr`),
        '--namespace',
        'default',
        '--service-account',
        'web',
        '--out',
        join(dir, `${cluster}-leaf.crt`),
      ]);
      assert.equal(leaf.code, 0, leaf.err);
      const chain = decodePemOf(
        readFileSync(join(dir, `${cluster}-leaf.crt`), 'utf8'),
        'CERTIFICATE',
        'leaf',
      );
      const anchors = decodePemOf(readFileSync(join(a, 'anchor.crt'), 'utf8'), 'CERTIFICATE', 'anchor');
      for (const purpose of ['sslclient', 'sslserver'] as const) {
        const v = opensslVerify({
          leaf: chain[0] as Buffer,
          intermediates: chain.slice(1),
          anchors,
          purpose,
        });
        assert.ok(v.ok, `${cluster} ${purpose}: ${v.stderr}`);
      }
    }
  });

  it('refuses a CSR whose DNS name is not the derived identity (ERR_CSR_NAMES)', async () => {
    const { csrDer } = opensslCsr({ san: 'DNS:admin.default.serviceaccount.identity.linkerd.cluster.local' });
    writeFileSync(join(dir, 'admin.csr'), csrDer);
    const r = await runLanyard([
      'leaf',
      'issue',
      '--issuer',
      join(dir, 'east'),
      '--csr',
      join(dir, 'admin.csr'),
      '--namespace',
      'default',
      '--service-account',
      'web',
      '--out',
      join(dir, 'nope.crt'),
    ]);
    assert.equal(r.code, 1);
    assert.equal(codeIn(r.err), 'ERR_CSR_NAMES');
  });

  it('refuses an anchor directory whose key does not match its certificate (ERR_KEY_MISMATCH)', async () => {
    const bad = join(dir, 'mismatched-anchor');
    assert.equal((await runLanyard(['anchor', 'create', '--out', bad])).code, 0);
    writeFileSync(join(bad, 'anchor.key'), readFileSync(join(dir, 'anchor', 'anchor.key')));
    const r = await runLanyard([
      'issuer',
      'create',
      '--anchor',
      bad,
      '--cluster',
      'x',
      '--out',
      join(dir, 'x-issuer'),
    ]);
    assert.equal(r.code, 1);
    assert.equal(codeIn(r.err), 'ERR_KEY_MISMATCH');
  });

  it('refuses an expired anchor and writes no issuer key (ERR_CERT_EXPIRED)', async () => {
    const clock = new FakeClock('2026-01-01T00:00:00Z');
    const a = join(dir, 'short-anchor');
    assert.equal((await runLanyard(['anchor', 'create', '--out', a, '--lifetime', '1h'], { clock })).code, 0);
    clock.advance(2 * HOUR);
    const out = join(dir, 'late-issuer');
    const r = await runLanyard(['issuer', 'create', '--anchor', a, '--cluster', 'late', '--out', out], {
      clock,
    });
    assert.equal(r.code, 1);
    assert.equal(codeIn(r.err), 'ERR_CERT_EXPIRED');
    assert.throws(() => statSync(join(out, 'tls.key')));
  });

  it('refuses files that are not PEM', async () => {
    const a = join(dir, 'garbage-anchor');
    assert.equal((await runLanyard(['anchor', 'create', '--out', a])).code, 0);
    writeFileSync(join(a, 'anchor.crt'), 'this is not a certificate\n');
    const r = await runLanyard([
      'issuer',
      'create',
      '--anchor',
      a,
      '--cluster',
      'x',
      '--out',
      join(dir, 'y'),
    ]);
    assert.equal(r.code, 1);
    assert.equal(codeIn(r.err), 'ERR_PEM_MALFORMED');
    writeFileSync(join(dir, 'garbage.bin'), Buffer.from([1, 2, 3, 4]));
    const i = await runLanyard(['inspect', join(dir, 'garbage.bin')]);
    assert.equal(i.code, 1);
    assert.equal(codeIn(i.err), 'ERR_FILE_INVALID');
  });

  it('refuses an issuer directory whose certificate the anchor did not sign (ERR_CHAIN_UNTRUSTED)', async () => {
    const other = join(dir, 'other-anchor');
    assert.equal((await runLanyard(['anchor', 'create', '--out', other])).code, 0);
    writeFileSync(join(dir, 'west', 'ca.crt'), readFileSync(join(other, 'anchor.crt')));
    const r = await runLanyard([
      'leaf',
      'issue',
      '--issuer',
      join(dir, 'west'),
      '--csr',
      join(dir, 'east.csr'),
      '--namespace',
      'default',
      '--service-account',
      'web',
      '--out',
      join(dir, 'z.crt'),
    ]);
    assert.equal(r.code, 1);
    assert.equal(codeIn(r.err), 'ERR_CHAIN_UNTRUSTED');
  });

  it('inspects certificates, bundles and CSRs, and flags expired and soon-to-expire certificates', async () => {
    const now = await runLanyard(['inspect', '--json', join(dir, 'east-leaf.crt'), join(dir, 'east.csr')]);
    assert.equal(now.code, 0, now.err);
    const report = JSON.parse(now.out) as { file: string; items: Record<string, unknown>[] }[];
    const [leaf, issuer] = report[0]?.items ?? [];
    assert.equal(leaf?.kind, 'certificate');
    assert.deepEqual(leaf?.dnsNames, [ID]);
    assert.deepEqual(leaf?.uris, ['spiffe://cluster.local/ns/default/sa/web']);
    assert.equal(leaf?.isCa, false);
    assert.deepEqual(leaf?.keyUsage, ['digitalSignature']);
    assert.deepEqual(leaf?.extendedKeyUsage, ['serverAuth', 'clientAuth']);
    assert.equal(leaf?.authorityKeyId, issuer?.subjectKeyId);
    assert.match(String(leaf?.sha256Fingerprint), /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.equal(leaf?.state, 'valid');
    assert.equal(issuer?.isCa, true);
    assert.equal(issuer?.pathLen, 0);
    assert.equal(report[1]?.items[0]?.kind, 'csr');
    const soon = await runLanyard(['inspect', '--json', join(dir, 'east-leaf.crt')], {
      clock: new FakeClock(systemClock.now().getTime() + 23 * HOUR),
    });
    assert.equal(
      (JSON.parse(soon.out) as { items: { state: string }[] }[])[0]?.items[0]?.state,
      'expiring-soon',
    );
    const late = await runLanyard(['inspect', join(dir, 'east-leaf.crt')], {
      clock: new FakeClock(systemClock.now().getTime() + 48 * HOUR),
    });
    assert.match(late.out, /\[EXPIRED\]/);
  });
});
