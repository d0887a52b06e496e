// The per-stage table: CPU per certificate of each stage of a Certify call (stage-rules.ts) in the
// windows of a profiled run. Each process's sampled time in a window is scaled to the CPU its main
// thread really used there (/proc): on a busy machine a sample also counts time the thread waited for
// a core, charged to whatever ran. other-threads is the /proc CPU of every other thread (libuv pool,
// V8 GC and compiler helpers), without the profiler's own thread.
import type { CpuProfile } from './cpu-profile.js';
import { round } from './format.js';
import { classifyStack, STAGES, type Frame, type Stage } from './stage-rules.js';

export interface StageWindow {
  readonly name: string;
  /** CLOCK_MONOTONIC, µs */
  readonly startUs: number;
  readonly endUs: number;
  readonly certificates: number;
  /** main-thread CPU per server process in the window (/proc), ms */
  readonly mainThreadCpuMsByPid: Readonly<Record<string, number>>;
  /** CPU of the server processes' other threads, profiler thread excluded, ms */
  readonly otherThreadsCpuMs: number;
  /** CPU of the V8 profiler threads, ms (not in the table) */
  readonly profilerThreadsCpuMs: number;
}

export interface StageColumn {
  readonly name: string;
  /** the window, CLOCK_MONOTONIC µs (to look at kept profiles again) */
  readonly startUs: number;
  readonly endUs: number;
  readonly certificates: number;
  /** main-thread samples that were not idle, ms, and the main threads' real CPU, ms */
  readonly sampledMs: number;
  readonly mainThreadCpuMs: number;
  readonly profilerThreadsCpuMs: number;
  /** µs per certificate, per stage (STAGES order) */
  readonly usPerCertificate: Readonly<Record<Stage, number>>;
  readonly totalUsPerCertificate: number;
}

/** A profile and the server process (pid) that wrote it, when known. */
export interface PidProfile {
  readonly pid: number | undefined;
  readonly profile: CpuProfile;
}

/** The pid in a node --cpu-prof file name (CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile). */
export function profilePid(fileName: string): number | undefined {
  const m = /CPU\.\d+\.\d+\.(\d+)\.\d+\.\d+\.cpuprofile$/.exec(fileName);
  return m === null ? undefined : Number(m[1]);
}

/** Sampled µs per stage in each window, for one profile. */
function sampledStages(profile: CpuProfile, windows: readonly StageWindow[]): Map<Stage, number>[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
  const stageOf = new Map<number, Stage | 'idle'>();
  const classify = (id: number): Stage | 'idle' => {
    const known = stageOf.get(id);
    if (known !== undefined) return known;
    const frames: Frame[] = [];
    for (let x: number | undefined = id; x !== undefined; x = parentOf.get(x)) {
      const n = byId.get(x);
      if (n !== undefined) frames.push(n.callFrame);
    }
    const s = frames[0]?.functionName === '(idle)' ? 'idle' : classifyStack(frames);
    stageOf.set(id, s);
    return s;
  };
  const out = windows.map(() => new Map<Stage, number>());
  let t = profile.startTime;
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    t += timeDeltas[i] ?? 0;
    const dur = i + 1 < samples.length ? (timeDeltas[i + 1] ?? 0) : profile.endTime - t;
    if (dur <= 0) continue;
    const w = windows.findIndex((win) => t >= win.startUs && t <= win.endUs);
    if (w < 0) continue;
    const stage = classify(samples[i] as number);
    if (stage === 'idle') continue;
    const m = out[w] as Map<Stage, number>;
    m.set(stage, (m.get(stage) ?? 0) + dur);
  }
  return out;
}

const sum = (xs: Iterable<number>): number => {
  let s = 0;
  for (const x of xs) s += x;
  return s;
};

/**
 * The table's columns, one per window. A process whose pid has a /proc reading is scaled to its own
 * main-thread CPU; the others together to what remains of the window's.
 */
export function stageTable(profiles: readonly PidProfile[], windows: readonly StageWindow[]): StageColumn[] {
  const sampled = profiles.map((p) => sampledStages(p.profile, windows));
  return windows.map((win, w) => {
    const totals = new Map<Stage, number>();
    const add = (m: Map<Stage, number>, factor: number): void => {
      for (const [s, us] of m) totals.set(s, (totals.get(s) ?? 0) + us * factor);
    };
    const realMs = (pid: number | undefined): number | undefined =>
      pid === undefined ? undefined : win.mainThreadCpuMsByPid[String(pid)];
    const unknown: Map<Stage, number>[] = [];
    let knownRealMs = 0;
    let sampledUs = 0;
    profiles.forEach((p, i) => {
      const m = (sampled[i] as Map<Stage, number>[])[w] as Map<Stage, number>;
      const busy = sum(m.values());
      sampledUs += busy;
      const real = realMs(p.pid);
      if (real === undefined) unknown.push(m);
      else {
        knownRealMs += real;
        if (busy > 0) add(m, (real * 1000) / busy);
      }
    });
    const mainMs = sum(Object.values(win.mainThreadCpuMsByPid));
    const restBusy = sum(unknown.map((m) => sum(m.values())));
    const restFactor = restBusy > 0 ? (Math.max(0, mainMs - knownRealMs) * 1000) / restBusy : 0;
    for (const m of unknown) add(m, restFactor);
    totals.set('other-threads', win.otherThreadsCpuMs * 1000);
    const per = (us: number): number => (win.certificates > 0 ? round(us / win.certificates) : Number.NaN);
    const usPerCertificate = Object.fromEntries(STAGES.map((s) => [s, per(totals.get(s) ?? 0)])) as Record<
      Stage,
      number
    >;
    return {
      name: win.name,
      startUs: win.startUs,
      endUs: win.endUs,
      certificates: win.certificates,
      sampledMs: Math.round(sampledUs / 1000),
      mainThreadCpuMs: mainMs,
      profilerThreadsCpuMs: win.profilerThreadsCpuMs,
      usPerCertificate,
      totalUsPerCertificate: per(sum(totals.values())),
    };
  });
}

/** The table as text: one row per stage, a µs/cert and a % column per window. */
export function formatStageTable(columns: readonly StageColumn[]): string {
  const head = ['stage', ...columns.flatMap((c) => [`${c.name} µs/cert`, '%'])];
  const pct = (c: StageColumn, us: number): string =>
    c.totalUsPerCertificate > 0 ? ((100 * us) / c.totalUsPerCertificate).toFixed(1) : 'n/a';
  const rows = [
    head,
    ...STAGES.map((s) => [
      s,
      ...columns.flatMap((c) => [c.usPerCertificate[s].toFixed(1), pct(c, c.usPerCertificate[s])]),
    ]),
    ['total', ...columns.flatMap((c) => [c.totalUsPerCertificate.toFixed(1), '100.0'])],
  ];
  const widths = head.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  '),
    )
    .join('\n');
}
