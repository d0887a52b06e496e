import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodePem } from '../../ca/index.js';
import type { CheckReport } from '../../trust-bundles/check.js';
import { runLanyard } from '../support/cli-inproc.js';
import { DAY, FakeClock, HOUR } from '../support/clock.js';
import { tempDir } from '../support/temp-dir.js';
import { testPki, type TestPki } from '../support/pki.js';
import { writeIssuerDir } from '../support/issuer.js';

describe('lanyard check', () => {
  const clock = new FakeClock('2026-06-01T00:00:00Z');
  let dir: string;
  let cleanup: () => void;
  let pki: TestPki;
  let other: TestPki;

  const clusterDir = (name: string, p: TestPki, cluster: string): string => {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true });
    writeIssuerDir(d, p, cluster);
    return d;
  };
  const run = async (
    args: string[],
    at: FakeClock = clock,
  ): Promise<{ code: number; report: CheckReport }> => {
    const r = await runLanyard(['check', ...args, '--json'], { clock: at });
    return { code: r.code, report: JSON.parse(r.out) as CheckReport };
  };
  const failing = (r: CheckReport): string[] =>
    r.findings.filter((f) => f.severity !== 'ok').map((f) => `${f.cluster ?? 'mesh'}:${f.check}`);

  before(async () => {
    ({ dir, cleanup } = tempDir('lanyard-check-'));
    pki = await testPki({ now: clock.now(), clusters: ['east', 'west'], issuerLifetimeMs: 30 * DAY });
    other = await testPki({ now: clock.now(), clusters: ['rogue'] });
  });
  after(() => {
    cleanup();
  });

  it('exits 0 for a healthy pair of clusters', async () => {
    const r = await run([
      '--cluster',
      `east=${clusterDir('h-east', pki, 'east')}`,
      '--cluster',
      `west=${clusterDir('h-west', pki, 'west')}`,
    ]);
    assert.deepEqual(failing(r.report), []);
    assert.equal(r.code, 0);
  });

  it('exits 3 when an issuer expires within the warning window', async () => {
    const later = new FakeClock(clock.now().getTime() + 25 * DAY);
    const r = await run(
      ['--cluster', `east=${join(dir, 'h-east')}`, '--cluster', `west=${join(dir, 'h-west')}`],
      later,
    );
    assert.equal(r.code, 3);
    assert.deepEqual(failing(r.report).sort(), ['east:issuer-expiring', 'west:issuer-expiring']);
    const wider = await runLanyard(['check', '--cluster', `east=${join(dir, 'h-east')}`, '--warn', '1d'], {
      clock: later,
    });
    assert.equal(wider.code, 0, 'a narrower window does not warn');
  });

  it('exits 1 for an expired issuer', async () => {
    const late = new FakeClock(clock.now().getTime() + 31 * DAY);
    const r = await run(
      ['--cluster', `east=${join(dir, 'h-east')}`, '--cluster', `west=${join(dir, 'h-west')}`],
      late,
    );
    assert.equal(r.code, 1);
    assert.ok(failing(r.report).includes('east:issuer-expired'));
  });

  it("exits 1 for an issuer the other cluster's bundle does not trust", async () => {
    const rogue = clusterDir('rogue', other, 'rogue');
    // The rogue cluster's bundle holds both anchors, so it trusts east; east's bundle lacks the rogue anchor.
    writeFileSync(join(rogue, 'ca.crt'), other.anchorsPem + pki.anchorsPem);
    const r = await run(['--cluster', `east=${join(dir, 'h-east')}`, '--cluster', `rogue=${rogue}`]);
    assert.equal(r.code, 1);
    assert.ok(failing(r.report).includes('rogue:issuer-untrusted-by-peer'), failing(r.report).join(' '));
    assert.ok(!failing(r.report).includes('east:issuer-untrusted-by-peer'));
  });

  it('exits 1 when an anchor is missing from one cluster', async () => {
    const west = clusterDir('m-west', pki, 'west');
    writeFileSync(join(west, 'ca.crt'), pki.anchorsPem + encodePem('CERTIFICATE', other.anchor.cert.der));
    const r = await run(['--cluster', `east=${join(dir, 'h-east')}`, '--cluster', `west=${west}`]);
    assert.equal(r.code, 1);
    assert.deepEqual(failing(r.report), ['mesh:anchor-missing']);
  });

  it('exits 1 when an anchor has expired, and 3 when one expires within 60 days', async () => {
    const shortPki = await testPki({
      now: clock.now(),
      anchorLifetimeMs: 50 * DAY,
      issuerLifetimeMs: 10 * HOUR,
    });
    const d = clusterDir('short', shortPki, 'east');
    const soon = await run(['--cluster', `east=${d}`], new FakeClock(clock.now().getTime() + HOUR));
    assert.ok(failing(soon.report).includes('east:anchor-expiring'));
    assert.equal(soon.code, 3);
    const gone = await run(['--cluster', `east=${d}`], new FakeClock(clock.now().getTime() + 51 * DAY));
    assert.ok(failing(gone.report).includes('east:anchor-expired'));
    assert.equal(gone.code, 1);
  });

  it('exits 2 on a malformed --cluster value', async () => {
    assert.equal((await runLanyard(['check', '--cluster', 'no-equals-sign'])).code, 2);
  });
});
