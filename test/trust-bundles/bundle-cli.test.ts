import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { fingerprint } from '../../ca/index.js';
import { createTrustBundle, parseTrustBundle } from '../../trust-bundles/bundle.js';
import { parseSpiffeBundle } from '../../trust-bundles/formats.js';
import { runLanyard, type InProcResult } from '../support/cli-inproc.js';
import { FakeClock } from '../support/clock.js';
import { tempDir } from '../support/temp-dir.js';
import { testPki, type TestPki } from '../support/pki.js';
import {
  FINGERPRINT_FORMAT,
  NOW,
  anchorsAt,
  certPem,
  cliCode,
  issuedLeafDer,
  nonCaCertificate,
  privateKeyPem,
  withPemHeaders,
} from './fixtures.js';

const clock = new FakeClock(NOW);
const lanyard = (...args: string[]): Promise<InProcResult> => runLanyard(['bundle', ...args], { clock });

/** Every entry of a directory with its bytes and mode: equal snapshots mean nothing changed on disk. */
function snapshot(dir: string): [string, string, number][] {
  return readdirSync(dir)
    .sort()
    .map((name) => {
      const p = join(dir, name);
      return [name, readFileSync(p).toString('hex'), statSync(p).mode];
    });
}

function assertRefused(r: InProcResult, code: string): void {
  assert.equal(r.code, 1, `exit code; stderr: ${r.err}`);
  assert.equal(cliCode(r.err), code, r.err);
  assert.equal(r.out, '');
}

