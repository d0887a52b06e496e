// How `lanyard anchor|issuer|leaf|inspect` fail: nothing on disk changes when a flag is bad, each
// failure has the most specific code, and invalid flag values are usage errors (exit 2).
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeFilesAtomic } from '../../../ca/fs.js';
import { runLanyard } from '../../support/cli-inproc.js';
import { openssl, opensslCsr } from '../../support/openssl.js';
import { tempDir } from '../../support/temp-dir.js';

const ID = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const codeIn = (s: string): string | undefined => /\((ERR_[A-Z_]+)\)\s*$/m.exec(s)?.[1];

/** Every file under `dir` (names, including hidden temp files) with its bytes. */
function snapshot(dir: string): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  if (!existsSync(dir)) return m;
  for (const name of readdirSync(dir)) m.set(name, readFileSync(join(dir, name)));
  return m;
}

function assertUnchanged(dir: string, before: Map<string, Buffer>): void {
  const now = snapshot(dir);
  assert.deepEqual([...now.keys()].sort(), [...before.keys()].sort(), `files in ${dir}`);
  for (const [name, bytes] of before) assert.ok(now.get(name)?.equals(bytes), `${name} is byte-identical`);
}

describe('lanyard CLI failures', () => {
  let dir: string;
  let cleanup: () => void;
  let anchor: string;
  let issuer: string;
  const leafArgs = (extra: readonly string[]): string[] => [
    'leaf',
    'issue',
    '--issuer',
    issuer,
    '--csr',
    join(dir, 'web.csr'),
    '--namespace',
    'default',
    '--service-account',
    'web',
    ...extra,
  ];

  before(async () => {
    ({ dir, cleanup } = tempDir('lanyard-cli-fail-'));
    anchor = join(dir, 'anchor');
    issuer = join(dir, 'issuer');
    assert.equal((await runLanyard(['anchor', 'create', '--out', anchor])).code, 0);
    assert.equal(
      (await runLanyard(['issuer', 'create', '--anchor', anchor, '--cluster', 'east', '--out', issuer])).code,
      0,
    );
    writeFileSync(join(dir, 'web.csr'), opensslCsr({ san: `DNS:${ID}` }).csrDer);
  });
  after(() => {
    cleanup();
  });

  describe('a bad flag leaves existing key and certificate untouched and writes no key', () => {
    /** `issuer create` of the east issuer again, into its existing directory */
    const reissueEast = (): string[] => [
      'issuer',
      'create',
      '--anchor',
      anchor,
      '--cluster',
      'east',
      '--out',
      issuer,
    ];

    it('anchor create --force with a 70-character common name: exit 2, anchor unchanged', async () => {
      const before = snapshot(anchor);
      const r = await runLanyard([
        'anchor',
        'create',
        '--out',
        anchor,
        '--force',
        '--common-name',
        'x'.repeat(70),
      ]);
      assert.equal(r.code, 2, r.err);
      assertUnchanged(anchor, before);
    });

    it('anchor create with a lifetime past year 9999: exit 2, no directory, no key', async () => {
      const out = join(dir, 'far-future');
      const r = await runLanyard(['anchor', 'create', '--out', out, '--lifetime', '100000000000h']);
      assert.equal(r.code, 2, r.err);
      assert.equal(existsSync(out), false);
    });

    it('issuer create --force with a bad --permit-spiffe: exit 2, issuer unchanged', async () => {
      const before = snapshot(issuer);
      const r = await runLanyard([...reissueEast(), '--force', '--permit-spiffe', 'Bad_TD']);
      assert.equal(r.code, 2, r.err);
      assertUnchanged(issuer, before);
    });

    it('issuer create with a bad --permit-dns: exit 2, no lone tls.key, and a rerun succeeds', async () => {
      const out = join(dir, 'fresh-issuer');
      const args = ['issuer', 'create', '--anchor', anchor, '--cluster', 'west', '--out', out];
      const r = await runLanyard([...args, '--permit-dns', 'bad name!']);
      assert.equal(r.code, 2, r.err);
      assert.deepEqual([...snapshot(out).keys()], []);
      const again = await runLanyard(args);
      assert.equal(again.code, 0, again.err);
      assert.deepEqual([...snapshot(out).keys()].sort(), ['ca.crt', 'tls.crt', 'tls.key']);
    });

    it('issuer create without --force over an existing issuer: ERR_KEY_EXISTS, issuer unchanged', async () => {
      const before = snapshot(issuer);
      const r = await runLanyard(reissueEast());
      assert.equal(r.code, 1);
      assert.equal(codeIn(r.err), 'ERR_KEY_EXISTS');
      assertUnchanged(issuer, before);
    });
  });

  it('issuer create refuses an --anchor directory holding an issuer (not self-signed): ERR_ANCHOR_NOT_SELF_SIGNED', async () => {
    const fake = join(dir, 'fake-anchor');
    mkdirSync(fake);
    cpSync(join(issuer, 'tls.crt'), join(fake, 'anchor.crt'));
    cpSync(join(issuer, 'tls.key'), join(fake, 'anchor.key'));
    const out = join(dir, 'sub-issuer');
    const r = await runLanyard(['issuer', 'create', '--anchor', fake, '--cluster', 'sub', '--out', out]);
    assert.equal(r.code, 1);
    assert.equal(codeIn(r.err), 'ERR_ANCHOR_NOT_SELF_SIGNED');
    assert.equal(existsSync(out), false);
  });

  it('leaf issue --out into a missing directory: ERR_FILE_NOT_FOUND naming the directory, not a temp file', async () => {
    const r = await runLanyard(leafArgs(['--out', join(dir, 'nodir', 'x.pem')]));
    assert.equal(r.code, 1);
    assert.equal(codeIn(r.err), 'ERR_FILE_NOT_FOUND');
    assert.doesNotMatch(r.err, /\.tmp/);
  });

  it('leaf issue with an invalid --namespace, --service-account or --trust-domain is a usage error (exit 2)', async () => {
    const out = ['--out', join(dir, 'never.pem')];
    for (const extra of [
      ['--namespace', 'Default'],
      ['--service-account', 'Web_1'],
      ['--trust-domain', 'Cluster.Local'],
      ['--control-namespace', 'a.b'],
    ]) {
      const r = await runLanyard([...leafArgs(out), ...extra]);
      assert.equal(r.code, 2, `${extra.join(' ')}: ${r.err}`);
      assert.equal(codeIn(r.err), 'ERR_IDENTITY_INVALID');
    }
    assert.equal(existsSync(join(dir, 'never.pem')), false);
  });

  it('accepts PEM with explanatory text before the block (openssl req -text, openssl x509 -text)', async () => {
    const key = join(dir, 'text.key');
    const csr = join(dir, 'text.csr');
    const r = openssl([
      'req',
      '-new',
      '-text',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-subj',
      '/',
      '-addext',
      `subjectAltName=DNS:${ID}`,
      '-out',
      csr,
    ]);
    assert.ok(r.ok, r.stderr);
    assert.doesNotMatch(readFileSync(csr, 'utf8').slice(0, 20), /-----BEGIN/);
    const out = join(dir, 'text-leaf.pem');
    const issued = await runLanyard([
      ...leafArgs(['--out', out]).map((a) => (a.endsWith('web.csr') ? csr : a)),
    ]);
    assert.equal(issued.code, 0, issued.err);

    const certText = join(dir, 'issuer-text.crt');
    const x = openssl(['x509', '-in', join(issuer, 'tls.crt'), '-text', '-out', certText]);
    assert.ok(x.ok, x.stderr);
    const inspected = await runLanyard(['inspect', '--json', certText, csr]);
    assert.equal(inspected.code, 0, inspected.err);
    const items = (JSON.parse(inspected.out) as { items: { kind: string }[] }[]).map((f) => f.items[0]?.kind);
    assert.deepEqual(items, ['certificate', 'csr']);
  });

  it('inspect of a DER CSR with a bad signature reports ERR_CSR_SIGNATURE, not ERR_FILE_INVALID', async () => {
    const der = Buffer.from(readFileSync(join(dir, 'web.csr')));
    der[der.length - 1] = (der[der.length - 1] as number) ^ 0x01;
    writeFileSync(join(dir, 'badsig.der'), der);
    const r = await runLanyard(['inspect', join(dir, 'badsig.der')]);
    assert.equal(r.code, 1);
    assert.equal(codeIn(r.err), 'ERR_CSR_SIGNATURE');
  });

  it('shows the default lifetimes in --help', async () => {
    for (const [cmd, text] of [
      [['anchor', 'create'], '87600h'],
      [['issuer', 'create'], '8760h'],
      [['leaf', 'issue'], '24h'],
    ] as const) {
      const r = await runLanyard([...cmd, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.out, new RegExp(`--lifetime <duration>[\\s\\S]*\\(default: ${text}\\)`));
    }
  });
});

describe('writeFilesAtomic', () => {
  let dir: string;
  let cleanup: () => void;
  before(() => {
    ({ dir, cleanup } = tempDir('lanyard-fs-'));
  });
  after(() => {
    cleanup();
  });

  it('puts every replaced file back when a later one cannot be written', async () => {
    writeFileSync(join(dir, 'a.key'), 'old key');
    mkdirSync(join(dir, 'b.crt'));
    writeFileSync(join(dir, 'b.crt', 'inside'), 'x'); // a non-empty directory cannot be replaced by rename
    await assert.rejects(
      writeFilesAtomic([
        { path: join(dir, 'a.key'), data: 'new key', mode: 0o600, overwrite: true },
        { path: join(dir, 'b.crt'), data: 'new cert', overwrite: true },
      ]),
    );
    assert.equal(readFileSync(join(dir, 'a.key'), 'utf8'), 'old key');
    assert.deepEqual(readdirSync(dir).sort(), ['a.key', 'b.crt']);
  });

  it('without overwrite, refuses with ERR_KEY_EXISTS when any file exists and creates none of them', async () => {
    writeFileSync(join(dir, 'd.crt'), 'existing');
    await assert.rejects(
      writeFilesAtomic([
        { path: join(dir, 'c.key'), data: 'new key', mode: 0o600 },
        { path: join(dir, 'd.crt'), data: 'new cert' },
      ]),
      { code: 'ERR_KEY_EXISTS' },
    );
    assert.equal(existsSync(join(dir, 'c.key')), false);
    assert.equal(readFileSync(join(dir, 'd.crt'), 'utf8'), 'existing');
    assert.equal(readdirSync(dir).filter((n) => n.startsWith('.')).length, 0, 'no temp files left');
  });

  it('names the missing directory with ERR_FILE_NOT_FOUND', async () => {
    await assert.rejects(writeFilesAtomic([{ path: join(dir, 'missing', 'x'), data: 'x' }]), {
      code: 'ERR_FILE_NOT_FOUND',
    });
  });
});
