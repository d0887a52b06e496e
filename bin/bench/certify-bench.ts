// `npm run bench`: Certify throughput, latency, server CPU per certificate and memory, measured
// against a real `lanyard serve` process (JWT authentication on) driven from this separate process.
// Linux only (reads /proc). See docs/performance.md.
//
// The driver: options (options.ts) → throw-away PKI and the server (server.ts) → workloads, warm-up
// and timed scenarios (stages.ts, scenario.ts, sampling.ts) → the per-stage pass against a new
// profiled server (stage-pass.ts, stage-rules.ts, stage-table.ts) → the fleet scenario, one new server
// per size (fleet.ts) → bench-results.json and the text (report.ts, results-table.ts, fleet-report.ts,
// targets.ts).
import 'reflect-metadata';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../ca/index.js';
import { readCpuProfile, summariseProfiles, type WindowSummary } from './cpu-profile.js';
import { log, round } from './format.js';
import { openChannels, type CertifyChannel } from './load.js';
import { measureOpensslSpeed, type OpensslSpeed } from './openssl-speed.js';
import { parseOptions, USAGE, type BenchOptions } from './options.js';
import { clockTicksPerSecond, establishedConnections } from './proc-stats.js';
import { buildReport, formatReport } from './report.js';
import type { ScenarioResult } from './scenario.js';
import { createBenchPki, lanyardCommand, startServer } from './server.js';
import { runFleet } from './fleet.js';
import { runStagePass } from './stage-pass.js';
import { makeWorkloadSets, runStages, type WorkloadSets } from './stages.js';

function measureFloor(o: BenchOptions): OpensslSpeed | undefined {
  if (o.opensslSeconds <= 0) return undefined;
  log(`openssl speed -seconds ${o.opensslSeconds} ecdsap256 …`);
  const openssl = measureOpensslSpeed(o.opensslSeconds);
  if (openssl === undefined) log('openssl speed failed or openssl is missing; no floor');
  else
    log(
      `openssl: ${Math.round(openssl.signPerS)} sign/s, ${Math.round(openssl.verifyPerS)} verify/s → floor ${round(openssl.certifyFloorUs)} µs per Certify`,
    );
  return openssl;
}

/** With --cpu-prof: the profiles the server wrote (one per process) and their summary per scenario. */
function collectProfiles(
  o: BenchOptions,
  serverStartedMs: number,
  results: readonly ScenarioResult[],
): { paths: string[]; summaries: WindowSummary[] | undefined } {
  if (o.cpuProfDir === undefined) return { paths: [], summaries: undefined };
  const dirWanted = o.cpuProfDir;
  // one profile per process: the server, and its node:cluster workers if any
  const paths = readdirSync(dirWanted)
    .filter((f) => f.endsWith(`.cpuprofile`))
    .map((f) => join(dirWanted, f))
    .filter((f) => statSync(f).mtimeMs >= serverStartedMs);
  if (paths.length === 0) {
    log(`no .cpuprofile was written in ${dirWanted}`);
    return { paths, summaries: undefined };
  }
  const summaries = summariseProfiles(
    paths.map((p) => readCpuProfile(p)),
    results.map((r) => r.window),
  );
  return { paths, summaries };
}

interface MainRun {
  readonly results: ScenarioResult[];
  readonly connections: number;
  readonly stopCode: number | null;
  readonly errorLines: string[];
  readonly profiles: { paths: string[]; summaries: WindowSummary[] | undefined };
}

/** The unprofiled scenarios (cold, renew, storm) against one server. */
async function runMainScenarios(
  o: BenchOptions,
  dir: string,
  workloads: WorkloadSets,
  floorUs: number | undefined,
  ticksPerS: number,
): Promise<MainRun> {
  const serverStartedMs = systemClock.now().getTime();
  const server = await startServer(dir, o);
  let channels: CertifyChannel[] = [];
  try {
    log(
      `lanyard serve pid ${server.pid} on 127.0.0.1:${server.port} (--max-in-flight ${o.serverMaxInFlight})`,
    );
    channels = await openChannels(`127.0.0.1:${server.port}`, o.connections);
    const connections = establishedConnections(server.port);
    log(`${o.connections} channels open; ${connections} established connections to the server port`);
    const results = await runStages({
      options: o,
      serverPid: server.pid,
      channels,
      workloads,
      floorUs,
      ticksPerS,
    });
    for (const c of channels) c.close();
    channels = [];
    const stopCode = await server.stop();
    const logText = readFileSync(server.logPath, 'utf8');
    const errorLines = logText.split('\n').filter((l) => /"level":(50|60)/.test(l));
    const profiles = collectProfiles(o, serverStartedMs, results);
    return { results, connections, stopCode, errorLines, profiles };
  } finally {
    for (const c of channels) c.close();
    await server.stop();
  }
}

async function runBench(o: BenchOptions): Promise<number> {
  const cmd = lanyardCommand(o.lanyard);
  if (cmd.fromSources) log('the server runs from sources through tsx (npm run bench runs dist/)');
  const benchStarted = performance.now();
  const ticksPerS = clockTicksPerSecond();
  const dir = mkdtempSync(join(tmpdir(), 'lanyard-bench-'));
  try {
    log(`temporary directory ${dir}`);
    await createBenchPki(o, dir);
    const openssl = measureFloor(o);
    const workloads = await makeWorkloadSets(o, dir);
    const floorUs = openssl?.certifyFloorUs;
    const wantMain = o.scenarios.some((s) => s !== 'fleet');
    const main: MainRun = wantMain
      ? await runMainScenarios(o, dir, workloads, floorUs, ticksPerS)
      : {
          results: [],
          connections: 0,
          stopCode: null,
          errorLines: [],
          profiles: { paths: [], summaries: undefined },
        };
    const wantStages = o.stages && (o.scenarios.includes('cold') || o.scenarios.includes('renew'));
    const stagePass = wantStages
      ? await runStagePass({ options: o, dir, workloads: workloads.all, ticksPerS })
      : undefined;
    const fleet = o.scenarios.includes('fleet')
      ? await runFleet({ options: o, dir, workloads: workloads.all, ticksPerS, floorUs })
      : undefined;

    const run = {
      options: o,
      command: cmd,
      openssl,
      connections: main.connections,
      ticksPerS,
      results: main.results,
      stopCode: main.stopCode,
      errorLines: main.errorLines,
      profilePaths: main.profiles.paths,
      profileSummaries: main.profiles.summaries,
      stagePass,
      fleet,
      benchStarted,
    };
    const report = buildReport(run);
    writeFileSync(o.out, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(formatReport(run, report));
    return 0;
  } finally {
    if (o.keep) log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  let o: BenchOptions | undefined;
  try {
    o = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (o === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (process.platform !== 'linux') {
    process.stderr.write('the bench reads /proc and runs on Linux only\n');
    return 2;
  }
  return runBench(o);
}

process.exitCode = await main();
