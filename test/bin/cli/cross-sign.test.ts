// `lanyard anchor cross-sign` and `lanyard issuer create --cross-signed`: the files they write, what
// they refuse (with codes), and nothing on disk changing when they refuse.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseCertificatesPem, type Clock } from '../../../ca/index.js';
import { runLanyard } from '../../support/cli-inproc.js';
import { FakeClock, HOUR } from '../../support/clock.js';
import { openssl } from '../../support/openssl.js';
import { tempDir } from '../../support/temp-dir.js';

const codeIn = (s: string): string | undefined => /\((ERR_[A-Z_]+)\)\s*$/m.exec(s)?.[1];
const T0 = new Date('2026-06-01T00:00:00Z');

function certsOf(path: string): ReturnType<typeof parseCertificatesPem> {
  return parseCertificatesPem(readFileSync(path, 'utf8'), path);
}

describe('lanyard anchor cross-sign', () => {
  let dir: string;
  let cleanup: () => void;
  let clock: Clock;
  const run = (args: readonly string[]) => runLanyard(args, { clock });
  before(async () => {
    ({ dir, cleanup } = tempDir('lanyard-cross-cli-'));
    clock = new FakeClock(T0);
    assert.equal((await run(['anchor', 'create', '--out', join(dir, 'a'), '--lifetime', '8760h'])).code, 0);
    assert.equal((await run(['anchor', 'create', '--out', join(dir, 'b'), '--lifetime', '17520h'])).code, 0);
  });
  after(() => {
    cleanup();
  });

  it('gives every anchor a subject of its own: CN plus serialNumber from its key', () => {
    const [a] = certsOf(join(dir, 'a', 'anchor.crt'));
    const [b] = certsOf(join(dir, 'b', 'anchor.crt'));
    assert.ok(a && b);
    assert.ok(!a.subjectDer.equals(b.subjectDer));
    const text = openssl(['x509', '-noout', '-subject', '-in', join(dir, 'a', 'anchor.crt')]);
    const ski = (a.subjectKeyId as Buffer).toString('hex').toUpperCase().slice(0, 16);
    assert.equal(text.stdout.trim(), `subject=CN = root.linkerd.cluster.local, serialNumber = ${ski}`);
  });

  it("writes one PEM CERTIFICATE (0644) with B's subject and key, issued by A, reading only B's anchor.crt", async () => {
    const bCertOnly = join(dir, 'b-cert-only');
    mkdirSync(bCertOnly);
    cpSync(join(dir, 'b', 'anchor.crt'), join(bCertOnly, 'anchor.crt'));
    const out = join(dir, 'cross.crt');
    const r = await run([
      'anchor',
      'cross-sign',
      '--anchor',
      join(dir, 'a'),
      '--subject',
      bCertOnly,
      '--out',
      out,
    ]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /created cross certificate/);
    assert.equal(statSync(out).mode & 0o777, 0o644);
    const pem = readFileSync(out, 'utf8');
    assert.equal(pem.match(/-----BEGIN CERTIFICATE-----/g)?.length, 1);
    const [cross] = certsOf(out);
    const [a] = certsOf(join(dir, 'a', 'anchor.crt'));
    const [b] = certsOf(join(dir, 'b', 'anchor.crt'));
    assert.ok(cross && a && b);
    assert.ok(cross.subjectDer.equals(b.subjectDer));
    assert.ok(cross.spki.equals(b.spki));
    assert.ok(cross.issuerDer.equals(a.subjectDer));
    assert.ok(cross.authorityKeyId?.equals(a.subjectKeyId as Buffer));
    // default validity: until the earlier notAfter (A's)
    assert.equal(cross.notAfter.getTime(), a.notAfter.getTime());
    const v = openssl([
      'verify',
      '-x509_strict',
      '-attime',
      String(T0.getTime() / 1000),
      '-CAfile',
      join(dir, 'a', 'anchor.crt'),
      out,
    ]);
    assert.ok(v.ok, v.stdout + v.stderr);
  });

  it('--json prints the certificate summary; --lifetime shortens it', async () => {
    const out = join(dir, 'cross-short.crt');
    const r = await run([
      'anchor',
      'cross-sign',
      '--anchor',
      join(dir, 'a'),
      '--subject',
      join(dir, 'b'),
      '--out',
      out,
      '--lifetime',
      '48h',
      '--json',
    ]);
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out) as Record<string, unknown>;
    const [cross] = certsOf(out);
    assert.ok(cross);
    assert.equal(j.path, out);
    assert.equal(j.serial, cross.serialHex);
    assert.equal(j.notAfter, new Date(T0.getTime() + 48 * HOUR).toISOString());
    assert.match(String(j.fingerprint), /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });

  it('refuses an existing --out without --force (ERR_KEY_EXISTS, file unchanged), replaces it with --force', async () => {
    const out = join(dir, 'cross.crt');
    const before = readFileSync(out);
    const args = [
      'anchor',
      'cross-sign',
      '--anchor',
      join(dir, 'a'),
      '--subject',
      join(dir, 'b'),
      '--out',
      out,
    ];
    const r = await run(args);
    assert.equal(r.code, 1);
    assert.equal(codeIn(r.err), 'ERR_KEY_EXISTS');
    assert.ok(readFileSync(out).equals(before));
    const forced = await run([...args, '--force']);
    assert.equal(forced.code, 0, forced.err);
    assert.ok(!readFileSync(out).equals(before));
  });

  it('refuses the same subject (ERR_CROSS_SAME_SUBJECT) and a subject that is not an anchor (ERR_ANCHOR_NOT_SELF_SIGNED)', async () => {
    const out = join(dir, 'refused.crt');
    const same = await run([
      'anchor',
      'cross-sign',
      '--anchor',
      join(dir, 'a'),
      '--subject',
      join(dir, 'a'),
      '--out',
      out,
    ]);
    assert.equal(same.code, 1);
    assert.equal(codeIn(same.err), 'ERR_CROSS_SAME_SUBJECT');
    const issuer = join(dir, 'issuer-a');
    assert.equal(
      (await run(['issuer', 'create', '--anchor', join(dir, 'a'), '--cluster', 'e', '--out', issuer])).code,
      0,
    );
    const fake = join(dir, 'fake');
    mkdirSync(fake);
    cpSync(join(issuer, 'tls.crt'), join(fake, 'anchor.crt'));
    const notAnchor = await run([
      'anchor',
      'cross-sign',
      '--anchor',
      join(dir, 'a'),
      '--subject',
      fake,
      '--out',
      out,
    ]);
    assert.equal(notAnchor.code, 1);
    assert.equal(codeIn(notAnchor.err), 'ERR_ANCHOR_NOT_SELF_SIGNED');
    assert.equal(existsSync(out), false);
  });

  it('refuses an expired signing anchor (ERR_CERT_EXPIRED)', async () => {
    const late = new FakeClock(new Date(T0.getTime() + 8761 * HOUR));
    const out = join(dir, 'late.crt');
    const r = await runLanyard(
      ['anchor', 'cross-sign', '--anchor', join(dir, 'a'), '--subject', join(dir, 'b'), '--out', out],
      { clock: late },
    );
    assert.equal(r.code, 1);
    assert.equal(codeIn(r.err), 'ERR_CERT_EXPIRED');
    assert.equal(existsSync(out), false);
  });

  it('needs --anchor, --subject and --out (usage error)', async () => {
    assert.equal(
      (await run(['anchor', 'cross-sign', '--anchor', join(dir, 'a'), '--out', join(dir, 'x')])).code,
      2,
    );
  });
});
