import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { ConfigMap, type IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { parse as parseYaml } from 'yaml';
import { runLanyard, type InProcResult } from '../support/cli-inproc.js';
import { FakeClock } from '../support/clock.js';
import { testDir } from '../support/temp-dir.js';
import { type TestPki } from '../support/pki.js';
import { NOW, anchorsAt, cliCode } from './fixtures.js';

const clock = new FakeClock(NOW);
const lanyard = (...args: string[]): Promise<InProcResult> => runLanyard(['bundle', ...args], { clock });

describe('lanyard bundle export --format istio-configmap', () => {
  let a: TestPki;
  let b: TestPki;
  before(async () => {
    [a, b] = (await anchorsAt([0, 1])) as [TestPki, TestPki];
  });

  async function bundleOf(dir: string): Promise<string> {
    writeFileSync(join(dir, 'a.pem'), a.anchorsPem);
    writeFileSync(join(dir, 'b.pem'), b.anchorsPem);
    const file = join(dir, 'bundle.crt');
    const r = await lanyard('create', '--out', file, join(dir, 'a.pem'), join(dir, 'b.pem'));
    assert.equal(r.code, 0, r.err);
    return file;
  }

  it('prints a valid ConfigMap istio-system/istio-ca-root-cert with all anchors under root-cert.pem', async (t) => {
    const file = await bundleOf(testDir(t));
    const r = await lanyard('export', file, '--format', 'istio-configmap');
    assert.equal(r.code, 0, r.err);
    const doc = parseYaml(r.out) as IConfigMap;
    assert.doesNotThrow(() => {
      new ConfigMap(doc).validate();
    });
    assert.equal(doc.metadata?.name, 'istio-ca-root-cert');
    assert.equal(doc.metadata.namespace, 'istio-system');
    assert.deepEqual(doc.data, { 'root-cert.pem': readFileSync(file, 'utf8') });
  });

  it('takes --name and --namespace (one copy per workload namespace)', async (t) => {
    const file = await bundleOf(testDir(t));
    const r = await lanyard('export', file, '--format', 'istio-configmap', '--namespace', 'bookinfo');
    assert.equal(r.code, 0, r.err);
    const doc = parseYaml(r.out) as IConfigMap;
    assert.equal(doc.metadata?.name, 'istio-ca-root-cert');
    assert.equal(doc.metadata.namespace, 'bookinfo');
    const named = await lanyard('export', file, '--format', 'istio-configmap', '--name', 'roots');
    assert.equal((parseYaml(named.out) as IConfigMap).metadata?.name, 'roots');
  });

  it('writes with --out exactly what it prints (0644, replaced on the next run)', async (t) => {
    const dir = testDir(t);
    const file = await bundleOf(dir);
    const out = join(dir, 'istio-ca-root-cert.yaml');
    const printed = await lanyard('export', file, '--format', 'istio-configmap');
    const written = await lanyard('export', file, '--format', 'istio-configmap', '--out', out);
    assert.equal(written.code, 0, written.err);
    assert.equal(readFileSync(out, 'utf8'), `${printed.out}\n`);
    assert.equal(statSync(out).mode & 0o777, 0o644);
    assert.equal((await lanyard('export', file, '--format', 'istio-configmap', '--out', out)).code, 0);
  });

  it('refuses --key (Istio reads root-cert.pem only) with a usage error and an invalid namespace, writing nothing', async (t) => {
    const dir = testDir(t);
    const file = await bundleOf(dir);
    const before = readdirSync(dir).sort();
    const out = join(dir, 'cm.yaml');
    const key = await lanyard('export', file, '--format', 'istio-configmap', '--key', 'ca.crt', '--out', out);
    assert.equal(key.code, 2, key.err);
    const ns = await lanyard(
      'export',
      file,
      '--format',
      'istio-configmap',
      '--namespace',
      'a.b',
      '--out',
      out,
    );
    assert.equal(ns.code, 1, ns.err);
    assert.equal(cliCode(ns.err), 'ERR_INVALID_REQUEST');
    assert.deepEqual(readdirSync(dir).sort(), before);
  });
});
