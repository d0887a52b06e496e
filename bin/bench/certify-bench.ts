// `npm run bench`: Certify throughput, latency, server CPU per certificate and memory, measured
// against a real `lanyard serve` process (JWT authentication on) driven from this separate process.
// Linux only (reads /proc). See docs/performance.md.
import 'reflect-metadata';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseCertificate, systemClock } from '../../ca/index.js';
import { createSigningKeyDir, DEV_TOKEN_ISSUER } from '../../issuer/authn/index.js';
import {
  formatProfileSummaries,
  readCpuProfile,
  summariseProfiles,
  type ProfileWindow,
  type WindowSummary,
} from './cpu-profile.js';
import { openChannels, quantile, runLoad, type CertifyChannel, type LoadResult } from './load.js';
import { measureOpensslSpeed, type OpensslSpeed } from './openssl-speed.js';
import {
  clockTicksPerSecond,
  cpuDelta,
  currentPssKib,
  currentRssKib,
  establishedConnections,
  peakRssKib,
  processTree,
  resetPeakRss,
  sampleCpu,
  sampleSystemCpu,
} from './proc-stats.js';
import { makeWorkloadsInParallel, type Workload } from './workloads.js';

const SCENARIOS = ['cold', 'renew', 'storm'] as const;
type Scenario = (typeof SCENARIOS)[number];

const USAGE = `usage: npm run bench -- [options]

Starts a throw-away anchor, issuer and token-signing key, runs \`lanyard serve\` (JWT authentication),
and drives Certify from this process over several HTTP/2 connections.

  --scenario LIST          cold, renew, storm (comma-separated) or all (default); renew without cold first
                           certifies the workloads once, untimed
  --workloads N            workloads of the cold and renew scenarios (default 2000)
  --storm N                distinct workloads of the storm scenario (default 10000)
  --concurrency N          calls in flight in cold and renew (default 256)
  --connections N          HTTP/2 connections (grpc-js channels) (default 4)
  --server-max-in-flight N the server's --max-in-flight (default 4096)
  --storm-concurrency N    calls in flight in storm (default: the server's --max-in-flight)
  --warmup N               untimed Certify calls with other workloads before the first scenario (default 4000)
  --time-limit S           no call starts after S seconds of a scenario (default 60)
  --deadline S             gRPC deadline of each call, seconds (default 30)
  --log-level L            the server's --log-level (default info, as deployed)
  --openssl-seconds S      openssl speed -seconds S ecdsap256; 0 skips it (default 2)
  --lanyard FILE           the lanyard entry to serve (default: the build next to this bench), e.g. another
                           checkout's dist/bin/lanyard.js, to compare two builds under the same load
  --serve-arg ARG          one more argument for \`lanyard serve\` (repeatable), e.g. --serve-arg=--workers=1
  --cpu-prof DIR           run the server under node --cpu-prof and summarise the profile per scenario
  --out FILE               JSON results (default bench-results.json)
  --keep                   keep the temporary directory (keys, server log)
  --help`;

