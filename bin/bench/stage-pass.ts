// The per-stage pass: after the unprofiled scenarios, a new server under node --cpu-prof (every
// server process writes its profile when it exits), a warm-up, then a cold and a renew window whose
// samples are classified by stage (stage-rules.ts) and scaled to /proc CPU (stage-table.ts).
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readCpuProfile } from './cpu-profile.js';
import { log, round } from './format.js';
import { openChannels, runLoad } from './load.js';
import type { BenchOptions } from './options.js';
import { runScenario, type ScenarioResult } from './scenario.js';
import { startServer } from './server.js';
import {
  formatStageTable,
  profilePid,
  stageTable,
  type StageColumn,
  type StageWindow,
} from './stage-table.js';
import type { Workload } from './workloads.js';

export interface StagePassRun {
  readonly options: BenchOptions;
  /** the bench's temporary directory (PKI; the pass's log and profiles go there) */
  readonly dir: string;
  /** workloads the new server has not seen: the first stageWarmup warm it up, the next stageWorkloads are timed */
  readonly workloads: readonly Workload[];
  readonly ticksPerS: number;
}

export interface StagePass {
  readonly settings: { warmup: number; workloads: number; concurrency: number; connections: number };
  readonly columns: readonly StageColumn[];
  /** the profiled windows' own figures (CPU under the profiler is higher than in the scenarios) */
  readonly windows: Readonly<
    Record<string, { ok: number; serverCpuUsPerCertificate: number; cores: number }>
  >;
  readonly profiles: readonly string[];
  readonly warnings: readonly string[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function stageWindow(r: ScenarioResult): StageWindow {
  return {
    name: r.name,
    startUs: r.window.startUs,
    endUs: r.window.endUs,
    certificates: r.ok,
    mainThreadCpuMsByPid: r.mainThreadCpuMsByPid,
    otherThreadsCpuMs: round((r.serverCpuOtherThreadsUsPerCertificate * r.ok) / 1000),
    profilerThreadsCpuMs: r.profilerThreadsCpuMs,
  };
}

/** Runs the pass; the server is stopped (so that its processes write their profiles) before it returns. */
export async function runStagePass(p: StagePassRun): Promise<StagePass> {
  const { options: o, dir } = p;
  const profDir = join(dir, 'stage-profiles');
  mkdirSync(profDir, { recursive: true });
  const warm = p.workloads.slice(0, o.stageWarmup);
  const timed = p.workloads.slice(o.stageWarmup, o.stageWarmup + o.stageWorkloads);
  const server = await startServer(dir, o, { logName: 'stage-server.log', cpuProfDir: profDir });
  const results: ScenarioResult[] = [];
  try {
    const channels = await openChannels(`127.0.0.1:${server.port}`, o.connections);
    try {
      const load = { channels, timeLimitMs: o.timeLimitS * 1000, deadlineMs: o.deadlineS * 1000 };
      if (warm.length > 0)
        await runLoad({ ...load, workloads: warm, concurrency: Math.min(64, o.concurrency) });
      for (const name of ['cold', 'renew'] as const) {
        await sleep(1000); // idle between windows, so that no call of one is sampled in the other
        log(`stage pass (profiled): ${name}, ${timed.length} calls …`);
        const base = { serverPid: server.pid, channels, workloads: timed, floorUs: undefined };
        results.push(
          await runScenario({
            ...base,
            name,
            concurrency: o.concurrency,
            options: o,
            ticksPerS: p.ticksPerS,
          }),
        );
      }
    } finally {
      for (const c of channels) c.close();
    }
  } finally {
    await server.stop();
  }
  const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
  const warnings: string[] = [];
  const processes = Math.max(...results.map((r) => r.serverProcesses));
  if (files.length < processes)
    warnings.push(
      `${files.length} profiles for ${processes} server processes: the processes without one count as other-js`,
    );
  const columns = stageTable(
    files.map((f) => ({ pid: profilePid(f), profile: readCpuProfile(join(profDir, f)) })),
    results.map(stageWindow),
  );
  return {
    settings: {
      warmup: warm.length,
      workloads: timed.length,
      concurrency: o.concurrency,
      connections: o.connections,
    },
    columns,
    windows: Object.fromEntries(
      results.map((r) => [
        r.name,
        { ok: r.ok, serverCpuUsPerCertificate: r.serverCpuUsPerCertificate, cores: r.serverCores },
      ]),
    ),
    profiles: files.map((f) => join(profDir, f)),
    warnings,
  };
}

/** The table with its heading and notes, for stdout. */
export function formatStagePass(s: StagePass, headline: readonly ScenarioResult[]): string {
  const lines = [
    `CPU per certificate by stage (µs): a second pass against a new server under node --cpu-prof (every process), ${s.settings.warmup} warm-up calls, then ${s.settings.workloads} cold and the same ${s.settings.workloads} renewed, ${s.settings.concurrency} in flight; samples classified by stack, scaled to each process's main-thread CPU (/proc); other-threads from /proc`,
    formatStageTable(s.columns),
  ];
  for (const c of s.columns) {
    const un = headline.find((r) => r.name === c.name);
    const profiled = s.windows[c.name];
    lines.push(
      `  ${c.name}: ${c.certificates} certificates, ${c.sampledMs} ms sampled for ${c.mainThreadCpuMs} ms of main-thread CPU; whole tree ${profiled?.serverCpuUsPerCertificate ?? 'n/a'} µs/cert under the profiler (profiler threads ${round((1000 * c.profilerThreadsCpuMs) / Math.max(1, c.certificates))} µs/cert, not in the table)${un !== undefined ? `, ${un.serverCpuUsPerCertificate} µs/cert unprofiled` : ''}`,
    );
  }
  for (const w of s.warnings) lines.push(`  WARNING: ${w}`);
  return lines.join('\n');
}