describe('lanyard bundle', () => {
  let root: string;
  let cleanup: () => void;
  let a: TestPki;
  let b: TestPki;
  let rsa: TestPki;
  // input files (never written by the CLI)
  const input = {
    a: '',
    b: '',
    rsa: '',
    ab: '',
    withKey: '',
    keyOnly: '',
    withHeaders: '',
    leaf: '',
    nonCa: '',
    garbage: '',
    empty: '',
  };
  let n = 0;
  /** a fresh working directory for one test */
  const work = (): string => mkdtempSync(join(root, `work-${String(n++)}-`));

  before(async () => {
    ({ dir: root, cleanup } = tempDir('lanyard-bundle-cli-'));
    [a, b] = (await anchorsAt([0, 1])) as [TestPki, TestPki];
    rsa = await testPki({ now: NOW, anchorKey: 'rsa2048' });
    const inDir = join(root, 'in');
    mkdirSync(inDir);
    const files: Record<keyof typeof input, string> = {
      a: a.anchorsPem,
      b: b.anchorsPem,
      rsa: rsa.anchorsPem,
      ab: a.anchorsPem + b.anchorsPem,
      withKey: b.anchorsPem + privateKeyPem(b),
      keyOnly: privateKeyPem(b),
      withHeaders: withPemHeaders(b.anchorsPem),
      leaf: certPem(await issuedLeafDer(b)),
      nonCa: certPem(await nonCaCertificate(b)),
      garbage: 'this is not a certificate\n',
      empty: '',
    };
    for (const [k, text] of Object.entries(files) as [keyof typeof input, string][]) {
      input[k] = join(inDir, `${k}.crt`);
      writeFileSync(input[k], text);
    }
  });
  after(() => {
    cleanup();
  });

  const fpA = (): string => fingerprint(a.anchor.cert.der);
  const fpB = (): string => fingerprint(b.anchor.cert.der);

  /** a working directory holding bundle.crt made by `bundle create` from `anchors` */
  async function bundleOf(...anchors: string[]): Promise<{ dir: string; file: string }> {
    const dir = work();
    const file = join(dir, 'bundle.crt');
    const r = await lanyard('create', '--out', file, ...anchors);
    assert.equal(r.code, 0, r.err);
    return { dir, file };
  }

  describe('create', () => {
    it('writes the anchors as a PEM bundle (mode 0644) and lists each anchor', async () => {
      const dir = work();
      const file = join(dir, 'bundle.crt');
      const r = await lanyard('create', '--out', file, input.b, input.a);
      assert.equal(r.code, 0, r.err);
      assert.equal(r.err, '');
      assert.equal(readFileSync(file, 'utf8'), createTrustBundle([a.anchor.cert, b.anchor.cert]).toPem());
      assert.equal(statSync(file).mode & 0o777, 0o644);
      assert.ok(r.out.includes(fpA()) && r.out.includes(fpB()));
      assert.deepEqual(readdirSync(dir), ['bundle.crt'], 'no temp files left behind');
    });

    it('folds duplicates across input files and writes the same bytes whatever the argument order', async () => {
      const one = await bundleOf(input.a, input.ab, input.b, input.a);
      const two = await bundleOf(input.b, input.a);
      assert.equal(parseTrustBundle(readFileSync(one.file, 'utf8'), 'x').anchors.length, 2);
      assert.ok(readFileSync(one.file).equals(readFileSync(two.file)));
    });

    it('refuses to replace an existing file without --force and leaves it untouched', async () => {
      const { dir, file } = await bundleOf(input.a);
      const before = snapshot(dir);
      assertRefused(await lanyard('create', '--out', file, input.b), 'ERR_FILE_INVALID');
      assert.deepEqual(snapshot(dir), before);
    });

    it('replaces an existing file with --force', async () => {
      const { dir, file } = await bundleOf(input.a);
      const r = await lanyard('create', '--force', '--out', file, input.b);
      assert.equal(r.code, 0, r.err);
      assert.equal(readFileSync(file, 'utf8'), b.anchorsPem);
      assert.deepEqual(readdirSync(dir), ['bundle.crt']);
    });

    const badInputs = [
      ['a PRIVATE KEY block beside the anchor', 'withKey', 'ERR_PEM_UNEXPECTED_TYPE'],
      ['a PRIVATE KEY block alone', 'keyOnly', 'ERR_PEM_UNEXPECTED_TYPE'],
      ['a PEM header (Proc-Type: 4,ENCRYPTED)', 'withHeaders', 'ERR_PEM_HEADERS'],
      ['a workload leaf (CA:FALSE)', 'leaf', 'ERR_NOT_CA'],
      ['a non-CA certificate', 'nonCa', 'ERR_NOT_CA'],
      ['garbage', 'garbage', 'ERR_PEM_MALFORMED'],
      ['an empty file', 'empty', 'ERR_PEM_MALFORMED'],
    ] as const;

    for (const [what, key, code] of badInputs) {
      it(`writes nothing when an input holds ${what} (${code})`, async () => {
        const dir = work();
        assertRefused(await lanyard('create', '--out', join(dir, 'bundle.crt'), input.a, input[key]), code);
        assert.deepEqual(readdirSync(dir), []);
      });
    }

    it('refuses a missing input file (ERR_FILE_NOT_FOUND) and writes nothing', async () => {
      const dir = work();
      assertRefused(
        await lanyard('create', '--out', join(dir, 'bundle.crt'), join(dir, 'nope.crt')),
        'ERR_FILE_NOT_FOUND',
      );
      assert.deepEqual(readdirSync(dir), []);
    });
  });

  describe('show', () => {
    it('prints one line per anchor with its fingerprint', async () => {
      const { file } = await bundleOf(input.a, input.b);
      const r = await lanyard('show', file);
      assert.equal(r.code, 0, r.err);
      const lines = r.out.split('\n');
      assert.equal(lines.length, 2);
      const bundle = parseTrustBundle(readFileSync(file, 'utf8'), 'x');
      bundle.anchors.forEach((anchor, i) => {
        assert.ok(lines[i]?.includes(anchor.fingerprint));
      });
    });

    it('prints fingerprint, subject and validity per anchor with --json', async () => {
      const { file } = await bundleOf(input.b, input.a, input.rsa);
      const r = await lanyard('show', file, '--json');
      assert.equal(r.code, 0, r.err);
      const bundle = parseTrustBundle(readFileSync(file, 'utf8'), 'x');
      assert.deepEqual(
        JSON.parse(r.out),
        bundle.anchors.map((x) => ({
          fingerprint: x.fingerprint,
          subject: x.subject,
          notBefore: x.notBefore.toISOString(),
          notAfter: x.notAfter.toISOString(),
        })),
      );
      for (const x of JSON.parse(r.out) as { fingerprint: string }[])
        assert.match(x.fingerprint, FINGERPRINT_FORMAT);
    });

    it('refuses a bundle file holding a private key', async () => {
      assertRefused(await lanyard('show', input.withKey), 'ERR_PEM_UNEXPECTED_TYPE');
    });
  });

  describe('add', () => {
    it('adds new anchors and keeps the file in the canonical order', async () => {
      const { file } = await bundleOf(input.b);
      const r = await lanyard('add', file, input.a, input.rsa);
      assert.equal(r.code, 0, r.err);
      assert.equal(
        readFileSync(file, 'utf8'),
        createTrustBundle([a, b, rsa].map((p) => p.anchor.cert)).toPem(),
      );
    });

    it('keeps an anchor that is already present once (the file stays byte-identical)', async () => {
      const { dir, file } = await bundleOf(input.a, input.b);
      const before = readFileSync(file);
      const r = await lanyard('add', file, input.a, input.ab);
      assert.equal(r.code, 0, r.err);
      assert.ok(readFileSync(file).equals(before));
      assert.deepEqual(readdirSync(dir), ['bundle.crt']);
    });

    it('replaces the file atomically: a new inode with the whole content, mode 0644, no temp files', async () => {
      const { dir, file } = await bundleOf(input.a);
      const inode = statSync(file).ino;
      const r = await lanyard('add', file, input.b);
      assert.equal(r.code, 0, r.err);
      const st = statSync(file);
      assert.notEqual(st.ino, inode, 'renamed into place, not rewritten in place');
      assert.equal(st.mode & 0o777, 0o644);
      assert.equal(readFileSync(file, 'utf8'), createTrustBundle([a.anchor.cert, b.anchor.cert]).toPem());
      assert.deepEqual(readdirSync(dir), ['bundle.crt']);
    });

    const refusals = [
      ['a file with a PRIVATE KEY block', 'withKey', 'ERR_PEM_UNEXPECTED_TYPE'],
      ['a file with a PEM header', 'withHeaders', 'ERR_PEM_HEADERS'],
      ['a workload leaf', 'leaf', 'ERR_NOT_CA'],
      ['a non-CA certificate', 'nonCa', 'ERR_NOT_CA'],
      ['garbage', 'garbage', 'ERR_PEM_MALFORMED'],
    ] as const;

    for (const [what, key, code] of refusals) {
      it(`refuses ${what} with exit 1 (${code}) and changes nothing on disk`, async () => {
        const { dir, file } = await bundleOf(input.a);
        const before = snapshot(dir);
        // the bad file comes after a good one: nothing of the good one may be written either
        assertRefused(await lanyard('add', file, input.b, input[key]), code);
        assert.deepEqual(snapshot(dir), before);
      });
    }

    it('refuses a bundle file that does not exist and creates nothing', async () => {
      const dir = work();
      assertRefused(await lanyard('add', join(dir, 'bundle.crt'), input.a), 'ERR_FILE_NOT_FOUND');
      assert.deepEqual(readdirSync(dir), []);
    });
  });

  describe('remove', () => {
    it('removes an anchor named by its full fingerprint', async () => {
      const { dir, file } = await bundleOf(input.a, input.b);
      const r = await lanyard('remove', file, fpA());
      assert.equal(r.code, 0, r.err);
      assert.equal(readFileSync(file, 'utf8'), b.anchorsPem);
      assert.equal(statSync(file).mode & 0o777, 0o644);
      assert.deepEqual(readdirSync(dir), ['bundle.crt']);
    });

    it('removes an anchor named by a fingerprint prefix without colons, in lower case', async () => {
      const { file } = await bundleOf(input.a, input.b);
      const hexA = fpA().replaceAll(':', '');
      const hexB = fpB().replaceAll(':', '');
      let len = 8;
      while (hexA.slice(0, len) === hexB.slice(0, len)) len += 2;
      const r = await lanyard('remove', file, hexA.slice(0, len).toLowerCase());
      assert.equal(r.code, 0, r.err);
      assert.equal(readFileSync(file, 'utf8'), b.anchorsPem);
    });

    it('removes an anchor named by its certificate file', async () => {
      const { file } = await bundleOf(input.a, input.b, input.rsa);
      const r = await lanyard('remove', file, input.b);
      assert.equal(r.code, 0, r.err);
      assert.equal(readFileSync(file, 'utf8'), createTrustBundle([a.anchor.cert, rsa.anchor.cert]).toPem());
    });

    it('refuses to remove the last anchor (ERR_FILE_INVALID) and changes nothing', async () => {
      const { dir, file } = await bundleOf(input.a);
      const before = snapshot(dir);
      assertRefused(await lanyard('remove', file, fpA()), 'ERR_FILE_INVALID');
      assertRefused(await lanyard('remove', file, input.a), 'ERR_FILE_INVALID');
      assert.deepEqual(snapshot(dir), before);
    });

    it('refuses a fingerprint, prefix or certificate that is not in the bundle and changes nothing', async () => {
      const { dir, file } = await bundleOf(input.a, input.b);
      const before = snapshot(dir);
      const absent = fingerprint(rsa.anchor.cert.der);
      for (const which of [absent, absent.replaceAll(':', '').slice(0, 20), input.rsa]) {
        assertRefused(await lanyard('remove', file, which), 'ERR_INVALID_REQUEST');
      }
      assert.deepEqual(snapshot(dir), before);
    });

    it('refuses an empty or non-hex anchor argument as naming no anchor', async () => {
      // one anchor: an argument that matched everything would select it (and hit the last-anchor rule)
      const { dir, file } = await bundleOf(input.a);
      const before = snapshot(dir);
      for (const which of ['', 'sha256:', 'zz']) {
        assertRefused(await lanyard('remove', file, which), 'ERR_INVALID_REQUEST');
      }
      assert.deepEqual(snapshot(dir), before);
    });

    it('refuses a certificate file that holds a private key and changes nothing', async () => {
      const { dir, file } = await bundleOf(input.a, input.b);
      const before = snapshot(dir);
      assertRefused(await lanyard('remove', file, input.withKey), 'ERR_PEM_UNEXPECTED_TYPE');
      assert.deepEqual(snapshot(dir), before);
    });
  });

  describe('export', () => {
    it('prints the PEM bundle on standard output', async () => {
      const { file } = await bundleOf(input.a, input.b);
      const r = await lanyard('export', file, '--format', 'pem');
      assert.equal(r.code, 0, r.err);
      assert.equal(`${r.out}\n`, readFileSync(file, 'utf8'));
    });

    it('prints a SPIFFE bundle with the given sequence and refresh hint', async () => {
      const { file } = await bundleOf(input.a, input.rsa);
      const r = await lanyard(
        'export',
        file,
        '--format',
        'spiffe',
        '--sequence',
        '9',
        '--refresh-hint',
        '60',
      );
      assert.equal(r.code, 0, r.err);
      const doc = JSON.parse(r.out) as {
        keys: { use: string; kty: string }[];
        spiffe_sequence: number;
        spiffe_refresh_hint: number;
      };
      assert.equal(doc.spiffe_sequence, 9);
      assert.equal(doc.spiffe_refresh_hint, 60);
      assert.deepEqual(
        doc.keys.map((k) => k.use),
        ['x509-svid', 'x509-svid'],
      );
      assert.deepEqual(doc.keys.map((k) => k.kty).sort(), ['EC', 'RSA']);
      assert.equal(parseSpiffeBundle(r.out, 'stdout').toPem(), readFileSync(file, 'utf8'));
    });

    it('prints a ConfigMap with the default or the given name, namespace and key', async () => {
      const { file } = await bundleOf(input.a, input.b);
      const pem = readFileSync(file, 'utf8');
      const dflt = await lanyard('export', file, '--format', 'configmap');
      assert.equal(dflt.code, 0, dflt.err);
      const d = parseYaml(dflt.out) as {
        kind: string;
        metadata: { name: string; namespace: string };
        data: Record<string, string>;
      };
      assert.equal(d.kind, 'ConfigMap');
      assert.equal(d.metadata.name, 'linkerd-identity-trust-roots');
      assert.equal(d.metadata.namespace, 'linkerd');
      assert.deepEqual(d.data, { 'ca-bundle.crt': pem });
      const custom = await lanyard(
        'export',
        file,
        '--format',
        'configmap',
        '--name',
        'roots',
        '--namespace',
        'mesh',
        '--key',
        'ca.crt',
      );
      assert.equal(custom.code, 0, custom.err);
      const c = parseYaml(custom.out) as typeof d;
      assert.equal(c.metadata.name, 'roots');
      assert.equal(c.metadata.namespace, 'mesh');
      assert.deepEqual(c.data, { 'ca.crt': pem });
    });

    it('writes each format with --out, exactly as printed on standard output', async () => {
      const { dir, file } = await bundleOf(input.a, input.b);
      for (const format of ['pem', 'spiffe', 'configmap']) {
        const out = join(dir, `export.${format}`);
        const printed = await lanyard('export', file, '--format', format);
        const written = await lanyard('export', file, '--format', format, '--out', out);
        assert.equal(written.code, 0, written.err);
        assert.equal(readFileSync(out, 'utf8'), `${printed.out}\n`, format);
        assert.equal(statSync(out).mode & 0o777, 0o644);
        // running again replaces the file
        assert.equal((await lanyard('export', file, '--format', format, '--out', out)).code, 0);
      }
      assert.deepEqual(readdirSync(dir).sort(), [
        'bundle.crt',
        'export.configmap',
        'export.pem',
        'export.spiffe',
      ]);
    });

    it('refuses an invalid ConfigMap name, namespace or key and writes nothing', async () => {
      const { dir, file } = await bundleOf(input.a);
      const before = snapshot(dir);
      const out = join(dir, 'cm.yaml');
      for (const flags of [
        ['--name', 'Bad_Name'],
        ['--namespace', 'a.b'],
        ['--key', '..data'],
      ]) {
        assertRefused(
          await lanyard('export', file, '--format', 'configmap', '--out', out, ...flags),
          'ERR_INVALID_REQUEST',
        );
      }
      assert.deepEqual(snapshot(dir), before);
    });

    it('exits 2 on usage errors: unknown format, a negative sequence, a missing --format', async () => {
      const { dir, file } = await bundleOf(input.a);
      const before = snapshot(dir);
      assert.equal((await lanyard('export', file, '--format', 'der')).code, 2);
      assert.equal((await lanyard('export', file, '--format', 'spiffe', '--sequence', '-1')).code, 2);
      assert.equal((await lanyard('export', file, '--format', 'spiffe', '--refresh-hint', '1.5')).code, 2);
      assert.equal((await lanyard('export', file)).code, 2);
      assert.deepEqual(snapshot(dir), before);
    });
  });

  describe('a whole workflow', () => {
    it('create → show → add (dedupe) → remove by fingerprint and by file → export', async () => {
      const dir = work();
      const file = join(dir, 'ca-bundle.crt');
      assert.equal((await lanyard('create', '--out', file, input.a)).code, 0);
      const show1 = JSON.parse((await lanyard('show', file, '--json')).out) as { fingerprint: string }[];
      assert.deepEqual(
        show1.map((x) => x.fingerprint),
        [fpA()],
      );

      assert.equal((await lanyard('add', file, input.b, input.a, input.rsa)).code, 0);
      const show2 = JSON.parse((await lanyard('show', file, '--json')).out) as { fingerprint: string }[];
      assert.equal(show2.length, 3);

      assert.equal((await lanyard('remove', file, fpA())).code, 0);
      assert.equal((await lanyard('remove', file, input.rsa)).code, 0);
      const show3 = JSON.parse((await lanyard('show', file, '--json')).out) as { fingerprint: string }[];
      assert.deepEqual(
        show3.map((x) => x.fingerprint),
        [fpB()],
      );

      const pem = await lanyard('export', file, '--format', 'pem');
      assert.equal(`${pem.out}\n`, b.anchorsPem);
      assert.deepEqual(readdirSync(dir), ['ca-bundle.crt']);
    });
  });
});
