// Summaries of a V8 .cpuprofile (node --cpu-prof): self time by function and by package, over time
// windows given in CLOCK_MONOTONIC microseconds (the clock of V8's profile timestamps and of
// process.hrtime, so a load generator can mark its phases and find them in the server's profile).
import { readFileSync } from 'node:fs';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
    readonly columnNumber: number;
  };
  readonly children?: readonly number[];
}

export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileWindow {
  readonly name: string;
  /** CLOCK_MONOTONIC, µs */
  readonly startUs: number;
  readonly endUs: number;
  /** certificates issued in the window, to express times per certificate */
  readonly certificates?: number;
  /**
   * CPU the main thread really used in the window (from /proc), ms. Sampled time above it is time the
   * thread was runnable but descheduled, charged to whatever function it was in.
   */
  readonly mainThreadCpuMs?: number;
}

export interface SelfTime {
  readonly name: string;
  readonly ms: number;
  /** share of the window's sampled non-idle time, % */
  readonly percent: number;
  readonly usPerCertificate?: number;
  /** for node-core functions: the nearest caller outside node core, and its share of this function's time, % */
  readonly callers?: readonly { readonly name: string; readonly percent: number }[];
}

export interface WindowSummary {
  readonly name: string;
  readonly wallMs: number;
  /** sampled time on the main thread that was not idle, ms */
  readonly busyMs: number;
  readonly mainThreadCpuMs?: number;
  readonly topFunctions: readonly SelfTime[];
  readonly byPackage: readonly SelfTime[];
}

export function readCpuProfile(path: string): CpuProfile {
  return JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
}

/** Where a script comes from: an npm package, a node core module group, a Lanyard folder, or V8. */
export function packageOf(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(garbage collector)') return '(garbage collector)';
    if (functionName === '(program)') return '(program: native, outside JS)';
    if (functionName === '(idle)') return '(idle)';
    return '(native)';
  }
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + '/node_modules/'.length).split('/');
    const first = parts[0] ?? '';
    return first.startsWith('@') ? `${first}/${parts[1] ?? ''}` : first;
  }
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const m = /\/(?:dist\/)?(ca|issuer|trust-bundles|bin)\/((?:[a-z-]+\/)*)[^/]+$/.exec(url);
  if (m !== null) return `lanyard ${m[1] ?? ''}/${m[2] ?? ''}`.replace(/\/$/, '');
  return url;
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const d = url.lastIndexOf('/dist/');
  if (d >= 0) return url.slice(d + '/dist/'.length);
  return url.replace(/^file:\/\//, '');
}

function top(
  map: Map<string, number>,
  busyUs: number,
  n: number,
  certificates: number | undefined,
  callers?: Map<string, Map<string, number>>,
): SelfTime[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => {
      const byCaller = callers?.get(name);
      const callerList =
        byCaller === undefined
          ? undefined
          : [...byCaller.entries()]
              .sort((a, b) => b[1] - a[1])
              .slice(0, 3)
              .map(([c, cus]) => ({ name: c, percent: Math.round((1000 * cus) / us) / 10 }));
      return {
        name,
        ms: Math.round(us / 10) / 100,
        percent: busyUs > 0 ? Math.round((1000 * us) / busyUs) / 10 : 0,
        ...(certificates !== undefined && certificates > 0
          ? { usPerCertificate: Math.round((10 * us) / certificates) / 10 }
          : {}),
        ...(callerList !== undefined ? { callers: callerList } : {}),
      };
    });
}

function frameName(n: ProfileNode): string {
  const { functionName, url, lineNumber } = n.callFrame;
  return url === '' ? functionName : `${functionName || '(anonymous)'} ${shortUrl(url)}:${lineNumber + 1}`;
}

/** Frames of node core (node:…) and of V8 (no script) are not callers worth naming. */
function isCoreFrame(n: ProfileNode): boolean {
  return n.callFrame.url === '' || n.callFrame.url.startsWith('node:');
}

/**
 * Self time per function (name, script and line) and per package inside each window, summed over
 * the profiles (one per process, e.g. node:cluster workers). A sample's duration is the gap to the
 * next sample; idle samples count toward no function.
 */
