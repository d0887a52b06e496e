// Linux /proc readings of a process tree: CPU time in clock ticks, resident set sizes in KiB.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';

/** Clock ticks per second (`getconf CLK_TCK`), the unit of utime/stime in /proc/<pid>/stat. */
export function clockTicksPerSecond(): number {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    if (Number.isInteger(n) && n > 0) return n;
  } catch {
    // getconf missing: Linux has used 100 on every common architecture
  }
  return 100;
}

/** The fields of /proc/<pid>/stat after the command name, indexed so that field n is at [n - 3]. */
function statFields(path: string): string[] | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  // the command name is in parentheses and may itself contain spaces and parentheses
  return text
    .slice(text.lastIndexOf(')') + 2)
    .trim()
    .split(' ');
}

const field = (f: string[], n: number): number => Number(f[n - 3] ?? 0);

/** `pid` and every process descended from it (parent links read from /proc/<pid>/stat). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(`/proc/${name}/stat`);
    if (f === undefined) continue;
    const ppid = field(f, 4);
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const todo = [pid];
  while (todo.length > 0) {
    const p = todo.pop() as number;
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out;
}

export interface CpuSample {
  /** per process: utime + stime + cutime + cstime, clock ticks (cutime/cstime: reaped children) */
  readonly byPid: ReadonlyMap<number, number>;
  /** every process's threads: utime + stime of the main threads, and of all other threads (libuv pool, V8 helpers) */
  readonly mainThreads: number;
  readonly otherThreads: number;
  /** main thread of each process, clock ticks */
  readonly mainByPid: ReadonlyMap<number, number>;
  /** V8 CPU profiler threads (node --cpu-prof), clock ticks; not in otherThreads */
  readonly profilerThreads: number;
}

/** The thread node --cpu-prof adds to each process (its name in /proc/<pid>/task/<tid>/comm). */
const PROFILER_THREAD = 'v8:ProfEvntProc';

