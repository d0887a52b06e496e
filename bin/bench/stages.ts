// The stages of a bench run against one server: the workloads made up front, an untimed warm-up, the
// untimed first certification renew needs when cold does not run, then each timed scenario in turn.
import { join } from 'node:path';
import { DEV_TOKEN_ISSUER } from '../token/index.js';
import { log, round } from './format.js';
import { runLoad, type CertifyChannel, type LoadResult } from './load.js';
import type { BenchOptions } from './options.js';
import { runScenario, type ScenarioResult } from './scenario.js';
import { makeWorkloadsInParallel, type Workload } from './workloads.js';

export interface WorkloadSets {
  /** the warm-up's, never reused */
  readonly warm: readonly Workload[];
  /** cold's, which renew sends again */
  readonly cold: readonly Workload[];
  readonly storm: readonly Workload[];
  /**
   * every workload made, in index order, for the runs against new servers (the per-stage pass, each
   * fleet size): a new server has seen none of them
   */
  readonly all: readonly Workload[];
}

/** How many workloads the run needs: the scenarios' own, or more for the stage pass or the fleet. */
export function workloadsNeeded(o: BenchOptions): number {
  const wantCold = o.scenarios.includes('cold') || o.scenarios.includes('renew');
  const main = o.warmup + (wantCold ? o.workloads : 0) + (o.scenarios.includes('storm') ? o.storm : 0);
  const stagePass = wantCold && o.stages ? o.stageWarmup + o.stageWorkloads : 0;
  const fleet = o.scenarios.includes('fleet') ? Math.max(...o.fleetSizes) : 0;
  return Math.max(main, stagePass, fleet);
}

/** Every workload (key, CSR, token) the run needs, made in parallel before the server starts. */
export async function makeWorkloadSets(o: BenchOptions, dir: string): Promise<WorkloadSets> {
  const wantCold = o.scenarios.includes('cold') || o.scenarios.includes('renew');
  const nCold = wantCold ? o.workloads : 0;
  const nStorm = o.scenarios.includes('storm') ? o.storm : 0;
  const genStarted = performance.now();
  const all = await makeWorkloadsInParallel({
    signingKeyDir: join(dir, 'sa'),
    tokenIssuer: DEV_TOKEN_ISSUER,
    prefix: 'wl',
    from: 0,
    to: workloadsNeeded(o),
    tokenTtlMs: 3_600_000,
  });
  log(
    `made ${all.length} workloads (key, CSR, token) in ${round((performance.now() - genStarted) / 1000, 2)} s`,
  );
  return {
    warm: all.slice(0, o.warmup),
    cold: all.slice(o.warmup, o.warmup + nCold),
    storm: all.slice(o.warmup + nCold, o.warmup + nCold + nStorm),
    all,
  };
}

export interface StagesRun {
  readonly options: BenchOptions;
  readonly serverPid: number;
  readonly channels: readonly CertifyChannel[];
  readonly workloads: WorkloadSets;
  readonly floorUs: number | undefined;
  readonly ticksPerS: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The warm-up, renew's first certification if needed, and the timed scenarios, with a pause after each. */
export async function runStages(s: StagesRun): Promise<ScenarioResult[]> {
  const { options: o, channels, workloads: sets } = s;
  // a profile needs the server idle between stages long enough to tell them apart
  const pause = (): Promise<void> => sleep(o.cpuProfDir !== undefined ? 1000 : 250);
  const untimed = (workloads: readonly Workload[], concurrency: number): Promise<LoadResult> =>
    runLoad({
      channels,
      workloads,
      concurrency,
      timeLimitMs: o.timeLimitS * 1000,
      deadlineMs: o.deadlineS * 1000,
    });
  if (sets.warm.length > 0) {
    const w = await untimed(sets.warm, Math.min(64, o.concurrency));
    log(`warm-up: ${w.ok} of ${w.requested} certified`);
    await pause();
  }
  if (o.scenarios.includes('renew') && !o.scenarios.includes('cold')) {
    const p = await untimed(sets.cold, o.concurrency);
    log(`renew needs certified workloads: ${p.ok} of ${p.requested} certified once (untimed)`);
    await pause();
  }
  const results: ScenarioResult[] = [];
  for (const name of o.scenarios) {
    if (name === 'fleet') continue; // against servers of its own (fleet.ts)
    const workloads = name === 'storm' ? sets.storm : sets.cold;
    const concurrency = name === 'storm' ? o.stormConcurrency : o.concurrency;
    log(`${name}: ${workloads.length} calls, ${concurrency} in flight over ${channels.length} connections …`);
    const r = await runScenario({ ...s, name, workloads, concurrency });
    log(`${name}: ${r.ok} ok in ${r.wallS} s`);
    results.push(r);
    await pause();
  }
  return results;
}
