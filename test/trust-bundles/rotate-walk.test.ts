import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';
import { systemClock } from '../../ca/index.js';
import type { RotationPlan, RotationStatus } from '../../trust-bundles/index.js';
import { buildProgram } from '../../bin/cli/program.js';
import { checkInvocation } from '../support/cli-check.js';
import { runLanyard } from '../support/cli-inproc.js';
import { FakeClock, HOUR } from '../support/clock.js';
import { testDir } from '../support/temp-dir.js';

describe('rotate plan, run for real on issuer directories, phase by phase', () => {
  it('every printed command runs, and rotate status follows the phases to steady', async (t) => {
    const dir = testDir(t, 'lanyard-walk-');
    const cwd = process.cwd();
    // the plan names the new issuer directories relative to where it is run (east-issuer-next)
    process.chdir(dir);
    t.after(() => {
      process.chdir(cwd);
    });
    const clock = new FakeClock(systemClock.now());
    const run = async (args: string[], code = 0): Promise<string> => {
      const r = await runLanyard(args, { clock });
      assert.equal(r.code, code, `lanyard ${args.join(' ')}\n${r.out}\n${r.err}`);
      return r.out;
    };
    /** a printed command: `lanyard …` in process, `cp FILES… DIR/` as the shell would */
    const exec = async (line: string): Promise<void> => {
      const words = line.split(/\s+/);
      if (words[0] === 'lanyard') {
        await run(words.slice(1));
        return;
      }
      assert.equal(words[0], 'cp', line);
      const dest = words[words.length - 1] ?? '';
      for (const f of words.slice(1, -1)) copyFileSync(f, join(dest, basename(f)));
    };
    const phase = async (plan: RotationPlan, n: number): Promise<void> => {
      const ph = plan.phases.find((x) => x.phase === n);
      assert.ok(ph);
      for (const step of ph.steps) for (const c of step.commands) await exec(c);
    };
    const clusters = ['--cluster', 'east=east', '--cluster', 'west=west'];
    const given = ['--new-anchor', 'B', '--cross-signed', 'cross.crt'];
    const program = buildProgram({ clock, env: {}, out: () => undefined, err: () => undefined });
    /** rotate status --json; every command of its next step parses with the real command tree */
    const status = async (code: number, extra: string[] = given): Promise<RotationStatus> => {
      const s = JSON.parse(
        await run(['rotate', 'status', ...clusters, ...extra, '--json'], code),
      ) as RotationStatus;
      const lines = s.next.commands.flatMap((c) => c.commands);
      const invocations = lines.flatMap((l) => /^lanyard (.+?)(?: \|.*)?$/.exec(l)?.[1] ?? []);
      assert.deepEqual(
        invocations.map((inv) => checkInvocation(program, inv)).filter((x) => x !== undefined),
        [],
        lines.join('\n'),
      );
      return s;
    };

    await run(['anchor', 'create', '--out', 'A']);
    for (const c of ['east', 'west'])
      await run(['issuer', 'create', '--anchor', 'A', '--cluster', c, '--out', c]);
    await run(['anchor', 'create', '--out', 'B']);
    assert.equal((await status(0, [])).phase, 'steady');

    const plan = JSON.parse(
      await run(['rotate', 'plan', ...clusters, ...given, '--old-anchor', 'A', '--json']),
    ) as RotationPlan;
    await phase(plan, 1);
    let s = await status(0);
    assert.equal(s.next.action, 'switch-issuers');
    assert.equal(s.next.commands.length, 2);

    clock.advance(HOUR);
    await phase(plan, 2);
    s = await status(0);
    assert.deepEqual(
      s.clusters.map((c) => c.issuer.kind),
      ['new-with-cross', 'new-with-cross'],
    );
    assert.equal(s.next.action, 'add-new-anchor');

    await phase(plan, 3);
    s = await status(3);
    assert.equal(s.phase, 4);
    assert.equal(s.next.action, 'wait-old-leaves');

    clock.advance(25 * HOUR);
    s = await status(0);
    assert.equal(s.next.action, 'drop-old-anchors');
    await phase(plan, 5);
    s = await status(3);
    assert.equal(s.next.action, 'wait-old-proxies');
    assert.deepEqual(s.next.missing, ['kubeconfig']);

    await phase(plan, 6);
    s = await status(0);
    assert.equal(s.phase, 'steady');
    await run(['check', ...clusters]);
  });
});