function threadName(pid: number, tid: string): string {
  try {
    return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * CPU used so far by `pid` and all its descendants. Each process counts its own time plus that of
 * children it has reaped, so a worker that exits between two samples is still counted (by its parent).
 */
export function sampleCpu(pid: number): CpuSample {
  const byPid = new Map<number, number>();
  const mainByPid = new Map<number, number>();
  let main = 0;
  let others = 0;
  let profiler = 0;
  for (const p of processTree(pid)) {
    const f = statFields(`/proc/${p}/stat`);
    if (f === undefined) continue;
    byPid.set(p, field(f, 14) + field(f, 15) + field(f, 16) + field(f, 17));
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${p}/task`);
    } catch {
      tids = [];
    }
    for (const tid of tids) {
      const tf = statFields(`/proc/${p}/task/${tid}/stat`);
      if (tf === undefined) continue;
      const t = field(tf, 14) + field(tf, 15);
      if (Number(tid) === p) {
        main += t;
        mainByPid.set(p, t);
      } else if (threadName(p, tid) === PROFILER_THREAD) profiler += t;
      else others += t;
    }
  }
  return { byPid, mainThreads: main, otherThreads: others, mainByPid, profilerThreads: profiler };
}

export interface CpuDelta {
  /** whole tree, clock ticks */
  readonly totalTicks: number;
  readonly byPidTicks: Readonly<Record<string, number>>;
  /** main threads of all processes (JavaScript), and all their other threads */
  readonly mainThreadsTicks: number;
  readonly otherThreadsTicks: number;
  readonly mainThreadsByPidTicks: Readonly<Record<string, number>>;
  readonly profilerThreadsTicks: number;
}

export function cpuDelta(before: CpuSample, after: CpuSample): CpuDelta {
  const byPidTicks: Record<string, number> = {};
  let total = 0;
  for (const [p, t] of after.byPid) {
    const d = t - (before.byPid.get(p) ?? 0);
    byPidTicks[String(p)] = d;
    total += d;
  }
  const mainThreadsByPidTicks: Record<string, number> = {};
  for (const [p, t] of after.mainByPid) mainThreadsByPidTicks[String(p)] = t - (before.mainByPid.get(p) ?? 0);
  return {
    totalTicks: total,
    byPidTicks,
    mainThreadsTicks: after.mainThreads - before.mainThreads,
    otherThreadsTicks: after.otherThreads - before.otherThreads,
    mainThreadsByPidTicks,
    profilerThreadsTicks: after.profilerThreads - before.profilerThreads,
  };
}

function statusKib(pid: number, key: 'VmHWM' | 'VmRSS'): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
  return m === null ? undefined : Number(m[1]);
}

/** Peak resident set size (VmHWM) of every process in the tree, KiB. */
export function peakRssKib(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of processTree(pid)) {
    const v = statusKib(p, 'VmHWM');
    if (v !== undefined) out[String(p)] = v;
  }
  return out;
}

/** Current resident set size (VmRSS) summed over `pids` (e.g. a processTree()), KiB. */
export function currentRssKib(pids: readonly number[]): number {
  let sum = 0;
  for (const p of pids) sum += statusKib(p, 'VmRSS') ?? 0;
  return sum;
}

/**
 * Resets VmHWM to the current RSS for every process in the tree (`echo 5 > /proc/<pid>/clear_refs`),
 * so the next reading is the peak of the scenario alone. False when the kernel refuses.
 */
export function resetPeakRss(pid: number): boolean {
  let ok = true;
  for (const p of processTree(pid)) {
    try {
      writeFileSync(`/proc/${p}/clear_refs`, '5');
    } catch {
      ok = false;
    }
  }
  return ok;
}

/**
 * The columns of each established TCP connection (IPv4 and IPv6) whose local port is `port`, from
 * /proc/net/tcp{,6}: [1] local address, [3] state, [9] socket inode.
 */
function establishedRows(port: number): string[][] {
  const localPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const rows: string[][] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if ((cols[1] ?? '').endsWith(localPort) && cols[3] === '01') rows.push(cols);
    }
  }
  return rows;
}

/** Established TCP connections (IPv4 and IPv6) whose local port is `port`, from /proc/net/tcp{,6}. */
export function establishedConnections(port: number): number {
  return establishedRows(port).length;
}

export interface SystemCpu {
  /** clock ticks since boot, all CPUs: user + nice + system + irq + softirq */
  readonly busy: number;
  readonly idle: number;
  readonly iowait: number;
  /** time a hypervisor gave to someone else */
  readonly steal: number;
}

/** The machine-wide `cpu` line of /proc/stat. */
export function sampleSystemCpu(): SystemCpu {
  let line = '';
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  } catch {
    line = '';
  }
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const at = (i: number): number => v[i] ?? 0;
  return {
    busy: at(0) + at(1) + at(2) + at(5) + at(6),
    idle: at(3),
    iowait: at(4),
    steal: at(7),
  };
}

/**
 * Proportional set size summed over `pids`, KiB (/proc/<pid>/smaps_rollup): shared pages (the node
 * binary, files) are split between the processes that map them, so unlike a sum of RSS values this
 * does not count them once per node:cluster worker. 0 when smaps_rollup is not readable.
 */
export function currentPssKib(pids: readonly number[]): number {
  let sum = 0;
  for (const p of pids) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'));
      sum += m === null ? 0 : Number(m[1]);
    } catch {
      // the process exited, or the kernel has no smaps_rollup
    }
  }
  return sum;
}

/**
 * The server process holding each established connection to local port `port`: socket inode (from
 * /proc/net/tcp{,6}) → pid (whose /proc/<pid>/fd links to it), for the processes in `pids`.
 */
export function connectionOwners(port: number, pids: readonly number[]): Map<string, number> {
  const inodes = new Set<string>();
  for (const cols of establishedRows(port)) if (cols[9] !== undefined) inodes.add(cols[9]);
  const owners = new Map<string, number>();
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link = '';
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m !== null && inodes.has(m[1] as string)) owners.set(m[1] as string, pid);
    }
  }
  return owners;
}
