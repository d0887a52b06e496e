// One timed scenario: the load from runLoad, sampled on the server (sampling.ts), checked (each
// certificate names the workload that asked for it) and turned into per-certificate figures.
import { parseCertificate } from '../../ca/index.js';
import type { ProfileWindow } from './cpu-profile.js';
import { round } from './format.js';
import { quantile, runLoad, type CertifyChannel, type LoadResult } from './load.js';
import type { BenchOptions, Scenario } from './options.js';
import { sampleDuring, type ScenarioSample } from './sampling.js';
import type { Workload } from './workloads.js';

/** One scenario's figures; the call counts are the load's own (LoadResult). */
export interface ScenarioResult extends Pick<
  LoadResult,
  'requested' | 'sent' | 'ok' | 'errors' | 'errorSamples' | 'timedOut'
> {
  readonly name: Scenario;
  readonly concurrency: number;
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
  /** main-thread CPU per server process, ms (for the per-stage table) */
  readonly mainThreadCpuMsByPid: Readonly<Record<string, number>>;
  /** the V8 profiler's threads (under --cpu-prof), ms; not in the other-threads figure */
  readonly profilerThreadsCpuMs: number;
}

export interface ScenarioRun {
  readonly name: Scenario;
  readonly serverPid: number;
  readonly channels: readonly CertifyChannel[];
  readonly workloads: readonly Workload[];
  readonly concurrency: number;
  readonly options: BenchOptions;
  /** the OpenSSL floor per Certify, µs, when measured */
  readonly floorUs: number | undefined;
  readonly ticksPerS: number;
  /** no call starts after this long, s (default: the --time-limit option) */
  readonly timeLimitS?: number;
  /** which channel the i-th call uses (default: round-robin) */
  readonly channelOf?: (i: number) => number;
  /** whether VmHWM is reset before the run (default true; false: peaks count since the server started) */
  readonly resetPeakRss?: boolean;
}

export async function runScenario(s: ScenarioRun): Promise<ScenarioResult> {
  const { result: r, sample } = await sampleDuring(
    s.serverPid,
    () =>
      runLoad({
        channels: s.channels,
        workloads: s.workloads,
        concurrency: s.concurrency,
        timeLimitMs: (s.timeLimitS ?? s.options.timeLimitS) * 1000,
        deadlineMs: s.options.deadlineS * 1000,
        ...(s.channelOf !== undefined ? { channelOf: s.channelOf } : {}),
      }),
    s.resetPeakRss ?? true,
  );
  for (const x of r.samples) {
    const leaf = parseCertificate(x.response.leaf_certificate);
    if (leaf.dnsNames[0] !== x.workload.identity)
      throw new Error(
        `${s.name}: a certificate for ${leaf.dnsNames.join(',')} came back for ${x.workload.identity}`,
      );
  }
  return scenarioResult(s, r, sample);
}

function scenarioResult(s: ScenarioRun, r: LoadResult, m: ScenarioSample): ScenarioResult {
  const { name, concurrency, floorUs, ticksPerS } = s;
  const { cpu, sysBefore, sysAfter, hwm, startUs, endUs } = m;
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
    peakRssIsScenarioOnly: m.resetOk,
    sampledPeakRssMb: round(m.sampledPeakKib / 1024),
    sampledPeakPssMb: round(m.sampledPeakPssKib / 1024),
    rssBeforeMb: round(m.rssBeforeKib / 1024),
    serverProcesses: m.pids.length,
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
    mainThreadCpuMsByPid: Object.fromEntries(
      Object.entries(cpu.mainThreadsByPidTicks).map(([p, t]) => [p, Math.round((t * usPerTick) / 1000)]),
    ),
    profilerThreadsCpuMs: Math.round((cpu.profilerThreadsTicks * usPerTick) / 1000),
  };
}
