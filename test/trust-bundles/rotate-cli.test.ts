import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { buildProgram } from '../../bin/cli/program.js';
import { fingerprint } from '../../ca/index.js';
import type { RotationStatus } from '../../trust-bundles/index.js';
import { checkInvocation } from '../support/cli-check.js';
import { runLanyard } from '../support/cli-inproc.js';
import { FakeClock, HOUR } from '../support/clock.js';
import { testDir } from '../support/temp-dir.js';
import { pem, rotationPki, START, type RotationPki } from './rotation-fixtures.js';

const CLUSTERS = ['east', 'west'] as const;

/** Directory clusters under A, B's anchor directory and the cross certificate file, written in `dir`. */
function writeMesh(
  dir: string,
  p: RotationPki,
): { args: string[]; bDir: string; aDir: string; cross: string } {
  const args: string[] = [];
  for (const c of CLUSTERS) {
    const d = join(dir, c);
    mkdirSync(d, { recursive: true, mode: 0o700 });
    const i = p.oldIssuer[c];
    assert.ok(i);
    writeFileSync(join(d, 'tls.crt'), pem(i.cert));
    writeFileSync(join(d, 'tls.key'), i.keyPem, { mode: 0o600 });
    writeFileSync(join(d, 'ca.crt'), pem(p.A.cert));
    args.push('--cluster', `${c}=${d}`);
  }
  const anchorDir = (name: string, a: RotationPki['A']): string => {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true, mode: 0o700 });
    chmodSync(d, 0o700);
    writeFileSync(join(d, 'anchor.crt'), pem(a.cert));
    writeFileSync(join(d, 'anchor.key'), a.keyPem, { mode: 0o600 });
    return d;
  };
  const cross = join(dir, 'cross.crt');
  writeFileSync(cross, pem(p.cross));
  return { args, bDir: anchorDir('anchor-b', p.B), aDir: anchorDir('anchor-a', p.A), cross };
}

/** Every `lanyard …` line of the output, checked against the real command tree. */
function invocationProblems(out: string): { line: string; code: string }[] {
  const program = buildProgram({
    clock: new FakeClock(START),
    env: {},
    out: () => undefined,
    err: () => undefined,
  });
  return out
    .split('\n')
    .map((l) => /^\s*lanyard (.+?)(?: \|.*)?$/.exec(l)?.[1])
    .filter((x): x is string => x !== undefined)
    .flatMap((inv) => {
      const p = checkInvocation(program, inv);
      return p === undefined ? [] : [{ line: inv, code: p.code }];
    });
}

