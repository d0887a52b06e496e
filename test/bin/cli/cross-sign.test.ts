// `lanyard anchor cross-sign` and `lanyard issuer create --cross-signed`: the files they write, what
// they refuse (with codes), and nothing on disk changing when they refuse.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseCertificatesPem, type Clock } from '../../../ca/index.js';
import { runLanyard } from '../../support/cli-inproc.js';
import { FakeClock, HOUR } from '../../support/clock.js';
import { openssl, opensslCsr } from '../../support/openssl.js';
import { tempDir } from '../../support/temp-dir.js';

const codeIn = (s: string): string | undefined => /\((ERR_[A-Z_]+)\)\s*$/m.exec(s)?.[1];
const T0 = new Date('2026-06-01T00:00:00Z');
const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';

/** `anchor cross-sign --anchor a --subject b --out out` and any further flags */
const crossSign = (a: string, b: string, out: string, ...extra: string[]): string[] => [
  'anchor',
  'cross-sign',
  '--anchor',
  a,
  '--subject',
  b,
  '--out',
  out,
  ...extra,
];

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
    const r = await run(crossSign(join(dir, 'a'), bCertOnly, out));
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
    const r = await run(crossSign(join(dir, 'a'), join(dir, 'b'), out, '--lifetime', '48h', '--json'));
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
    const args = crossSign(join(dir, 'a'), join(dir, 'b'), out);
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
    const same = await run(crossSign(join(dir, 'a'), join(dir, 'a'), out));
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
    const notAnchor = await run(crossSign(join(dir, 'a'), fake, out));
    assert.equal(notAnchor.code, 1);
    assert.equal(codeIn(notAnchor.err), 'ERR_ANCHOR_NOT_SELF_SIGNED');
    assert.equal(existsSync(out), false);
  });

  it('refuses an expired signing anchor (ERR_CERT_EXPIRED)', async () => {
    const late = new FakeClock(new Date(T0.getTime() + 8761 * HOUR));
    const out = join(dir, 'late.crt');
    const r = await runLanyard(crossSign(join(dir, 'a'), join(dir, 'b'), out), { clock: late });
    assert.equal(r.code, 1);
    assert.equal(codeIn(r.err), 'ERR_CERT_EXPIRED');
    assert.equal(existsSync(out), false);
  });

  it("refuses an expired NEW anchor (ERR_CERT_EXPIRED, nothing written) and caps --lifetime at NEW's expiry", async () => {
    assert.equal((await run(['anchor', 'create', '--out', join(dir, 'short'), '--lifetime', '2h'])).code, 0);
    const out = join(dir, 'short-cross.crt');
    const late = new FakeClock(new Date(T0.getTime() + 3 * HOUR));
    const r = await runLanyard(crossSign(join(dir, 'a'), join(dir, 'short'), out, '--lifetime', '10h'), {
      clock: late,
    });
    assert.equal(r.code, 1);
    assert.equal(codeIn(r.err), 'ERR_CERT_EXPIRED');
    assert.equal(existsSync(out), false);
    const capped = await run(crossSign(join(dir, 'a'), join(dir, 'short'), out, '--lifetime', '5000h'));
    assert.equal(capped.code, 0, capped.err);
    const [cross] = certsOf(out);
    const [short] = certsOf(join(dir, 'short', 'anchor.crt'));
    assert.ok(cross && short);
    assert.equal(cross.notAfter.getTime(), short.notAfter.getTime());
    assert.ok(cross.notAfter.getTime() > cross.notBefore.getTime());
  });

  it('needs --anchor, --subject and --out (usage error)', async () => {
    assert.equal(
      (await run(['anchor', 'cross-sign', '--anchor', join(dir, 'a'), '--out', join(dir, 'x')])).code,
      2,
    );
  });
});