interface Options {
  scenarios: Scenario[];
  workloads: number;
  storm: number;
  concurrency: number;
  connections: number;
  serverMaxInFlight: number;
  stormConcurrency: number;
  warmup: number;
  timeLimitS: number;
  deadlineS: number;
  logLevel: string;
  opensslSeconds: number;
  cpuProfDir: string | undefined;
  lanyard: string | undefined;
  serveArgs: string[];
  out: string;
  keep: boolean;
}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string', default: 'all' },
      workloads: { type: 'string', default: '2000' },
      storm: { type: 'string', default: '10000' },
      concurrency: { type: 'string', default: '256' },
      connections: { type: 'string', default: '4' },
      'server-max-in-flight': { type: 'string', default: '4096' },
      'storm-concurrency': { type: 'string' },
      warmup: { type: 'string', default: '4000' },
      'time-limit': { type: 'string', default: '60' },
      deadline: { type: 'string', default: '30' },
      'log-level': { type: 'string', default: 'info' },
      'openssl-seconds': { type: 'string', default: '2' },
      'cpu-prof': { type: 'string' },
      lanyard: { type: 'string' },
      'serve-arg': { type: 'string', multiple: true, default: [] },
      out: { type: 'string', default: 'bench-results.json' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;
  const int = (name: string, s: string, min: number): number => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}`);
    return n;
  };
  const scenarios =
    values.scenario === 'all' ? [...SCENARIOS] : values.scenario.split(',').map((x) => x.trim());
  for (const x of scenarios)
    if (!SCENARIOS.includes(x as Scenario))
      throw new Error(`--scenario takes ${SCENARIOS.join(', ')} (comma-separated) or all, not ${x}`);
  const serverMaxInFlight = int('server-max-in-flight', values['server-max-in-flight'], 1);
  return {
    // always in the order cold, renew, storm: renew resends what cold certified
    scenarios: SCENARIOS.filter((x) => scenarios.includes(x)),
    workloads: int('workloads', values.workloads, 1),
    storm: int('storm', values.storm, 1),
    concurrency: int('concurrency', values.concurrency, 1),
    connections: int('connections', values.connections, 1),
    serverMaxInFlight,
    stormConcurrency: int('storm-concurrency', values['storm-concurrency'] ?? String(serverMaxInFlight), 1),
    warmup: int('warmup', values.warmup, 0),
    timeLimitS: int('time-limit', values['time-limit'], 1),
    deadlineS: int('deadline', values.deadline, 1),
    logLevel: values['log-level'],
    opensslSeconds: int('openssl-seconds', values['openssl-seconds'], 0),
    cpuProfDir: values['cpu-prof'] !== undefined ? resolve(values['cpu-prof']) : undefined,
    lanyard: values.lanyard !== undefined ? resolve(values.lanyard) : undefined,
    serveArgs: values['serve-arg'],
    out: resolve(values.out),
    keep: values.keep,
  };
}

const log = (line: string): void => {
  process.stderr.write(`bench: ${line}\n`);
};
const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * The lanyard entry: `override`, else the one next to this module (dist/bin/lanyard.js when compiled,
 * bin/lanyard.ts under tsx). TypeScript entries run through tsx.
 */
function lanyardCommand(override?: string): { node: string[]; entry: string; fromSources: boolean } {
  const here = fileURLToPath(import.meta.url);
  const entry = override ?? join(dirname(here), '..', `lanyard${extname(here)}`);
  const fromSources = extname(entry) === '.ts';
  return { node: fromSources ? ['--import', 'tsx'] : [], entry, fromSources };
}

function runLanyard(o: Options, args: string[]): void {
  const cmd = lanyardCommand(o.lanyard);
  const r = spawnSync(process.execPath, [...cmd.node, cmd.entry, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`lanyard ${args.join(' ')} failed: ${r.stderr}`);
}

interface Server {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  readonly logPath: string;
  stop(): Promise<number | null>;
}

async function startServer(dir: string, o: Options): Promise<Server> {
  const cmd = lanyardCommand(o.lanyard);
  const logPath = join(dir, 'server.log');
  const logFd = openSync(logPath, 'w');
  const args = [
    ...cmd.node,
    ...(o.cpuProfDir !== undefined ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir] : []),
    cmd.entry,
    'serve',
    '--issuer-dir',
    join(dir, 'issuer'),
    '--listen',
    '127.0.0.1:0',
    '--admin-listen',
    '127.0.0.1:0',
    '--cluster',
    'bench',
    '--jwks-file',
    join(dir, 'sa', 'jwks.json'),
    '--token-issuer',
    DEV_TOKEN_ISSUER,
    '--max-in-flight',
    String(o.serverMaxInFlight),
    '--log-level',
    o.logLevel,
    ...o.serveArgs,
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', logFd] });
  closeSync(logFd);
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const exited = new Promise<number | null>((r) => {
    child.once('exit', (code) => {
      r(code);
    });
  });
  let out = '';
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`lanyard serve printed no address in 30 s; see ${logPath}`));
    }, 30_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /gRPC on [^:\s]+:(\d+)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolvePort(Number(m[1]));
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`lanyard serve exited with ${code}: ${readFileSync(logPath, 'utf8').slice(-2000)}`));
    });
  });
  if (child.pid === undefined) throw new Error('lanyard serve has no pid');
  return {
    child,
    pid: child.pid,
    port,
    logPath,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(t);
      process.off('exit', killOnExit);
      return code;
    },
  };
}

interface ScenarioResult {
  readonly name: Scenario;
  readonly concurrency: number;
  readonly requested: number;
  readonly sent: number;
  readonly ok: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly errorSamples: Readonly<Record<string, string>>;
  readonly timedOut: boolean;
  readonly wallS: number;
  readonly certificatesPerS: number;
  /** over successful calls, ms */
  readonly latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** whole server process tree */
  readonly serverCpuUsPerCertificate: number;
  readonly serverCpuMainThreadUsPerCertificate: number;
  readonly serverCpuOtherThreadsUsPerCertificate: number;
  readonly serverCpuByPidUs: Readonly<Record<string, number>>;
  /** server CPU seconds per wall second */
  readonly serverCores: number;
  readonly ratioToOpensslFloor: number | undefined;
  readonly clientCpuUsPerCertificate: number;
  /** VmHWM during the scenario (reset before it when the kernel allows), MB */
  readonly peakRssMb: number;
  readonly peakRssMbByPid: Readonly<Record<string, number>>;
  readonly peakRssIsScenarioOnly: boolean;
  /** largest sum of VmRSS seen by sampling every 50 ms, MB */
  readonly sampledPeakRssMb: number;
  /** largest sum of PSS (shared pages split between processes) seen by sampling every 200 ms, MB */
  readonly sampledPeakPssMb: number;
  readonly rssBeforeMb: number;
  readonly serverProcesses: number;
  /** the whole machine during the scenario (/proc/stat), in cores: busy, idle and stolen */
  readonly machineCores: { busy: number; idle: number; steal: number; otherProcesses: number };
  /** the load generator's CPU seconds per wall second */
  readonly clientCores: number;
  readonly window: ProfileWindow;
}

async function runScenario(
  name: Scenario,
  server: Server,
  channels: readonly CertifyChannel[],
  workloads: readonly Workload[],
  concurrency: number,
  o: Options,
  floorUs: number | undefined,
  ticksPerS: number,
): Promise<ScenarioResult> {
  const pids = processTree(server.pid);
  const rssBefore = currentRssKib(pids);
  const resetOk = resetPeakRss(server.pid);
  let sampledPeak = rssBefore;
  let sampledPeakPss = currentPssKib(pids);
  let ticks = 0;
  const sampler = setInterval(() => {
    sampledPeak = Math.max(sampledPeak, currentRssKib(pids));
    sampledPeakPss = Math.max(sampledPeakPss, currentPssKib(pids));
    // smaps_rollup walks the page tables: every 200 ms is enough
    if (++ticks % 4 === 0) sampledPeakPss = Math.max(sampledPeakPss, currentPssKib(pids));
  }, 50);
  const cpuBefore = sampleCpu(server.pid);
  const sysBefore = sampleSystemCpu();
  const startUs = monotonicUs();
  let r: LoadResult;
  try {
    r = await runLoad({
      channels,
      workloads,
      concurrency,
      timeLimitMs: o.timeLimitS * 1000,
      deadlineMs: o.deadlineS * 1000,
    });
  } finally {
    clearInterval(sampler);
  }
  const endUs = monotonicUs();
  const cpu = cpuDelta(cpuBefore, sampleCpu(server.pid));
  const sysAfter = sampleSystemCpu();
  const hwm = peakRssKib(server.pid);
  sampledPeak = Math.max(sampledPeak, currentRssKib(pids));
  sampledPeakPss = Math.max(sampledPeakPss, currentPssKib(pids));

  for (const s of r.samples) {
    const leaf = parseCertificate(s.response.leaf_certificate);
    if (leaf.dnsNames[0] !== s.workload.identity)
      throw new Error(
        `${name}: a certificate for ${leaf.dnsNames.join(',')} came back for ${s.workload.identity}`,
      );
  }
  const usPerTick = 1e6 / ticksPerS;
  const perCert = (ticks: number): number => (r.ok > 0 ? round((ticks * usPerTick) / r.ok) : Number.NaN);
  const wallS = r.wallMs / 1000;
  const cpuUs = perCert(cpu.totalTicks);
  const windowS = (endUs - startUs) / 1e6;
  const serverCores = cpu.totalTicks / ticksPerS / windowS;
  const clientCores = r.clientCpuUs / 1e6 / windowS;
  const machineBusy = (sysAfter.busy - sysBefore.busy) / ticksPerS / windowS;
  const peakByPid = Object.fromEntries(Object.entries(hwm).map(([p, k]) => [p, round(k / 1024)]));
  return {
    name,
    concurrency,
    requested: r.requested,
    sent: r.sent,
    ok: r.ok,
    errors: r.errors,
    errorSamples: r.errorSamples,
    timedOut: r.timedOut,
    wallS: round(wallS, 3),
    certificatesPerS: wallS > 0 ? round(r.ok / wallS, 0) : 0,
    latencyMs: {
      p50: round(quantile(r.okLatenciesMs, 0.5)),
      p90: round(quantile(r.okLatenciesMs, 0.9)),
      p99: round(quantile(r.okLatenciesMs, 0.99)),
      max: round(quantile(r.okLatenciesMs, 1)),
    },
    serverCpuUsPerCertificate: cpuUs,
    serverCpuMainThreadUsPerCertificate: perCert(cpu.mainThreadsTicks),
    serverCpuOtherThreadsUsPerCertificate: perCert(cpu.otherThreadsTicks),
    serverCpuByPidUs: Object.fromEntries(
      Object.entries(cpu.byPidTicks).map(([p, t]) => [p, Math.round(t * usPerTick)]),
    ),
    serverCores: round(serverCores, 2),
    ratioToOpensslFloor: floorUs !== undefined ? round(cpuUs / floorUs, 2) : undefined,
    clientCpuUsPerCertificate: r.ok > 0 ? round(r.clientCpuUs / r.ok) : Number.NaN,
    peakRssMb: round(Object.values(hwm).reduce((a, b) => a + b, 0) / 1024),
    peakRssMbByPid: peakByPid,
    peakRssIsScenarioOnly: resetOk,
    sampledPeakRssMb: round(sampledPeak / 1024),
    sampledPeakPssMb: round(sampledPeakPss / 1024),
    rssBeforeMb: round(rssBefore / 1024),
    serverProcesses: pids.length,
    machineCores: {
      busy: round(machineBusy, 2),
      idle: round((sysAfter.idle - sysBefore.idle) / ticksPerS / windowS, 2),
      steal: round((sysAfter.steal - sysBefore.steal) / ticksPerS / windowS, 2),
      otherProcesses: round(Math.max(0, machineBusy - serverCores - clientCores), 2),
    },
    clientCores: round(clientCores, 2),
    window: {
      name,
      startUs,
      endUs,
      certificates: r.ok,
      mainThreadCpuMs: Math.round((cpu.mainThreadsTicks * usPerTick) / 1000),
    },
  };
}

interface TargetCheck {
  readonly scenario: Scenario;
  readonly what: string;
  readonly target: string;
  readonly measured: string;
  readonly met: boolean;
}

function checkTargets(results: readonly ScenarioResult[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  const errorCount = (r: ScenarioResult): number => Object.values(r.errors).reduce((a, b) => a + b, 0);
  for (const r of results) {
    if (r.name === 'cold') {
      out.push({
        scenario: 'cold',
        what: `throughput at ${r.concurrency} in flight`,
        target: '≥ 2,500 certificates/s',
        measured: `${r.certificatesPerS} /s`,
        met: r.certificatesPerS >= 2500,
      });
      out.push({
        scenario: 'cold',
        what: 'p99 latency',
        target: '≤ 200 ms',
        measured: `${r.latencyMs.p99} ms`,
        met: r.latencyMs.p99 <= 200,
      });
      out.push({
        scenario: 'cold',
        what: 'server CPU per certificate',
        target: '≤ 400 µs',
        measured: `${r.serverCpuUsPerCertificate} µs`,
        met: r.serverCpuUsPerCertificate <= 400,
      });
    } else if (r.name === 'renew') {
      out.push({
        scenario: 'renew',
        what: 'server CPU per certificate',
        target: '≤ 150 µs',
        measured: `${r.serverCpuUsPerCertificate} µs`,
        met: r.serverCpuUsPerCertificate <= 150,
      });
    } else {
      out.push({
        scenario: 'storm',
        what: 'served, no error',
        target: `${r.requested} of ${r.requested}, 0 errors`,
        measured: `${r.ok} of ${r.requested}, ${errorCount(r)} errors`,
        met: r.ok === r.requested && errorCount(r) === 0,
      });
      out.push({
        scenario: 'storm',
        what: 'server peak RSS (sum of VmHWM)',
        target: '≤ 300 MB',
        measured: `${r.peakRssMb} MB`,
        met: r.peakRssMb <= 300,
      });
    }
  }
  return out;
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = (rows[0] ?? []).map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r) =>
      r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  '),
    )
    .join('\n');
}

function formatResults(results: readonly ScenarioResult[], checks: readonly TargetCheck[]): string {
  const rows: string[][] = [
    [
      'scenario',
      'in flight',
      'ok/requested',
      'errors',
      'wall s',
      'cert/s',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'max ms',
      'srv CPU µs/cert',
      '× OpenSSL floor',
      'main/other thr µs',
      'srv cores',
      'peak RSS MB',
      'client µs/cert',
    ],
  ];
  for (const r of results) {
    const errs = Object.entries(r.errors)
      .map(([k, v]) => `${k}:${v}`)
      .join(',');
    rows.push([
      r.name,
      String(r.concurrency),
      `${r.ok}/${r.requested}`,
      errs === '' ? '0' : errs,
      r.wallS.toFixed(2),
      String(r.certificatesPerS),
      r.latencyMs.p50.toFixed(1),
      r.latencyMs.p90.toFixed(1),
      r.latencyMs.p99.toFixed(1),
      r.latencyMs.max.toFixed(1),
      r.serverCpuUsPerCertificate.toFixed(1),
      r.ratioToOpensslFloor !== undefined ? r.ratioToOpensslFloor.toFixed(2) : 'n/a',
      `${r.serverCpuMainThreadUsPerCertificate.toFixed(0)}/${r.serverCpuOtherThreadsUsPerCertificate.toFixed(0)}`,
      r.serverCores.toFixed(2),
      r.peakRssMb.toFixed(1),
      r.clientCpuUsPerCertificate.toFixed(0),
    ]);
  }
  const lines = [table(rows), ''];
  for (const r of results) {
    const per = Object.entries(r.peakRssMbByPid)
      .map(([p, mb]) => `pid ${p}: ${mb} MB`)
      .join(', ');
    lines.push(
      `${r.name}: peak RSS per process ${per}${r.peakRssIsScenarioOnly ? '' : ' (since process start: VmHWM could not be reset)'}; sampled peak ${r.sampledPeakRssMb} MB (PSS ${r.sampledPeakPssMb} MB), ${r.rssBeforeMb} MB before`,
    );
    lines.push(
      `  machine: ${r.machineCores.busy} cores busy (server ${r.serverCores}, load generator ${r.clientCores}, other processes ${r.machineCores.otherProcesses}), ${r.machineCores.idle} idle, ${r.machineCores.steal} stolen`,
    );
    if (r.machineCores.otherProcesses >= 0.2)
      lines.push(
        `  WARNING: other processes used ${r.machineCores.otherProcesses} cores during ${r.name}; its figures are noisy, run again on a quiet machine`,
      );
    for (const [code, msg] of Object.entries(r.errorSamples)) lines.push(`  ${code}: ${msg}`);
    if (r.timedOut) lines.push(`  the time limit stopped the scenario after ${r.sent} calls`);
  }
  lines.push('');
  lines.push(
    table([
      ['target', 'scenario', 'wanted', 'measured', ''],
      ...checks.map((c) => [c.what, c.scenario, c.target, c.measured, c.met ? 'met' : 'NOT MET']),
    ]),
  );
  return lines.join('\n');
}

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

async function main(): Promise<number> {
  let o: Options | undefined;
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
  const cmd = lanyardCommand(o.lanyard);
  if (cmd.fromSources) log('the server runs from sources through tsx (npm run bench runs dist/)');
  const benchStarted = performance.now();
  const ticksPerS = clockTicksPerSecond();
  const dir = mkdtempSync(join(tmpdir(), 'lanyard-bench-'));
  let server: Server | undefined;
  let channels: CertifyChannel[] = [];
  try {
    log(`temporary directory ${dir}`);
    runLanyard(o, ['anchor', 'create', '--out', join(dir, 'anchor')]);
    runLanyard(o, [
      'issuer',
      'create',
      '--anchor',
      join(dir, 'anchor'),
      '--cluster',
      'bench',
      '--out',
      join(dir, 'issuer'),
    ]);
    await createSigningKeyDir(join(dir, 'sa'), { clock: systemClock });

    let openssl: OpensslSpeed | undefined;
    if (o.opensslSeconds > 0) {
      log(`openssl speed -seconds ${o.opensslSeconds} ecdsap256 …`);
      openssl = measureOpensslSpeed(o.opensslSeconds);
      if (openssl === undefined) log('openssl speed failed or openssl is missing; no floor');
      else
        log(
          `openssl: ${Math.round(openssl.signPerS)} sign/s, ${Math.round(openssl.verifyPerS)} verify/s → floor ${round(openssl.certifyFloorUs)} µs per Certify`,
        );
    }

    if (o.scenarios.includes('renew') && o.warmup + o.workloads > 10_000)
      log(
        'the issuer caches 10,000 CSRs and tokens: with more warm-up and cold workloads than that, renewals miss the cache',
      );
    const wantCold = o.scenarios.includes('cold') || o.scenarios.includes('renew');
    const wantStorm = o.scenarios.includes('storm');
    const nCold = wantCold ? o.workloads : 0;
    const nStorm = wantStorm ? o.storm : 0;
    const genStarted = performance.now();
    const all = await makeWorkloadsInParallel({
      signingKeyDir: join(dir, 'sa'),
      tokenIssuer: DEV_TOKEN_ISSUER,
      prefix: 'wl',
      from: 0,
      to: o.warmup + nCold + nStorm,
      tokenTtlMs: 3_600_000,
    });
    const warm = all.slice(0, o.warmup);
    const cold = all.slice(o.warmup, o.warmup + nCold);
    const storm = all.slice(o.warmup + nCold);
    log(
      `made ${all.length} workloads (key, CSR, token) in ${round((performance.now() - genStarted) / 1000, 2)} s`,
    );

    const serverStartedMs = systemClock.now().getTime();
    server = await startServer(dir, o);
    log(
      `lanyard serve pid ${server.pid} on 127.0.0.1:${server.port} (--max-in-flight ${o.serverMaxInFlight})`,
    );
    channels = await openChannels(`127.0.0.1:${server.port}`, o.connections);
    const connections = establishedConnections(server.port);
    log(`${o.connections} channels open; ${connections} established connections to the server port`);

    const profile = o.cpuProfDir !== undefined;
    const pause = (): Promise<void> => sleep(profile ? 1000 : 250);
    if (warm.length > 0) {
      const w = await runLoad({
        channels,
        workloads: warm,
        concurrency: Math.min(64, o.concurrency),
        timeLimitMs: o.timeLimitS * 1000,
        deadlineMs: o.deadlineS * 1000,
      });
      log(`warm-up: ${w.ok} of ${w.requested} certified`);
      await pause();
    }

    const results: ScenarioResult[] = [];
    const floorUs = openssl?.certifyFloorUs;
    if (o.scenarios.includes('renew') && !o.scenarios.includes('cold')) {
      const p = await runLoad({
        channels,
        workloads: cold,
        concurrency: o.concurrency,
        timeLimitMs: o.timeLimitS * 1000,
        deadlineMs: o.deadlineS * 1000,
      });
      log(`renew needs certified workloads: ${p.ok} of ${p.requested} certified once (untimed)`);
      await pause();
    }
    for (const name of o.scenarios) {
      const workloads = name === 'storm' ? storm : cold;
      const concurrency = name === 'storm' ? o.stormConcurrency : o.concurrency;
      log(
        `${name}: ${workloads.length} calls, ${concurrency} in flight over ${channels.length} connections …`,
      );
      const r = await runScenario(name, server, channels, workloads, concurrency, o, floorUs, ticksPerS);
      log(`${name}: ${r.ok} ok in ${r.wallS} s`);
      results.push(r);
      await pause();
    }
    for (const c of channels) c.close();
    channels = [];

    const stopCode = await server.stop();
    const logText = readFileSync(server.logPath, 'utf8');
    const errorLines = logText.split('\n').filter((l) => /"level":(50|60)/.test(l));

    let profileSummaries: WindowSummary[] | undefined;
    let profilePaths: string[] = [];
    if (o.cpuProfDir !== undefined) {
      const dirWanted = o.cpuProfDir;
      // one profile per process: the server, and its node:cluster workers if any
      profilePaths = readdirSync(dirWanted)
        .filter((f) => f.endsWith(`.cpuprofile`))
        .map((f) => join(dirWanted, f))
        .filter((f) => statSync(f).mtimeMs >= serverStartedMs);
      if (profilePaths.length === 0) log(`no .cpuprofile was written in ${dirWanted}`);
      else
        profileSummaries = summariseProfiles(
          profilePaths.map((p) => readCpuProfile(p)),
          results.map((r) => r.window),
        );
    }

    const checks = checkTargets(results);
    const report = {
      generatedAt: systemClock.now().toISOString(),
      machine: machine(openssl?.version),
      settings: {
        scenarios: o.scenarios,
        workloads: o.workloads,
        storm: o.storm,
        concurrency: o.concurrency,
        stormConcurrency: o.stormConcurrency,
        connections: o.connections,
        establishedConnections: connections,
        serverMaxInFlight: o.serverMaxInFlight,
        warmup: o.warmup,
        timeLimitS: o.timeLimitS,
        deadlineS: o.deadlineS,
        serverLogLevel: o.logLevel,
        serverCommand:
          `node ${cmd.node.join(' ')} ${cmd.entry} serve … --max-in-flight ${o.serverMaxInFlight} --log-level ${o.logLevel} ${o.serveArgs.join(' ')}`
            .replace(/ +/g, ' ')
            .trim(),
        lanyardSource: sourceRevision(cmd.entry),
        clockTicksPerS: ticksPerS,
        cpuProfiles: profilePaths,
      },
      openssl,
      scenarios: Object.fromEntries(results.map((r) => [r.name, r])),
      targets: checks,
      server: {
        exitCode: stopCode,
        errorLogLines: errorLines.length,
        firstErrorLogLines: errorLines.slice(0, 3),
      },
      profile: profileSummaries,
      benchSeconds: round((performance.now() - benchStarted) / 1000, 1),
    };
    writeFileSync(o.out, `${JSON.stringify(report, null, 2)}\n`);

    const out: string[] = [''];
    out.push(
      `Lanyard Certify bench: ${String(report.machine.nproc)} cores (${String(report.machine.cpuModel)}), node ${process.version}; server ${report.settings.serverCommand}`,
    );
    out.push(
      `${o.connections} HTTP/2 connections (${connections} established), ${o.warmup} warm-up calls; latency percentiles over successful calls; CPU = utime+stime of the server process tree (CLK_TCK ${ticksPerS})`,
    );
    if (openssl !== undefined)
      out.push(
        `OpenSSL floor: ${Math.round(openssl.signPerS)} sign/s, ${Math.round(openssl.verifyPerS)} verify/s → 1 sign + 2 verifies = ${round(openssl.certifyFloorUs)} µs of one core (${openssl.version})`,
      );
    out.push('');
    out.push(formatResults(results, checks));
    if (errorLines.length > 0)
      out.push(`\nthe server logged ${errorLines.length} error lines; first: ${errorLines[0] ?? ''}`);
    if (profileSummaries !== undefined) {
      out.push(`\nCPU profiles (main threads of the server processes): ${profilePaths.join(', ')}\n`);
      out.push(formatProfileSummaries(profileSummaries));
    }
    out.push(`\nresults: ${o.out} (bench took ${report.benchSeconds} s)`);
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  } finally {
    for (const c of channels) c.close();
    if (server !== undefined) await server.stop();
    if (o.keep) log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