describe('lanyard rotate plan', () => {
  let p: RotationPki;
  before(async () => {
    p = await rotationPki();
  });

  it('prints the six phases, every printed command a real one, never copying ca.crt', async (t) => {
    const m = writeMesh(testDir(t, 'lanyard-plan-'), p);
    const clock = new FakeClock(START);
    const r = await runLanyard(
      ['rotate', 'plan', ...m.args, '--new-anchor', m.bDir, '--cross-signed', m.cross],
      { clock },
    );
    assert.equal(r.code, 0, r.err);
    for (const n of [1, 2, 3, 4, 5, 6]) assert.ok(r.out.includes(`Phase ${n}:`));
    assert.deepEqual(invocationProblems(r.out), []);
    assert.ok(!/cp .*ca\.crt/.test(r.out));
  });

  it('--json: the phases as data, with their preconditions', async (t) => {
    const m = writeMesh(testDir(t, 'lanyard-plan-'), p);
    const r = await runLanyard(
      ['rotate', 'plan', ...m.args, '--new-anchor', m.bDir, '--cross-signed', m.cross, '--json'],
      { clock: new FakeClock(START) },
    );
    assert.equal(r.code, 0, r.err);
    const plan = JSON.parse(r.out) as { phases: { phase: number; action: string; requires: string[] }[] };
    assert.deepEqual(
      plan.phases.map((x) => x.action),
      [
        'prepare',
        'switch-issuers',
        'add-new-anchor',
        'wait-old-leaves',
        'drop-old-anchors',
        'stop-serving-cross',
      ],
    );
    assert.deepEqual(plan.phases[1]?.requires, ['cross-reaches-every-bundle', 'cross-not-expired']);
    assert.ok(plan.phases[4]?.requires.includes('old-leaves-expired'));
  });

  it('refuses without the cross certificate, naming the missing input (exit 2, ERR_ROTATION_INPUT_MISSING)', async (t) => {
    const m = writeMesh(testDir(t, 'lanyard-plan-'), p);
    const r = await runLanyard(['rotate', 'plan', ...m.args, '--new-anchor', m.bDir], {
      clock: new FakeClock(START),
    });
    assert.equal(r.code, 2);
    assert.ok(r.err.includes('(ERR_ROTATION_INPUT_MISSING)'), r.err);
    assert.equal(r.out, '');
    const absent = await runLanyard(
      [
        'rotate',
        'plan',
        ...m.args,
        '--new-anchor',
        m.bDir,
        '--cross-signed',
        join(m.cross, '..', 'nope.crt'),
      ],
      { clock: new FakeClock(START) },
    );
    assert.equal(absent.code, 2);
    assert.ok(absent.err.includes('(ERR_ROTATION_INPUT_MISSING)'), absent.err);
  });

  it('prints the cross-sign command when the file is still to be made from --old-anchor', async (t) => {
    const m = writeMesh(testDir(t, 'lanyard-plan-'), p);
    const out = join(m.cross, '..', 'cross-next.crt');
    const r = await runLanyard(
      ['rotate', 'plan', ...m.args, '--new-anchor', m.bDir, '--cross-signed', out, '--old-anchor', m.aDir],
      { clock: new FakeClock(START) },
    );
    assert.equal(r.code, 0, r.err);
    assert.ok(
      r.out.includes(`lanyard anchor cross-sign --anchor ${m.aDir} --subject ${m.bDir} --out ${out}`),
    );
  });

  it('--renew-after: phase 1 carries the serve flags of the renewal hint; a time that is not RFC 3339 is a usage error', async (t) => {
    const m = writeMesh(testDir(t, 'lanyard-plan-'), p);
    const base = ['rotate', 'plan', ...m.args, '--new-anchor', m.bDir, '--cross-signed', m.cross];
    const clock = new FakeClock(START);
    const r = await runLanyard(
      [...base, '--renew-after', '2030-01-01T06:00:00Z', '--renew-spread', '15m', '--json'],
      {
        clock,
      },
    );
    assert.equal(r.code, 0, r.err);
    const plan = JSON.parse(r.out) as { phases: { phase: number; steps: { notes?: string[] }[] }[] };
    const notes = plan.phases[0]?.steps.flatMap((x) => x.notes ?? []) ?? [];
    assert.ok(
      notes.some((n) => n.includes('--renew-after 2030-01-01T06:00:00Z --renew-spread 15m')),
      notes.join('\n'),
    );
    assert.equal((await runLanyard([...base, '--renew-after', 'tomorrow'], { clock })).code, 2);
    // what serve --renew-after refuses, plan refuses too (one RFC 3339 reader): no 30 February, no
    // 24:00; the usage status (2), as for any ERR_USAGE
    for (const time of ['2026-02-30T00:00:00Z', '2026-07-01T24:00:00Z']) {
      const refused = await runLanyard([...base, '--renew-after', time], { clock });
      assert.equal(refused.code, 2, `${time}: ${refused.out}`);
    }
    assert.equal(
      (
        await runLanyard([...base, '--renew-after', '2030-01-01T06:00:00Z', '--renew-spread', 'soon'], {
          clock,
        })
      ).code,
      2,
    );
    // a spread without the time it spreads is refused, as serve refuses it
    assert.equal((await runLanyard([...base, '--renew-spread', '15m'], { clock })).code, 2);
    // without --renew-spread the window is 10m
    const plain = await runLanyard([...base, '--renew-after', '2030-01-01T06:00:00Z', '--json'], { clock });
    assert.equal(plain.code, 0, plain.err);
    assert.match(plain.out, /--renew-after 2030-01-01T06:00:00Z --renew-spread 10m/);
  });

  it('refuses a cross certificate that is not for the new anchor (ERR_ROTATION_INPUT_INVALID)', async (t) => {
    const m = writeMesh(testDir(t, 'lanyard-plan-'), p);
    writeFileSync(m.cross, pem(p.A.cert));
    const r = await runLanyard(
      ['rotate', 'plan', ...m.args, '--new-anchor', m.bDir, '--cross-signed', m.cross],
      {
        clock: new FakeClock(START),
      },
    );
    assert.equal(r.code, 2);
    assert.ok(r.err.includes('(ERR_ROTATION_INPUT_INVALID)'), r.err);
  });
});

