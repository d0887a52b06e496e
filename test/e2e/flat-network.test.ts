import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { renewalLagMs, renewalMarginMs, runFlatNetworkStory } from '../../bin/demo/story.js';
import {
  canUseNetns,
  guardProcess,
  interrupted,
  listOwnNamespaces,
  registerCleanup,
  removeStaleNamespaces,
} from '../../bin/demo/topology.js';
import { REPO_ROOT } from '../support/cli.js';
import { waitFor } from '../support/wait.js';
import { defer } from '../support/cleanup.js';

const mode = canUseNetns() ? 'netns' : 'loopback';
// From here on SIGINT, SIGTERM or SIGHUP (or the test runner going away) runs every registered
// teardown — the in-process story's, the demo children's — and ends this file: no further test starts.
guardProcess();

/**
 * Lets a signal already delivered to this process be handled (registerCleanup's handler ends the file)
 * before a test starts new work: a test that fails because the signal killed its children settles in
 * promise callbacks, so the runner could otherwise start the next test before the signal is seen.
 */
async function notInterrupted(): Promise<void> {
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(interrupted(), undefined);
}

/** Processes still alive whose command line names a run's work directory (each of its processes does). */
function leftoverProcesses(workDir: string): string[] {
  const r = spawnSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.includes(workDir) && !l.includes('ps -eo'));
}

/** Starts `npm run demo`'s program and waits until its output matches `ready`. */
interface Demo {
  readonly child: ChildProcess;
  readonly demoPid: number;
  readonly workDir: string;
}

async function startDemo(ready: RegExp): Promise<Demo> {
  const argv = [process.execPath, '--import', 'tsx', join(REPO_ROOT, 'bin', 'demo.ts')];
  const child = spawn(argv[0] as string, argv.slice(1), {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LANYARD_FLATNET_PARENT_PID: String(process.pid) },
  });
  // from its first moment: an interrupt while it starts must end it too
  const stop = registerCleanup(() => child.kill('SIGTERM'));
  child.once('exit', stop);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(
    () => {
      assert.ok(child.exitCode === null, `the demo exited early: ${out}`);
      return ready.test(out);
    },
    `the demo to print ${String(ready)}`,
    { timeoutMs: 120_000, intervalMs: 100 },
  );
  const demoPid = child.pid as number;
  const workDir = /(\/\S*lanyard-flatnet-[^/\s]+)\//.exec(out)?.[1];
  assert.ok(workDir !== undefined && existsSync(workDir), `no work directory in the output: ${out}`);
  return { child, demoPid, workDir };
}

