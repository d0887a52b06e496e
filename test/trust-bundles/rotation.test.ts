import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fingerprint, type CertificateInfo } from '../../ca/index.js';
import { createTrustBundle } from '../../trust-bundles/bundle.js';
import { OFFLINE_DEFAULTS, rotationStatus, type RotationStatus } from '../../trust-bundles/rotation.js';
import type { AnchorIssuanceRecord, ClusterSnapshot } from '../../trust-bundles/sources.js';
import { runLanyard } from '../support/cli-inproc.js';
import { FakeClock, HOUR } from '../support/clock.js';
import { tempDir } from '../support/temp-dir.js';
import { testPki, type TestPki } from '../support/pki.js';

const START = Date.parse('2030-01-01T00:00:00Z');
const SKEW = 20_000;
const LIFETIME = 24 * HOUR;

/** An online cluster (ADMIN_URL) as loadCluster would read it from /v1/status and /v1/bundle. */
function adminCluster(
  name: string,
  o: {
    bundle: readonly CertificateInfo[];
    issuer: CertificateInfo;
    records?: readonly AnchorIssuanceRecord[];
    loadedAt: number;
  },
): ClusterSnapshot {
  return {
    name,
    source: `http://${name}:9990`,
    kind: 'admin',
    bundle: createTrustBundle(o.bundle),
    issuerChain: [o.issuer],
    issuedByAnchor: o.records ?? [],
    issuance: { credentialLoadedAt: new Date(o.loadedAt), leafLifetimeMs: LIFETIME, clockSkewMs: SKEW },
  };
}

/** An offline cluster (ISSUER_DIR) whose issuer files last changed at `changedAt`. */
function dirCluster(
  name: string,
  o: { bundle: readonly CertificateInfo[]; issuer: CertificateInfo; changedAt: number },
): ClusterSnapshot {
  return {
    name,
    source: `/srv/${name}`,
    kind: 'dir',
    bundle: createTrustBundle(o.bundle),
    issuerChain: [o.issuer],
    issuedByAnchor: undefined,
    issuance: undefined,
    bundlePath: `/srv/${name}/ca.crt`,
    issuerFilesChangedAt: new Date(o.changedAt),
  };
}

const issuerOf = (p: TestPki, c: string): CertificateInfo => {
  const i = p.issuers[c];
  assert.ok(i);
  return i.cert;
};

describe('rotation planner: an anchor removed while leaves under it are valid', () => {
  let oldPki: TestPki;
  let newPki: TestPki;
  before(async () => {
    oldPki = await testPki({ now: new Date(START - 48 * HOUR), clusters: ['east', 'west'] });
    newPki = await testPki({ now: new Date(START - 2 * HOUR), clusters: ['east', 'west'] });
  });

  /**
   * Phase 2, then west's issuer restarts (its record is gone), then the old anchor leaves both bundles.
   * East still records leaves under the old anchor valid for 20 h more.
   */
  function afterRestartAndRemoval(bundle: readonly CertificateInfo[]): ClusterSnapshot[] {
    const oldRecord = {
      anchorFingerprint: fingerprint(oldPki.anchor.cert.der),
      latestNotAfter: new Date(START + 20 * HOUR).toISOString(),
    };
    return [
      adminCluster('east', {
        bundle,
        issuer: issuerOf(newPki, 'east'),
        records: [oldRecord],
        loadedAt: START - 4 * HOUR,
      }),
      adminCluster('west', { bundle, issuer: issuerOf(newPki, 'west'), loadedAt: START - HOUR }),
    ];
  }

  it('is UNSAFE, never steady-and-safe, with the time the removal would have become safe', () => {
    const s = rotationStatus(afterRestartAndRemoval([newPki.anchor.cert]), new Date(START));
    assert.equal(s.phase, 'steady');
    assert.equal(s.next.safe, false);
    assert.equal(s.next.action, 'repair');
    assert.ok(s.problems.length > 0, 'rotate status exits 1');
    assert.deepEqual(s.earlyRemovals, [
      {
        anchorFingerprint: fingerprint(oldPki.anchor.cert.der),
        clusters: ['east', 'west'],
        // west restarted: its earlier process's old leaves are bounded by loadedAt + lifetime + 2 × skew,
        // later than east's record
        safeAfter: new Date(START - HOUR + LIFETIME + 2 * SKEW).toISOString(),
      },
    ]);
  });

  it('is UNSAFE when the old anchor left only one bundle, even though a restart emptied one record', () => {
    const both = [oldPki.anchor.cert, newPki.anchor.cert];
    const [east, west] = afterRestartAndRemoval(both) as [ClusterSnapshot, ClusterSnapshot];
    const s = rotationStatus(
      [east, { ...west, bundle: createTrustBundle([newPki.anchor.cert]) }],
      new Date(START),
    );
    assert.equal(s.phase, 2);
    assert.equal(s.next.safe, false);
    assert.deepEqual(
      s.earlyRemovals.map((r) => [r.anchorFingerprint, r.clusters]),
      [[fingerprint(oldPki.anchor.cert.der), ['west']]],
    );
  });

  it('after the anchor is put back, waits until that time and then calls removal safe', () => {
    const both = [oldPki.anchor.cert, newPki.anchor.cert];
    const safeAfter = START - HOUR + LIFETIME + 2 * SKEW;
    let s = rotationStatus(afterRestartAndRemoval(both), new Date(START));
    assert.equal(s.phase, 2);
    assert.deepEqual(s.problems, []);
    assert.equal(s.next.waitUntil, new Date(safeAfter).toISOString());
    s = rotationStatus(afterRestartAndRemoval(both), new Date(safeAfter + 1));
    assert.equal(s.phase, 3);
    assert.equal(s.next.safe, true);
  });

  it('is steady and safe with no old-leaf bound once no leaf under the removed anchor can be valid', () => {
    // a fresh restart of both issuers long after the rotation: nothing old to bound
    const restarted = afterRestartAndRemoval([newPki.anchor.cert]).map((c) => ({
      ...c,
      issuance: {
        credentialLoadedAt: new Date(START + 70 * HOUR),
        leafLifetimeMs: LIFETIME,
        clockSkewMs: SKEW,
      },
    }));
    const s = rotationStatus(restarted, new Date(START + 71 * HOUR));
    assert.equal(s.phase, 'steady');
    assert.equal(s.next.safe, true);
    assert.deepEqual(s.problems, []);
    assert.deepEqual(
      s.clusters.map((c) => c.oldLeavesValidUntil),
      [null, null],
    );
    // but both records start an hour ago: what came before is reported as unseen, not as absent
    const until = new Date(START + 70 * HOUR + LIFETIME + 2 * SKEW).toISOString();
    assert.deepEqual(s.recordGaps, [
      { cluster: 'east', since: new Date(START + 70 * HOUR).toISOString(), until },
      { cluster: 'west', since: new Date(START + 70 * HOUR).toISOString(), until },
    ]);
    const later = rotationStatus(restarted, new Date(START + 95 * HOUR));
    assert.deepEqual(later.recordGaps, []);
  });
});