describe('lanyard issuer create --cross-signed', () => {
  let dir: string;
  let cleanup: () => void;
  const clock = new FakeClock(T0);
  const run = (args: readonly string[]) => runLanyard(args, { clock });
  const issuerArgs = (out: string, cross: string, extra: readonly string[] = []): string[] => [
    'issuer',
    'create',
    '--anchor',
    join(dir, 'b'),
    '--cluster',
    'east',
    '--out',
    out,
    '--lifetime',
    '720h',
    '--cross-signed',
    cross,
    ...extra,
  ];
  before(async () => {
    ({ dir, cleanup } = tempDir('lanyard-cross-issuer-'));
    for (const name of ['a', 'b', 'c']) {
      assert.equal(
        (await run(['anchor', 'create', '--out', join(dir, name), '--lifetime', '8760h'])).code,
        0,
      );
    }
    const r = await run(crossSign(join(dir, 'a'), join(dir, 'b'), join(dir, 'cross.crt')));
    assert.equal(r.code, 0, r.err);
  });
  after(() => {
    cleanup();
  });

  it('writes tls.crt = issuer then cross certificate, ca.crt = the new anchor; its leaves verify with A alone and with B alone', async () => {
    const out = join(dir, 'east');
    const r = await run(issuerArgs(out, join(dir, 'cross.crt')));
    assert.equal(r.code, 0, r.err);
    const served = certsOf(join(out, 'tls.crt'));
    const [cross] = certsOf(join(dir, 'cross.crt'));
    const [b] = certsOf(join(dir, 'b', 'anchor.crt'));
    assert.equal(served.length, 2);
    assert.ok(served[0]?.issuerDer.equals(b?.subjectDer as Buffer));
    assert.ok(served[1]?.der.equals(cross?.der as Buffer));
    assert.equal(
      readFileSync(join(out, 'ca.crt'), 'utf8'),
      readFileSync(join(dir, 'b', 'anchor.crt'), 'utf8'),
    );
    const csr = opensslCsr({ san: `DNS:${ID}` });
    writeFileSync(join(dir, 'web.csr'), csr.csrDer);
    const leafOut = join(dir, 'web.pem');
    const leaf = await run([
      'leaf',
      'issue',
      '--issuer',
      out,
      '--csr',
      join(dir, 'web.csr'),
      '--namespace',
      'default',
      '--service-account',
      'web',
      '--out',
      leafOut,
    ]);
    assert.equal(leaf.code, 0, leaf.err);
    const chain = certsOf(leafOut);
    assert.equal(chain.length, 3, 'leaf, issuer, cross certificate');
    writeFileSync(
      join(dir, 'leaf-only.pem'),
      readFileSync(leafOut, 'utf8').split(/(?<=-----END CERTIFICATE-----\n)/)[0] ?? '',
    );
    writeFileSync(join(dir, 'untrusted.pem'), readFileSync(join(out, 'tls.crt')));
    for (const root of ['a', 'b']) {
      for (const purpose of ['sslclient', 'sslserver']) {
        const v = openssl([
          'verify',
          '-x509_strict',
          '-purpose',
          purpose,
          '-attime',
          String(T0.getTime() / 1000),
          '-CAfile',
          join(dir, root, 'anchor.crt'),
          '-untrusted',
          join(dir, 'untrusted.pem'),
          join(dir, 'leaf-only.pem'),
        ]);
        assert.ok(v.ok, `-CAfile ${root} ${purpose}: ${v.stdout}${v.stderr}`);
      }
    }
  });

  it('refuses a cross certificate of another anchor (ERR_CROSS_CERT_MISMATCH) and one that expires first (ERR_CROSS_CERT_EXPIRES_FIRST), writing nothing', async () => {
    const crossC = join(dir, 'cross-c.crt');
    assert.equal((await run(crossSign(join(dir, 'a'), join(dir, 'c'), crossC))).code, 0);
    const short = join(dir, 'cross-short.crt');
    const made = await run(crossSign(join(dir, 'a'), join(dir, 'b'), short, '--lifetime', '240h'));
    assert.equal(made.code, 0, made.err);
    for (const [cross, code] of [
      [crossC, 'ERR_CROSS_CERT_MISMATCH'],
      [short, 'ERR_CROSS_CERT_EXPIRES_FIRST'],
    ] as const) {
      const out = join(dir, `refused-${code}`);
      const r = await run(issuerArgs(out, cross));
      assert.equal(r.code, 1);
      assert.equal(codeIn(r.err), code);
      assert.equal(existsSync(join(out, 'tls.key')), false);
      assert.equal(existsSync(join(out, 'tls.crt')), false);
    }
    // a shorter issuer fits inside the short cross certificate
    const fits = await run(issuerArgs(join(dir, 'fits'), short, ['--lifetime', '120h']));
    assert.equal(fits.code, 0, fits.err);
  });

  it('refuses a --cross-signed file with no certificate (ERR_FILE_INVALID or a PEM code)', async () => {
    const empty = join(dir, 'empty.crt');
    writeFileSync(empty, 'nothing here\n');
    const r = await run(issuerArgs(join(dir, 'none'), empty));
    assert.equal(r.code, 1);
    assert.match(codeIn(r.err) ?? '', /^ERR_(FILE_INVALID|PEM_MALFORMED)$/);
    assert.equal(existsSync(join(dir, 'none', 'tls.crt')), false);
  });
});