describe('lanyard rotate status: exit codes', () => {
  let p: RotationPki;
  before(async () => {
    p = await rotationPki();
  });

  it('0 in steady state; 3 when the next step lacks an input; 0 once it can be established', async (t) => {
    const m = writeMesh(testDir(t, 'lanyard-status-'), p);
    const clock = new FakeClock(START);
    assert.equal((await runLanyard(['rotate', 'status', ...m.args], { clock })).code, 0);
    const lacking = await runLanyard(['rotate', 'status', ...m.args, '--new-anchor', m.bDir, '--json'], {
      clock,
    });
    assert.equal(lacking.code, 3, lacking.err);
    const s = JSON.parse(lacking.out) as RotationStatus;
    assert.equal(s.next.action, 'switch-issuers');
    assert.deepEqual(s.next.missing, ['cross-signed']);
    const given = await runLanyard(
      ['rotate', 'status', ...m.args, '--new-anchor', m.bDir, '--cross-signed', m.cross],
      {
        clock,
      },
    );
    assert.equal(given.code, 0, given.out);
    assert.deepEqual(invocationProblems(given.out), []);
  });

  it('1 when trust is broken now: a bundle without the anchor its peer’s issuer chains to', async (t) => {
    const m = writeMesh(testDir(t, 'lanyard-status-'), p);
    writeFileSync(join(m.args[3]?.split('=')[1] ?? '', 'ca.crt'), pem(p.B.cert));
    const r = await runLanyard(['rotate', 'status', ...m.args], { clock: new FakeClock(START) });
    assert.equal(r.code, 1);
  });

  it('3 while old leaves may be valid (phase 4), 0 once dropping A is safe (phase 5)', async (t) => {
    const m = writeMesh(testDir(t, 'lanyard-status-'), p);
    for (const c of CLUSTERS) {
      const d = join(m.cross, '..', c);
      const i = p.newIssuer[c];
      assert.ok(i);
      writeFileSync(join(d, 'tls.crt'), pem(i.cert, p.cross));
      writeFileSync(join(d, 'tls.key'), i.keyPem, { mode: 0o600 });
      writeFileSync(join(d, 'ca.crt'), pem(p.A.cert, p.B.cert));
    }
    // the bound counts from when the issuer files changed (their ctime: the real time of the writes)
    const changed = Math.max(...CLUSTERS.map((c) => statSync(join(m.cross, '..', c, 'tls.crt')).ctimeMs));
    const wait = await runLanyard(['rotate', 'status', ...m.args, '--json'], {
      clock: new FakeClock(changed + HOUR),
    });
    assert.equal(wait.code, 3, wait.out);
    const s = JSON.parse(wait.out) as RotationStatus;
    assert.equal(s.phase, 4);
    assert.equal(s.next.action, 'wait-old-leaves');
    const later = await runLanyard(['rotate', 'status', ...m.args, '--json'], {
      clock: new FakeClock(changed + 30 * HOUR),
    });
    assert.equal(later.code, 0, later.out);
    const s2 = JSON.parse(later.out) as RotationStatus;
    assert.equal(s2.next.action, 'drop-old-anchors');
    assert.ok(s2.next.commands.some((c) => c.commands.some((l) => l.includes(fingerprint(p.A.cert.der)))));
  });

  it('--new-anchor as a fingerprint: found in a bundle it is used; found nowhere it is a usage error (ERR_ROTATION_INPUT_INVALID)', async (t) => {
    const m = writeMesh(testDir(t, 'lanyard-status-'), p);
    const clock = new FakeClock(START);
    const nowhere = await runLanyard(
      ['rotate', 'status', ...m.args, '--new-anchor', fingerprint(p.B.cert.der)],
      { clock },
    );
    assert.equal(nowhere.code, 2);
    assert.ok(nowhere.err.includes('(ERR_ROTATION_INPUT_INVALID)'), nowhere.err);
    for (const c of CLUSTERS) writeFileSync(join(m.cross, '..', c, 'ca.crt'), pem(p.A.cert, p.B.cert));
    const found = await runLanyard(
      ['rotate', 'status', ...m.args, '--new-anchor', fingerprint(p.B.cert.der).slice(0, 20), '--json'],
      { clock },
    );
    const s = JSON.parse(found.out) as RotationStatus;
    assert.equal(s.newAnchor?.fingerprint, fingerprint(p.B.cert.der));
    assert.equal(s.next.action, 'switch-issuers');
  });

  it('refuses a --kubeconfig for a cluster it was not given (exit 2)', async (t) => {
    const m = writeMesh(testDir(t, 'lanyard-status-'), p);
    const r = await runLanyard(['rotate', 'status', ...m.args, '--kubeconfig', 'north=/dev/null'], {
      clock: new FakeClock(START),
    });
    assert.equal(r.code, 2);
  });

  it('--propagation-margin takes 0s (every replica given) but not a negative or bad duration (exit 2)', async (t) => {
    const m = writeMesh(testDir(t, 'lanyard-status-'), p);
    const clock = new FakeClock(START);
    for (const [value, code] of [
      ['0s', 0],
      ['0', 0],
      ['90s', 0],
      ['-1s', 2],
      ['soon', 2],
    ] as const) {
      const r = await runLanyard(['rotate', 'status', ...m.args, '--propagation-margin', value], { clock });
      assert.equal(r.code, code, `${value}: ${r.err}`);
    }
  });
});