describe('rotation planner: directory clusters', () => {
  let oldPki: TestPki;
  let newPki: TestPki;
  before(async () => {
    oldPki = await testPki({ now: new Date(START - 48 * HOUR), clusters: ['east', 'west'] });
    newPki = await testPki({ now: new Date(START - 2 * HOUR), clusters: ['east', 'west'] });
  });

  const phase2 = (changed: { east: number; west: number }): ClusterSnapshot[] =>
    (['east', 'west'] as const).map((n) =>
      dirCluster(n, {
        bundle: [oldPki.anchor.cert, newPki.anchor.cert],
        issuer: issuerOf(newPki, n),
        changedAt: changed[n],
      }),
    );

  it('bounds old leaves by the issuer files change + poll + max leaf lifetime + 2 × skew, then reaches phase 3', () => {
    const changed = { east: START, west: START + HOUR };
    const safeAt =
      START +
      HOUR +
      OFFLINE_DEFAULTS.pollIntervalMs +
      OFFLINE_DEFAULTS.maxLeafLifetimeMs +
      2 * OFFLINE_DEFAULTS.clockSkewMs;
    let s = rotationStatus(phase2(changed), new Date(START + 2 * HOUR));
    assert.equal(s.phase, 2);
    assert.equal(s.next.safe, false);
    assert.equal(s.next.waitUntil, new Date(safeAt).toISOString());
    assert.deepEqual(
      s.clusters.map((c) => c.oldLeavesBasis),
      ['issuer-files-changed', 'issuer-files-changed'],
    );
    s = rotationStatus(phase2(changed), new Date(safeAt));
    assert.equal(s.phase, 2, 'not before the bound has passed');
    s = rotationStatus(phase2(changed), new Date(safeAt + 1));
    assert.equal(s.phase, 3);
    assert.equal(s.next.action, 'remove-old-anchors');
    assert.equal(s.next.safe, true);
  });

  it('takes the longest leaf lifetime and poll interval it is told', () => {
    const offline = { pollIntervalMs: 60_000, maxLeafLifetimeMs: 48 * HOUR, clockSkewMs: 1000 };
    const s = rotationStatus(phase2({ east: START, west: START }), new Date(START + 30 * HOUR), { offline });
    assert.equal(s.phase, 2);
    assert.equal(s.next.waitUntil, new Date(START + 60_000 + 48 * HOUR + 2000).toISOString());
  });

  it('flags an early removal from a directory bundle', () => {
    const [east, west] = phase2({ east: START, west: START }) as [ClusterSnapshot, ClusterSnapshot];
    const s = rotationStatus(
      [east, { ...west, bundle: createTrustBundle([newPki.anchor.cert]) }],
      new Date(START + HOUR),
    );
    assert.ok(s.problems.length > 0);
    assert.equal(s.earlyRemovals[0]?.anchorFingerprint, fingerprint(oldPki.anchor.cert.der));
  });
});

