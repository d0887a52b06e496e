// What the server's process tree and the machine did while one scenario ran: CPU ticks (server and
// whole machine), peak RSS from the kernel (VmHWM), and RSS and PSS sampled during the run.
import {
  cpuDelta,
  currentPssKib,
  currentRssKib,
  peakRssKib,
  processTree,
  resetPeakRss,
  sampleCpu,
  sampleSystemCpu,
  type CpuDelta,
  type SystemCpu,
} from './proc-stats.js';

export interface ScenarioSample {
  /** the server's process tree when the scenario started */
  readonly pids: readonly number[];
  readonly rssBeforeKib: number;
  /** whether VmHWM could be reset before the scenario (else it counts since process start) */
  readonly resetOk: boolean;
  /** largest sum of VmRSS seen by sampling, KiB */
  readonly sampledPeakKib: number;
  /** largest sum of PSS seen by sampling, KiB */
  readonly sampledPeakPssKib: number;
  readonly cpu: CpuDelta;
  readonly sysBefore: SystemCpu;
  readonly sysAfter: SystemCpu;
  /** VmHWM per pid at the end, KiB */
  readonly hwm: Record<string, number>;
  /** monotonic µs when the run started and ended */
  readonly startUs: number;
  readonly endUs: number;
}

const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

/**
 * Runs `run` while sampling the server tree of `serverPid`; the sampling timer stops even if it
 * throws. `resetPeak` false keeps VmHWM counting since each process started.
 */
export async function sampleDuring<T>(
  serverPid: number,
  run: () => Promise<T>,
  resetPeak = true,
): Promise<{ result: T; sample: ScenarioSample }> {
  const pids = processTree(serverPid);
  const rssBefore = currentRssKib(pids);
  const resetOk = resetPeak && resetPeakRss(serverPid);
  let sampledPeak = rssBefore;
  let sampledPeakPss = currentPssKib(pids);
  let ticks = 0;
  const sampler = setInterval(() => {
    sampledPeak = Math.max(sampledPeak, currentRssKib(pids));
    // smaps_rollup walks the page tables: every 200 ms is enough
    if (++ticks % 4 === 0) sampledPeakPss = Math.max(sampledPeakPss, currentPssKib(pids));
  }, 50);
  const cpuBefore = sampleCpu(serverPid);
  const sysBefore = sampleSystemCpu();
  const startUs = monotonicUs();
  let result: T;
  try {
    result = await run();
  } finally {
    clearInterval(sampler);
  }
  const endUs = monotonicUs();
  const cpu = cpuDelta(cpuBefore, sampleCpu(serverPid));
  const sysAfter = sampleSystemCpu();
  const hwm = peakRssKib(serverPid);
  sampledPeak = Math.max(sampledPeak, currentRssKib(pids));
  sampledPeakPss = Math.max(sampledPeakPss, currentPssKib(pids));
  return {
    result,
    sample: {
      pids,
      rssBeforeKib: rssBefore,
      resetOk,
      sampledPeakKib: sampledPeak,
      sampledPeakPssKib: sampledPeakPss,
      cpu,
      sysBefore,
      sysAfter,
      hwm,
      startUs,
      endUs,
    },
  };
}
