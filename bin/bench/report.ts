// The bench's record of a run: bench-results.json (machine, settings, OpenSSL floor, scenarios,
// targets, the server's exit and error lines, profiles) and the text printed on stdout.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname } from 'node:path';
import { systemClock } from '../../ca/index.js';
import { formatProfileSummaries, type WindowSummary } from './cpu-profile.js';
import { round } from './format.js';
import { formatFleet } from './fleet-report.js';
import type { FleetResult } from './fleet.js';
import type { OpensslSpeed } from './openssl-speed.js';
import type { BenchOptions } from './options.js';
import { formatResults } from './results-table.js';
import type { ScenarioResult } from './scenario.js';
import type { lanyardCommand } from './server.js';
import { formatStagePass, type StagePass } from './stage-pass.js';
import { checkTargets } from './targets.js';

/** The git commit of the checkout the served lanyard comes from, and whether tracked files differ from it. */
function sourceRevision(entry: string): { commit: string; dirty: boolean } | undefined {
  const dir = dirname(entry);
  const head = spawnSync('git', ['-C', dir, 'rev-parse', 'HEAD'], { encoding: 'utf8' });
  if (head.status !== 0) return undefined;
  const status = spawnSync('git', ['-C', dir, 'status', '--porcelain', '--untracked-files=no'], {
    encoding: 'utf8',
  });
  return { commit: head.stdout.trim(), dirty: status.stdout.trim() !== '' };
}

function machine(opensslVersion: string | undefined): Record<string, unknown> {
  const cpuinfo = (() => {
    try {
      return readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      return '';
    }
  })();
  return {
    nproc: availableParallelism(),
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown',
    node: process.version,
    openssl: opensslVersion,
    nodeOpenssl: process.versions.openssl,
    platform: `${process.platform} ${process.arch}`,
  };
}

/** Everything a run produced, as the driver collected it. */
export interface RunRecord {
  readonly options: BenchOptions;
  readonly command: ReturnType<typeof lanyardCommand>;
  readonly openssl: OpensslSpeed | undefined;
  /** established TCP connections to the server port once the channels were open */
  readonly connections: number;
  readonly ticksPerS: number;
  readonly results: readonly ScenarioResult[];
  readonly stopCode: number | null;
  /** the server log's error and fatal lines */
  readonly errorLines: readonly string[];
  readonly profilePaths: readonly string[];
  readonly profileSummaries: WindowSummary[] | undefined;
  /** the per-stage pass (--stages on, with cold or renew) */
  readonly stagePass: StagePass | undefined;
  readonly fleet: FleetResult | undefined;
  /** performance.now() when the bench started */
  readonly benchStarted: number;
}

/** The content of bench-results.json. */
export function buildReport(run: RunRecord) {
  const { options: o, command: cmd, results } = run;
  return {
    generatedAt: systemClock.now().toISOString(),
    machine: machine(run.openssl?.version),
    settings: {
      scenarios: o.scenarios,
      workloads: o.workloads,
      storm: o.storm,
      concurrency: o.concurrency,
      stormConcurrency: o.stormConcurrency,
      connections: o.connections,
      establishedConnections: run.connections,
      serverMaxInFlight: o.serverMaxInFlight,
      warmup: o.warmup,
      stages: o.stages,
      stageWarmup: o.stageWarmup,
      stageWorkloads: o.stageWorkloads,
      fleetSizes: o.fleetSizes,
      fleet: o.fleet,
      fleetTimeLimitS: o.fleetTimeLimitS,
      timeLimitS: o.timeLimitS,
      deadlineS: o.deadlineS,
      serverLogLevel: o.logLevel,
      serverCommand:
        `node ${cmd.node.join(' ')} ${cmd.entry} serve … --max-in-flight ${o.serverMaxInFlight} --log-level ${o.logLevel} ${o.serveArgs.join(' ')}`
          .replace(/ +/g, ' ')
          .trim(),
      lanyardSource: sourceRevision(cmd.entry),
      clockTicksPerS: run.ticksPerS,
      cpuProfiles: run.profilePaths,
    },
    openssl: run.openssl,
    scenarios: Object.fromEntries(results.map((r) => [r.name, r])),
    /** µs per certificate per stage, cold and renew, from the profiled pass */
    stages: run.stagePass,
    fleet: run.fleet,
    targets: checkTargets(results, run.fleet),
    server: {
      exitCode: run.stopCode,
      errorLogLines: run.errorLines.length,
      firstErrorLogLines: run.errorLines.slice(0, 3),
    },
    profile: run.profileSummaries,
    benchSeconds: round((performance.now() - run.benchStarted) / 1000, 1),
  };
}

export type BenchReport = ReturnType<typeof buildReport>;

/** What stdout shows: the setting, the OpenSSL floor, the results and targets, errors and profiles. */
export function formatReport(run: RunRecord, report: BenchReport): string {
  const { options: o, openssl, errorLines } = run;
  const out: string[] = [''];
  out.push(
    `Lanyard Certify bench: ${String(report.machine.nproc)} cores (${String(report.machine.cpuModel)}), node ${process.version}; server ${report.settings.serverCommand}`,
  );
  out.push(
    `${o.connections} HTTP/2 connections (${run.connections} established), ${o.warmup} warm-up calls; latency percentiles over successful calls; CPU = utime+stime of the server process tree (CLK_TCK ${run.ticksPerS})`,
  );
  if (openssl !== undefined)
    out.push(
      `OpenSSL floor: ${Math.round(openssl.signPerS)} sign/s, ${Math.round(openssl.verifyPerS)} verify/s → 1 sign + 2 verifies = ${round(openssl.certifyFloorUs)} µs of one core (${openssl.version})`,
    );
  out.push('');
  const sections = [
    ...(run.stagePass !== undefined ? [formatStagePass(run.stagePass, run.results)] : []),
    ...(run.fleet !== undefined ? [formatFleet(run.fleet, o)] : []),
  ];
  out.push(formatResults(run.results, report.targets, sections));
  if (errorLines.length > 0)
    out.push(`\nthe server logged ${errorLines.length} error lines; first: ${errorLines[0] ?? ''}`);
  if (run.profileSummaries !== undefined) {
    out.push(`\nCPU profiles (main threads of the server processes): ${run.profilePaths.join(', ')}\n`);
    out.push(formatProfileSummaries(run.profileSummaries));
  }
  out.push(`\nresults: ${o.out} (bench took ${report.benchSeconds} s)`);
  return `${out.join('\n')}\n`;
}