describe('lanyard rotate with directory clusters', () => {
  const clock = new FakeClock(START);
  let dir: string;
  let cleanup: () => void;
  before(() => {
    ({ dir, cleanup } = tempDir('lanyard-rotate-dir-'));
  });
  after(() => {
    cleanup();
  });

  const status = async (args: readonly string[]): Promise<{ code: number; s: RotationStatus }> => {
    const r = await runLanyard(['rotate', 'status', ...args, '--json'], { clock });
    assert.notEqual(r.code, 2, r.err);
    return { code: r.code, s: JSON.parse(r.out) as RotationStatus };
  };

  it('prints no "new anchor" and no old-leaf bound in steady state', async () => {
    const pki = await testPki({ now: clock.now(), clusters: ['east'] });
    const d = join(dir, 'steady');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'tls.crt'), pki.issuers.east?.certPem as string);
    writeFileSync(join(d, 'tls.key'), pki.issuers.east?.keyPem as string, { mode: 0o600 });
    writeFileSync(join(d, 'ca.crt'), pki.anchorsPem);
    const r = await runLanyard(['rotate', 'status', '--cluster', `east=${d}`], { clock });
    assert.equal(r.code, 0, r.out);
    assert.ok(!/new anchor|old anchor|valid until/.test(r.out), r.out);
    assert.ok(/^next: none — safe/m.test(r.out), r.out);
  });

  it('follows the printed plan for two directory clusters through phase 3 to steady, waiting as told', async () => {
    const pki = await testPki({ now: new Date(START - 48 * HOUR), clusters: ['east', 'west'] });
    const work = join(dir, 'plan');
    for (const c of ['east', 'west']) {
      mkdirSync(join(work, c), { recursive: true });
      writeFileSync(join(work, c, 'tls.crt'), pki.issuers[c]?.certPem as string);
      writeFileSync(join(work, c, 'tls.key'), pki.issuers[c]?.keyPem as string, { mode: 0o600 });
      writeFileSync(join(work, c, 'ca.crt'), pki.anchorsPem);
    }
    assert.equal((await runLanyard(['anchor', 'create', '--out', join(work, 'next')], { clock })).code, 0);
    const clusters = ['--cluster', `east=${join(work, 'east')}`, '--cluster', `west=${join(work, 'west')}`];
    const plan = await runLanyard(
      ['rotate', 'plan', ...clusters, '--new-anchor', join(work, 'next'), '--max-leaf-lifetime', '1h'],
      { clock },
    );
    assert.equal(plan.code, 0, plan.err);
    const lines = plan.out.split('\n').map((l) => l.trim());
    const statusLine = lines.find((l) => l.startsWith('lanyard rotate status '));
    assert.ok(
      statusLine?.includes('--max-leaf-lifetime'),
      'the status command carries the lifetime it was given',
    );
    const statusArgs = (statusLine as string).split(' ').slice(3);
    const section = (from: string, to: string): string[] =>
      lines.slice(
        lines.findIndex((l) => l.startsWith(from)) + 1,
        lines.findIndex((l) => l.startsWith(to)),
      );
    // Relative paths in the plan (NAME-issuer-next) are made under the work directory.
    const abs = (w: string): string => (/^[a-z]+-issuer-next/.test(w) ? join(work, w) : w);
    const run = async (cmds: readonly string[]): Promise<void> => {
      for (const l of cmds) {
        const words = l.split(' ').map(abs);
        if (words[0] === 'lanyard') {
          const r = await runLanyard(words.slice(1), { clock });
          assert.equal(r.code, 0, `${l}: ${r.err}`);
        } else if (words[0] === 'cp') {
          const to = words.at(-1) as string;
          for (const f of words.slice(1, -1)) {
            const target = join(to, f.split('/').at(-1) as string);
            copyFileSync(f, target);
            // the copy happens "now" on the fake clock (later than the real ctime)
            utimesSync(target, clock.now(), clock.now());
          }
        }
      }
    };

    await run(section('Phase 1', 'Phase 2'));
    assert.equal((await status(statusArgs)).s.phase, 1);
    clock.advance(HOUR);
    await run(section('Phase 2', 'Phase 3'));
    let st = await status(statusArgs);
    assert.equal(st.s.phase, 2);
    assert.equal(st.s.next.safe, false);
    const waitUntil = Date.parse(st.s.next.waitUntil ?? '');
    assert.equal(waitUntil, clock.now().getTime() + 2000 + HOUR + 40_000);
    assert.deepEqual(
      st.s.clusters.map((c) => c.oldLeavesBasis),
      ['issuer-files-changed', 'issuer-files-changed'],
    );
    clock.set(waitUntil + 1000);
    st = await status(statusArgs);
    assert.equal(st.s.phase, 3);
    assert.equal(st.s.next.safe, true);
    await run(section('Phase 3', 'Finally'));
    st = await status(statusArgs);
    assert.equal(st.s.phase, 'steady');
    assert.equal(st.code, 0);
  });
});