describe(`two clusters on one flat network (${mode} mode)`, () => {
  it('verifies pods across clusters directly, refuses the bad ones for the right reason, and rotates the anchor by cross-signing under traffic between three generations of pods with no failed handshake and no pod restarted', async (t) => {
    await notInterrupted();
    // only namespaces whose owning process is dead: a concurrent run on this host keeps its own
    if (mode === 'netns') removeStaleNamespaces();
    t.diagnostic(
      `flat-network e2e mode: ${mode === 'netns' ? 'network namespaces on a bridge' : 'loopback addresses 127.0.x.y (namespaces unavailable)'}`,
    );
    process.stdout.write(`# flat-network e2e mode: ${mode}\n`);
    let runId = '';
    let workDir = '';
    const s = await runFlatNetworkStory({
      rate: 1,
      onTopology: (_teardown, topo, work) => {
        runId = topo.runId;
        workDir = work;
      },
    });
    assert.equal(s.mode, mode);
    assert.deepEqual(s.crossCluster.openssl, { 'west->east': true, 'east->west': true });
    assert.deepEqual(s.crossCluster.node, { 'west->east': true, 'east->west': true });
    assert.equal(s.crossCluster.spiffeSeen, true, "each side saw the other's SPIFFE ID");
    const { untrustedAnchor, wrongIdentity, expired, opensslUntrustedClient } = s.negatives;
    // The reason each was refused: the east pod's verify error for the client's certificate (Node drops
    // the connection without an alert, so the client sees only the close), or the client's identity check.
    assert.deepEqual(
      [untrustedAnchor, wrongIdentity, expired].map((o) => ({
        ok: o.ok,
        code: o.code,
        serverCode: o.serverCode,
      })),
      [
        { ok: false, code: 'ERR_CLOSED_BEFORE_ECHO', serverCode: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' },
        { ok: false, code: 'ERR_PEER_IDENTITY_MISMATCH', serverCode: undefined },
        { ok: false, code: 'ERR_CLOSED_BEFORE_ECHO', serverCode: 'CERT_HAS_EXPIRED' },
      ],
    );
    // X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: the client's chain ends at an anchor the server lacks
    assert.deepEqual(opensslUntrustedClient, { ok: false, serverVerifyError: 20 });
    const r = s.rotation;
    t.diagnostic(
      `rotation: ${r.handshakes} handshakes, ${r.failed} failed, ${r.viaCross} through the cross certificate, ${Math.round(r.durationMs)} ms; phases ${r.phases.map((p) => `${p.phase}:${Math.round(p.durationMs)}ms/${p.handshakes}`).join(' ')}; gates: ${JSON.stringify(r.gate)}; ${JSON.stringify(r.cleanupGate)}`,
    );
    process.stdout.write(`# rotation under traffic: ${r.handshakes} handshakes, ${r.failed} failed\n`);
    assert.deepEqual(r.failures, []);
    assert.equal(r.failed, 0);
    assert.equal(r.listenerRefusals, 0, 'no listener refused a client during the rotation');
    // Phases 1 to 6, each with the pods that were in the mesh when it ended: generation A until phase 5,
    // AB from phase 3, B from phase 5.
    assert.deepEqual(
      r.phases.map((p) => [p.phase, [...p.live].sort()]),
      [
        [1, ['east-A', 'west-A']],
        [2, ['east-A', 'west-A']],
        [3, ['east-A', 'east-AB', 'west-A', 'west-AB']],
        [4, ['east-A', 'east-AB', 'west-A', 'west-AB']],
        [5, ['east-A', 'east-AB', 'east-B', 'west-A', 'west-AB', 'west-B']],
        [6, ['east-AB', 'east-B', 'west-AB', 'west-B']],
      ],
    );
    // every pair of running pods, across clusters, both directions, made handshakes in every phase
    for (const p of r.phases)
      for (const a of p.live)
        for (const b of p.live.filter((x) => x.split('-')[0] !== a.split('-')[0]))
          assert.ok(
            (r.pairs[`${a}->${b}`]?.[p.phase] ?? 0) >= 1,
            `phase ${p.phase}: no handshake ${a}->${b}`,
          );
    assert.equal(Object.keys(r.pairs).length, 18, '3 × 3 pod pairs, both directions');
    assert.ok(r.viaCross >= 1, 'pods trusting only A accepted peers through the cross certificate');
    // the phase-4 gate opened by rotate status (its --json phase, next.action, next.safe), not before
    // the issuers' own bound (switch + leaf lifetime + skew)
    assert.deepEqual(r.gate, {
      phase: 4,
      action: 'drop-old-anchors',
      safe: true,
      openedBy: 'rotate-status',
      early: false,
    });
    // what rotate status --json said at the end of each phase: the old anchor could not be dropped while
    // old leaves lived (phase 3), nor the cross certificate stopped while pods trusting only A ran (phase 5)
    assert.deepEqual(
      r.phases.map((p) => p.status),
      [
        { phase: 1, action: 'switch-issuers', safe: true },
        { phase: 2, action: 'add-new-anchor', safe: true },
        { phase: 4, action: 'wait-old-leaves', safe: false },
        { phase: 4, action: 'drop-old-anchors', safe: true },
        { phase: 5, action: 'wait-old-proxies', safe: false },
        { phase: 'steady', action: 'none', safe: true },
      ],
    );
    // the clean-up gate: rotate status, reading each cluster's pods (the Kubernetes API stand-in),
    // once the pods trusting only A were gone
    assert.deepEqual(r.cleanupGate, { phase: 5, action: 'stop-serving-cross', safe: true });
    assert.equal(s.finalCheckExit, 0);
    // Every leaf the B-issuers answered with the cross certificate verifies with openssl
    // -x509_strict -purpose sslclient and sslserver against {A} alone and against {B} alone; those
    // answered after the clean-up, against {B}.
    const l = s.leafChecks;
    t.diagnostic(`leaf checks: ${JSON.stringify({ ...l, failures: l.failures.slice(0, 3) })}`);
    assert.deepEqual(l.failures, []);
    assert.ok(l.withCross >= 6, `${l.withCross} leaves with the cross certificate`);
    assert.equal(l.okUnderA, l.withCross);
    assert.equal(l.okUnderB, l.withCross);
    assert.ok(l.withoutCross >= 4, 'every pod running at the end renewed without the cross certificate');
    assert.equal(l.okWithoutCrossUnderB, l.withoutCross);
    // Every pod certificate came through the proxy-faithful client over TLS, as a Linkerd proxy gets
    // it: no ALPN negotiated, none failed, each issuer counted the proxies' connections as no_alpn and
    // none as h2; no pod restarted; each renewal made by the proxy's timer, at or after the renewed
    // answer's refreshAt (70 % of its valid_until) and in place before its valid_until.

    const expected = {
      'east-A': ['root-a'],
      'west-A': ['root-a'],
      'east-AB': ['root-a', 'root-b'],
      'west-AB': ['root-a', 'root-b'],
      'east-B': ['root-b'],
      'west-B': ['root-b'],
    };
    assert.deepEqual(Object.keys(s.identity.pods).sort(), Object.keys(expected).sort());
    for (const [name, pod] of Object.entries(s.identity.pods)) {
      t.diagnostic(
        `${name} (${pod.trusts.join(' + ')}): ${pod.certified} certificates, ${pod.restarts} restarts, renewals ms after refreshAt ${JSON.stringify(pod.renewals.map(renewalLagMs))}, ms left before valid_until ${JSON.stringify(pod.renewals.map(renewalMarginMs))}, served by ${pod.servedBy.length} serving certificates`,
      );
      assert.deepEqual(
        pod.trusts.map((x) => x.replace(/\..*$/, '')),
        expected[name as keyof typeof expected],
        `${name} read the bundle of its time at start`,
      );
      assert.deepEqual(pod.failures, []);
      assert.deepEqual(pod.alpn, [false]);
      assert.equal(pod.restarts, 0, `${name} was not restarted`);
      assert.ok(pod.renewals.length >= 1, `${name} renewed`);
      for (const x of pod.renewals) {
        const at = (iso: string): number => Date.parse(iso); // NaN (every comparison false) if missing
        assert.ok(
          at(x.refreshAt) < at(x.validUntil),
          `${name}: refreshAt before valid_until ${JSON.stringify(x)}`,
        );
        assert.ok(
          at(x.requestedAt) >= at(x.refreshAt),
          `${name}: renewed at or after refreshAt ${JSON.stringify(x)}`,
        );
        assert.ok(
          at(x.answeredAt) < at(x.validUntil),
          `${name}: renewed before valid_until ${JSON.stringify(x)}`,
        );
      }
      assert.equal(pod.certified, 1 + pod.renewals.length, 'one start, then renewals only');
    }
    // generation A saw the serving chain under A, then [serving, issuer_B, cross]
    for (const c of ['east', 'west']) {
      assert.ok((s.identity.pods[`${c}-A`]?.servedBy.length ?? 0) >= 2, `${c}-A followed the serving chain`);
      const certified = Object.values(s.identity.pods)
        .filter((p) => p.cluster === c)
        .reduce((n, p) => n + p.certified, 0);
      const tls = s.identity.tlsConnections[c] ?? {};
      assert.ok((tls.no_alpn ?? 0) >= certified, JSON.stringify(tls));
      assert.equal(tls.h2 ?? 0, 0);
    }
    // a proxy started with only the old anchor after the switch is accepted: the serving chain and its
    // leaf reach A through the cross certificate
    assert.deepEqual(
      { ok: s.identity.staleProxy.ok, kind: s.identity.staleProxy.kind, code: s.identity.staleProxy.code },
      { ok: true, kind: undefined, code: undefined },
    );
    assert.deepEqual(listOwnNamespaces(runId), []);
    assert.equal(existsSync(workDir), false);
    assert.deepEqual(leftoverProcesses(workDir), []);
  });

  it('leaves no namespace, veth, file or process behind when the demo is interrupted with SIGINT', async (t) => {
    await notInterrupted();
    // once the issuers, pods and their processes are all up
    const demo = await startDemo(/pod holds/);
    defer(t, () => {
      demo.child.kill('SIGKILL');
    });
    const own = listOwnNamespaces(String(demo.demoPid));
    if (mode === 'netns') assert.equal(own.length, 5, 'a switch and four hosts while the demo runs');
    assert.ok(leftoverProcesses(demo.workDir).length > 0, 'the demo has processes running');
    const started = performance.now();
    const exited = new Promise<number | null>((resolve) => demo.child.once('exit', resolve));
    demo.child.kill('SIGINT');
    assert.equal(await exited, 130);
    t.diagnostic(
      `hygiene (${mode} mode): SIGINT, cleaned up in ${Math.round(performance.now() - started)} ms`,
    );
    // The bridge and every veth end live inside the run's namespaces, so none can outlive them.
    assert.deepEqual(listOwnNamespaces(String(demo.demoPid)), [], 'no namespace left');
    assert.equal(existsSync(demo.workDir), false, 'no work directory left');
    await waitFor(() => leftoverProcesses(demo.workDir).length === 0, 'its processes to be gone', {
      timeoutMs: 15_000,
      intervalMs: 100,
    });
  });

  it('removes a topology and its processes when the process that made it is orphaned (its parent died)', async (t) => {
    await notInterrupted();
    // A small owner instead of the whole demo (same registerCleanup path, a fraction of the time): it
    // builds a topology, starts a process on each host and waits. Its parent, a shell, is SIGKILLed.
    const script = [
      `const { createTopology } = await import(${JSON.stringify(join(REPO_ROOT, 'bin', 'demo', 'topology.ts'))});`,
      `const topo = createTopology(['a', 'b']);`,
      `for (const h of Object.values(topo.hosts)) topo.spawnOn(h, 'sleep', ['600']);`,
      `console.log('run ' + topo.runId);`,
      `setInterval(() => undefined, 1000);`,
    ].join('\n');
    const sh = spawn(
      'sh',
      [
        '-c',
        '"$@" & echo "owner-pid $!"; wait',
        'sh',
        process.execPath,
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        script,
      ],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    // the shell only: its child, the owner, must notice its parent is gone on its own
    const stopShell = registerCleanup(() => sh.kill('SIGKILL'));
    let out = '';
    sh.stdout.on('data', (d: Buffer) => (out += d.toString()));
    sh.stderr.on('data', (d: Buffer) => (out += d.toString()));
    defer(t, () => {
      stopShell();
      sh.kill('SIGKILL');
      const owner = Number(/owner-pid (\d+)/.exec(out)?.[1]);
      // a failed run must not leave the owner holding this file's output open
      if (owner > 0 && existsSync(`/proc/${owner}`)) process.kill(owner, 'SIGTERM');
    });
    await waitFor(() => /run \S+/.test(out), 'the topology owner to start', {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    const runId = /run (\S+)/.exec(out)?.[1] ?? '';
    const owner = Number(/owner-pid (\d+)/.exec(out)?.[1]);
    const kids = (): string[] =>
      spawnSync('ps', ['-o', 'pid=', '--ppid', String(owner)], { encoding: 'utf8' })
        .stdout.trim()
        .split(/\s+/)
        .filter(Boolean);
    if (mode === 'netns') assert.equal(listOwnNamespaces(runId).length, 3, 'a switch and two hosts');
    const children = kids();
    assert.equal(children.length, 2, 'a process on each host');
    const started = performance.now();
    sh.kill('SIGKILL');
    await waitFor(() => !existsSync(`/proc/${owner}`), 'the orphaned owner to exit', {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    t.diagnostic(
      `hygiene (${mode} mode): parent exit, cleaned up in ${Math.round(performance.now() - started)} ms`,
    );
    assert.deepEqual(listOwnNamespaces(runId), [], 'no namespace left');
    await waitFor(() => children.every((pid) => !existsSync(`/proc/${pid}`)), 'its processes to be gone', {
      timeoutMs: 15_000,
      intervalMs: 100,
    });
  });

  it('removes only the namespaces whose owning process is dead, never those of a live concurrent run', async (t) => {
    await notInterrupted();
    t.diagnostic(`stale-namespace check (${mode} mode)`);
    if (mode !== 'netns') {
      assert.deepEqual(removeStaleNamespaces(), []);
      return;
    }
    const dead = spawnSync('true').pid; // exited: its pid names a dead owner
    const names = {
      live: `lyd-${process.pid}-aa0001-0`,
      dead: `lyd-${dead}-aa0002-0`,
      reused: `lyd-${process.pid}-aa0003-0`,
    };
    const start = readFileSync(`/proc/${process.pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19] ?? '';
    mkdirSync('/run/lanyard-flatnet', { recursive: true });
    writeFileSync(`/run/lanyard-flatnet/${process.pid}-aa0001`, start);
    writeFileSync(`/run/lanyard-flatnet/${process.pid}-aa0003`, '1'); // same pid, another start time
    for (const ns of Object.values(names)) spawnSync('ip', ['netns', 'add', ns]);
    defer(t, () => {
      for (const ns of Object.values(names)) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      rmSync(`/run/lanyard-flatnet/${process.pid}-aa0001`, { force: true });
      rmSync(`/run/lanyard-flatnet/${process.pid}-aa0003`, { force: true });
    });
    const removed = removeStaleNamespaces();
    assert.ok(removed.includes(names.dead) && removed.includes(names.reused), removed.join(' '));
    assert.ok(!removed.includes(names.live));
    assert.deepEqual(listOwnNamespaces(`${process.pid}-aa0001`), [names.live]);
  });
});
