import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runFlatNetworkStory } from '../../bin/demo/story.js';
import { canUseNetns, listOwnNamespaces, removeStaleNamespaces } from '../../bin/demo/topology.js';
import { REPO_ROOT } from '../support/cli.js';

const mode = canUseNetns() ? 'netns' : 'loopback';

/** Processes of a flat-network run still alive (their command lines name its work directory or the pod agent). */
function leftoverProcesses(): string[] {
  const r = spawnSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => /lanyard-flatnet-|pod-agent/.test(l) && !l.includes('ps -eo'));
}

describe(`two clusters on one flat network (${mode} mode)`, () => {
  it('verifies pods across clusters directly, refuses the bad ones, and rotates the anchor under traffic with no failed handshake', async (t) => {
    if (mode === 'netns') removeStaleNamespaces();
    t.diagnostic(
      `flat-network e2e mode: ${mode === 'netns' ? 'network namespaces on a bridge' : 'loopback addresses 127.0.x.y (namespaces unavailable)'}`,
    );
    process.stdout.write(`# flat-network e2e mode: ${mode}\n`);
    let teardown: (() => void) | undefined;
    const onSignal = (): void => {
      teardown?.();
      process.exit(130);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      const s = await runFlatNetworkStory({
        rate: 5,
        onTopology: (fn) => {
          teardown = fn;
        },
      });
      assert.equal(s.mode, mode);
      assert.deepEqual(s.crossCluster.openssl, { 'west->east': true, 'east->west': true });
      assert.deepEqual(s.crossCluster.node, { 'west->east': true, 'east->west': true });
      assert.equal(s.crossCluster.spiffeSeen, true, 'each side saw the SPIFFE ID of the other');
      assert.deepEqual(s.negatives, {
        untrustedAnchorRefused: true,
        wrongIdentityRefused: true,
        expiredRefused: true,
      });
      t.diagnostic(
        `rotation: ${s.rotation.handshakes} handshakes, ${s.rotation.failed} failed, ${Math.round(s.rotation.durationMs)} ms`,
      );
      process.stdout.write(
        `# rotation under traffic: ${s.rotation.handshakes} handshakes, ${s.rotation.failed} failed\n`,
      );
      assert.ok(s.rotation.handshakes >= 50, `only ${s.rotation.handshakes} handshakes`);
      assert.deepEqual(s.rotation.failures, []);
      assert.equal(s.rotation.failed, 0);
      assert.ok(s.rotation.phases.some((p) => p.includes('phase 1')));
      assert.ok(s.rotation.phases.some((p) => p.includes('phase 2') && p.includes('not safe')));
      assert.ok(
        s.rotation.phases.some((p) => p.includes('phase 3') && p.includes('remove-old-anchors (safe)')),
      );
      assert.equal(s.finalCheckExit, 0);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    assert.deepEqual(listOwnNamespaces(), []);
    assert.deepEqual(leftoverProcesses(), []);
  });

  it('leaves no namespace, veth or process behind when the demo is interrupted with SIGINT', async () => {
    const demo = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'bin', 'demo.ts')], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    demo.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => demo.once('exit', resolve));
    const start = performance.now();
    // Interrupt once the issuers, pods and their processes are all up.
    while (!out.includes('pod holds')) {
      assert.ok(demo.exitCode === null, `the demo exited early: ${out}`);
      assert.ok(performance.now() - start < 60_000, 'the demo did not get its pods up');
      await new Promise((r) => setTimeout(r, 100));
    }
    if (mode === 'netns') assert.ok(listOwnNamespaces().length > 0, 'namespaces exist while the demo runs');
    demo.kill('SIGINT');
    assert.equal(await exited, 130);
    assert.deepEqual(listOwnNamespaces(), [], 'no namespace left');
    // The bridge and every veth end live inside the run's namespaces, so none can outlive them.
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(leftoverProcesses(), [], 'no process left');
  });
});