export function summariseProfiles(
  profiles: readonly CpuProfile[],
  windows: readonly ProfileWindow[],
  topN = 15,
): WindowSummary[] {
  const acc = windows.map(() => ({
    busyUs: 0,
    fn: new Map<string, number>(),
    pkg: new Map<string, number>(),
    callers: new Map<string, Map<string, number>>(),
  }));
  for (const profile of profiles) accumulate(profile, windows, acc);
  return windows.map((win, w) => {
    const a = acc[w] as (typeof acc)[number];
    return {
      name: win.name,
      wallMs: Math.round((win.endUs - win.startUs) / 100) / 10,
      busyMs: Math.round(a.busyUs / 100) / 10,
      ...(win.mainThreadCpuMs !== undefined ? { mainThreadCpuMs: win.mainThreadCpuMs } : {}),
      topFunctions: top(a.fn, a.busyUs, topN, win.certificates, a.callers),
      byPackage: top(a.pkg, a.busyUs, topN, win.certificates),
    };
  });
}

interface Accumulator {
  busyUs: number;
  readonly fn: Map<string, number>;
  readonly pkg: Map<string, number>;
  readonly callers: Map<string, Map<string, number>>;
}

/** Adds the samples of one profile (one process's main thread) that fall into each window. */
function accumulate(profile: CpuProfile, windows: readonly ProfileWindow[], acc: Accumulator[]): void {
  const byId = new Map<number, ProfileNode>();
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parentOf.set(c, n.id);
  }
  const callerCache = new Map<number, string>();
  /** the nearest frame above `node` that is neither node core nor V8 */
  const callerOf = (node: ProfileNode): string => {
    const cached = callerCache.get(node.id);
    if (cached !== undefined) return cached;
    let found = '(none outside node core)';
    for (let id = parentOf.get(node.id); id !== undefined; id = parentOf.get(id)) {
      const p = byId.get(id);
      if (p === undefined) break;
      if (!isCoreFrame(p)) {
        found = frameName(p);
        break;
      }
    }
    callerCache.set(node.id, found);
    return found;
  };
  let t = profile.startTime;
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    t += timeDeltas[i] ?? 0;
    const dur = i + 1 < samples.length ? (timeDeltas[i + 1] ?? 0) : profile.endTime - t;
    const node = byId.get(samples[i] as number);
    if (node === undefined || dur <= 0) continue;
    const { functionName, url } = node.callFrame;
    if (functionName === '(idle)') continue;
    for (let w = 0; w < windows.length; w++) {
      const win = windows[w] as ProfileWindow;
      if (t < win.startUs || t > win.endUs) continue;
      const a = acc[w] as Accumulator;
      a.busyUs += dur;
      const fname = frameName(node);
      a.fn.set(fname, (a.fn.get(fname) ?? 0) + dur);
      if (url.startsWith('node:')) {
        const caller = callerOf(node);
        const m = a.callers.get(fname) ?? new Map<string, number>();
        m.set(caller, (m.get(caller) ?? 0) + dur);
        a.callers.set(fname, m);
      }
      const p = packageOf(url, functionName);
      a.pkg.set(p, (a.pkg.get(p) ?? 0) + dur);
    }
  }
}

/** Text tables of the summaries, for a terminal. */
export function formatProfileSummaries(summaries: readonly WindowSummary[]): string {
  const lines: string[] = [];
  const row = (s: SelfTime): string =>
    `  ${s.ms.toFixed(1).padStart(9)} ms ${s.percent.toFixed(1).padStart(5)} %${
      s.usPerCertificate !== undefined ? ` ${s.usPerCertificate.toFixed(1).padStart(7)} µs/cert` : ''
    }  ${s.name}`;
  for (const s of summaries) {
    lines.push(
      `${s.name}: ${s.busyMs} ms of main-thread samples in ${s.wallMs} ms${
        s.mainThreadCpuMs !== undefined ? ` (main-thread CPU from /proc: ${s.mainThreadCpuMs} ms)` : ''
      }`,
    );
    lines.push(' by package:');
    lines.push(...s.byPackage.map(row));
    lines.push(' top functions by self time (← nearest caller outside node core: share of that function):');
    for (const f of s.topFunctions) {
      lines.push(row(f));
      for (const c of f.callers ?? [])
        lines.push(`${' '.repeat(34)}← ${c.percent.toFixed(0).padStart(3)} %  ${c.name}`);
    }
    lines.push('');
  }

  return lines.join('\n');
}
