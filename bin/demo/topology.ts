// A flat network of test hosts: Linux network namespaces on one bridge (veth pairs), or, where
// namespaces cannot be made (not root, no `ip`), distinct loopback addresses on this host.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type TopologyMode = 'netns' | 'loopback';

export interface Host {
  readonly name: string;
  /** the host's own address on the flat network */
  readonly address: string;
  /** the namespace it lives in (netns mode) */
  readonly netns?: string;
}

export interface Topology {
  readonly mode: TopologyMode;
  /** `<owner pid>-<random hex>`; netns mode names its namespaces `lyd-<runId>-<host index | sw>` */
  readonly runId: string;
  readonly hosts: Readonly<Record<string, Host>>;
  /** starts a process on a host (inside its namespace in netns mode) and tracks it for cleanup */
  spawnOn(host: Host, command: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
  /** runs a command on a host and waits for it */
  runOn(
    host: Host,
    command: string,
    args: readonly string[],
    options?: { input?: string; timeoutMs?: number },
  ): { code: number; stdout: string; stderr: string };
  /** kills every process started on the topology and removes namespaces, bridge and veths; idempotent */
  destroy(): void;
}

const NETNS_PREFIX = 'lyd';
/** One marker file per live run: `<runId>` holding the owner's start time (see ownerAlive). */
const MARKER_DIR = '/run/lanyard-flatnet';

/** True when this process can build namespaces: root and `ip` present. */
export function canUseNetns(): boolean {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  const r = spawnSync('ip', ['netns', 'list'], { stdio: 'ignore' });
  return r.status === 0;
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat); undefined when it is gone. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: count from the last ')'
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** The run of namespace `lyd-<pid>-<hex>-<host>`, or undefined for a name of another shape. */
function runOf(ns: string): { runId: string; pid: number } | undefined {
  const m = /^lyd-(\d+)-([0-9a-f]+)-/.exec(ns);
  return m === null ? undefined : { runId: `${m[1] ?? ''}-${m[2] ?? ''}`, pid: Number(m[1]) };
}

/** The owner of a run is alive: its pid exists and, when the marker recorded one, has the same start time (no pid reuse). */
function ownerAlive(run: { runId: string; pid: number }): boolean {
  const started = processStartTime(run.pid);
  if (started === undefined) return false;
  try {
    return readFileSync(join(MARKER_DIR, run.runId), 'utf8').trim() === started;
  } catch {
    return true;
  }
}

function allNamespaces(): string[] | undefined {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`${NETNS_PREFIX}-`));
}

/**
 * Removes namespaces (and the processes in them) left by runs whose owning process is dead, e.g. killed
 * with SIGKILL. Namespaces of a run whose owner still lives (a concurrent run on this host) are kept.
 * Names without an owner pid (the format before owners were recorded) count as stale.
 */
export function removeStaleNamespaces(): string[] {
  const stale = (allNamespaces() ?? []).filter((ns) => {
    const run = runOf(ns);
    return run === undefined || !ownerAlive(run);
  });
  for (const ns of stale) {
    killNamespaceProcesses(ns);
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    const run = runOf(ns);
    if (run !== undefined) rmSync(join(MARKER_DIR, run.runId), { force: true });
  }
  return stale;
}

/** Namespaces of runs of this module still present (for hygiene checks): all of them, or those of one run. */
export function listOwnNamespaces(runId?: string): string[] {
  return (allNamespaces() ?? []).filter((n) =>
    runId === undefined ? true : n.startsWith(`${NETNS_PREFIX}-${runId}-`),
  );
}

