// A flat network of test hosts: Linux network namespaces on one bridge (veth pairs), or, where
// namespaces cannot be made (not root, no `ip`), distinct loopback addresses on this host.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';

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

/** True when this process can build namespaces: root and `ip` present. */
export function canUseNetns(): boolean {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  const r = spawnSync('ip', ['netns', 'list'], { stdio: 'ignore' });
  return r.status === 0;
}

/** Removes namespaces left by an earlier run that was killed too hard to clean up (SIGKILL). */
export function removeStaleNamespaces(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  const stale = r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`${NETNS_PREFIX}-`));
  for (const ns of stale) {
    killNamespaceProcesses(ns);
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
  return stale;
}

/** Namespaces of runs of this module still present (for hygiene checks). */
export function listOwnNamespaces(runId?: string): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(runId === undefined ? `${NETNS_PREFIX}-` : `${NETNS_PREFIX}-${runId}-`));
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

function ip(args: readonly string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr.trim()}`);
}

/**
 * Builds hosts `names` on one L2 segment. netns mode: namespace `lyd-<run>-<i>` per host, a bridge in
 * its own namespace, a veth pair per host, addresses 10.213.<k>.<i+1>/24 (private, inside the
 * namespaces only: nothing is routed to or from this machine's own interfaces). Loopback mode:
 * 127.0.<k>.<i+1>, which Linux routes to lo without configuration.
 */
export function createTopology(names: readonly string[], options: { mode?: TopologyMode } = {}): Topology {
  const mode = options.mode ?? (canUseNetns() ? 'netns' : 'loopback');
  const runId = randomBytes(3).toString('hex');
  const subnet = (parseInt(runId.slice(0, 2), 16) % 200) + 20;
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
  };

  try {
    if (mode === 'netns') {
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
    } else {
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
    hosts,
    spawnOn(host, command, args, spawnOptions = {}) {
      const [cmd, argv] =
        host.netns !== undefined
          ? ['ip', ['netns', 'exec', host.netns, command, ...args]]
          : [command, [...args]];
      const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...spawnOptions });
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    runOn(host, command, args, o = {}) {
      const [cmd, argv] =
        host.netns !== undefined
          ? ['ip', ['netns', 'exec', host.netns, command, ...args]]
          : [command, [...args]];
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