function killNamespaceProcesses(ns: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((p) => /^\d+$/.test(p));
  for (const pid of pids) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

// --- Cleanup when this process is interrupted or orphaned.
// Handlers are installed once and never removed: removing a listener while a signal is still queued
// would swallow that signal and let the process carry on (start the next test) with nothing cleaned up.
const cleanups = new Set<() => void>();
let guarded = false;
let interruptedBy: NodeJS.Signals | 'parent-exit' | undefined;
const SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

function runCleanups(): void {
  for (const fn of [...cleanups]) {
    cleanups.delete(fn);
    try {
      fn();
    } catch {
      // best effort: the others still run
    }
  }
}

/** Why this process was told to stop (a signal, or its parent went away), if it was. */
export function interrupted(): NodeJS.Signals | 'parent-exit' | undefined {
  return interruptedBy;
}

/**
 * Runs `fn` (synchronous, idempotent) when this process gets SIGINT, SIGTERM or SIGHUP (then exits with
 * 128 + signal number), when its parent process goes away (checked every 250 ms against
 * LANYARD_FLATNET_PARENT_PID or the parent at installation; exits 129), and at
 * exit (also after an uncaught exception). Returns a function that unregisters `fn` without running it.
 */
export function registerCleanup(fn: () => void): () => void {
  guardProcess();
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

/** Installs registerCleanup's signal, parent-exit and exit handlers now (idempotent); from then on those signals end the process. */
export function guardProcess(): void {
  if (!guarded) {
    guarded = true;
    for (const [sig, n] of Object.entries(SIGNALS) as [NodeJS.Signals, number][]) {
      process.on(sig, () => {
        interruptedBy ??= sig;
        runCleanups();
        process.exit(128 + n);
      });
    }
    process.on('exit', runCleanups);
    // The parent that started this process may already be gone by now (a process started just before
    // its parent was interrupted): LANYARD_FLATNET_PARENT_PID, when set, names the expected parent.
    const expected = Number(process.env.LANYARD_FLATNET_PARENT_PID);
    const parent = Number.isInteger(expected) && expected > 0 ? expected : process.ppid;
    setInterval(() => {
      if (process.ppid !== parent && cleanups.size > 0) {
        interruptedBy ??= 'parent-exit';
        runCleanups();
        process.exit(129);
      }
    }, 250).unref();
  }
}

function ip(args: readonly string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr.trim()}`);
}

/**
 * netns mode: the run's marker, a switch namespace with a bridge, and per host a namespace joined to
 * the bridge by a veth pair. Every namespace made is pushed to `namespaces` at once, so that a failure
 * half-way still removes it.
 */
function buildNetns(o: {
  runId: string;
  subnet: number;
  names: readonly string[];
  namespaces: string[];
  hosts: Record<string, Host>;
}): void {
  const { runId, subnet, names, namespaces, hosts } = o;
  mkdirSync(MARKER_DIR, { recursive: true });
  writeFileSync(join(MARKER_DIR, runId), processStartTime(process.pid) ?? '');
  const sw = `${NETNS_PREFIX}-${runId}-sw`;
  ip(['netns', 'add', sw]);
  namespaces.push(sw);
  ip(['-n', sw, 'link', 'add', 'br0', 'type', 'bridge']);
  ip(['-n', sw, 'link', 'set', 'br0', 'up']);
  ip(['-n', sw, 'link', 'set', 'lo', 'up']);
  names.forEach((name, i) => {
    const ns = `${NETNS_PREFIX}-${runId}-${i}`;
    ip(['netns', 'add', ns]);
    namespaces.push(ns);
    const address = `10.213.${subnet}.${i + 1}`;
    // Create the pair inside the switch namespace, then move one end into the host's namespace.
    ip(['-n', sw, 'link', 'add', `h${i}`, 'type', 'veth', 'peer', 'name', 'eth0']);
    ip(['-n', sw, 'link', 'set', 'eth0', 'netns', ns]);
    ip(['-n', sw, 'link', 'set', `h${i}`, 'master', 'br0']);
    ip(['-n', sw, 'link', 'set', `h${i}`, 'up']);
    ip(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
    ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
    ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    hosts[name] = Object.freeze({ name, address, netns: ns });
  });
}

/** The command and arguments that run `command args` on `host` (inside its namespace in netns mode). */
function onHost(host: Host, command: string, args: readonly string[]): [string, string[]] {
  return host.netns !== undefined
    ? ['ip', ['netns', 'exec', host.netns, command, ...args]]
    : [command, [...args]];
}

/**
 * Everything it makes is removed by `destroy()`, and by registerCleanup's handlers when this process is
 * interrupted or orphaned. Builds hosts `names` on one L2 segment. netns mode: namespace `lyd-<pid>-<hex>-<i>` per host, a bridge in
 * its own namespace, a veth pair per host, addresses 10.213.<k>.<i+1>/24 (private, inside the
 * namespaces only: nothing is routed to or from this machine's own interfaces). Loopback mode:
 * 127.0.<k>.<i+1>, which Linux routes to lo without configuration.
 */
export function createTopology(names: readonly string[], options: { mode?: TopologyMode } = {}): Topology {
  const mode = options.mode ?? (canUseNetns() ? 'netns' : 'loopback');
  const hex = randomBytes(3).toString('hex');
  const runId = `${process.pid}-${hex}`;
  const subnet = (parseInt(hex.slice(0, 2), 16) % 200) + 20;
  const children = new Set<ChildProcess>();
  const namespaces: string[] = [];
  const hosts: Record<string, Host> = {};
  let destroyed = false;

  const destroy = (): void => {
    if (destroyed) return;
    destroyed = true;
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        try {
          c.kill('SIGKILL');
        } catch {
          // gone
        }
      }
    }
    for (const ns of namespaces) killNamespaceProcesses(ns);
    // Deleting a namespace deletes the veth ends in it, and with them their peers in the bridge namespace.
    for (const ns of [...namespaces].reverse()) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    if (mode === 'netns') rmSync(join(MARKER_DIR, runId), { force: true });
    unregister();
  };
  const unregister = registerCleanup(destroy);

  try {
    if (mode === 'netns') buildNetns({ runId, subnet, names, namespaces, hosts });
    else {
      names.forEach((name, i) => {
        hosts[name] = Object.freeze({ name, address: `127.0.${subnet}.${i + 1}` });
      });
    }
  } catch (err) {
    destroy();
    throw err;
  }

  return {
    mode,
    runId,
    hosts,
    spawnOn(host, command, args, spawnOptions = {}) {
      const [cmd, argv] = onHost(host, command, args);
      const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...spawnOptions });
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    runOn(host, command, args, o = {}) {
      const [cmd, argv] = onHost(host, command, args);
      const r = spawnSync(cmd, argv, {
        encoding: 'utf8',
        input: o.input ?? '',
        timeout: o.timeoutMs ?? 60_000,
      });
      return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
    },
    destroy,
  };
}
