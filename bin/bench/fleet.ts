// The fleet scenario: per size, a new server and a storm of that many distinct new workloads over new
// connections; for one size, then renewals of all of them over other new connections, each workload's
// channel drawn at random (seeded), so that about half of them reach another node:cluster worker than
// their first call, as when proxies reconnect. Memory is the peak since the server started.
import { log, round } from './format.js';
import { openChannels, type CertifyChannel } from './load.js';
import type { BenchOptions } from './options.js';
import { connectionOwners, processTree } from './proc-stats.js';
import { runScenario, type ScenarioResult } from './scenario.js';
import { startServer, type Server } from './server.js';
import { cacheLookups, hitRates, type CacheHitRates } from './server-metrics.js';
import type { Workload } from './workloads.js';

export interface FleetPhase {
  readonly result: ScenarioResult;
}

export interface FleetRenewal {
  readonly result: ScenarioResult;
  /** share of renewals sent over a connection held by another process than their first call's, % */
  readonly otherWorkerPercent: number | undefined;
  /** renewal-cache hit rates during the renewals (/metrics), undefined when the server has no such metric */
  readonly cacheHitRates: CacheHitRates | undefined;
}

export interface FleetSize {
  readonly size: number;
  readonly storm: ScenarioResult;
  readonly renewal: FleetRenewal | undefined;
  /** sum of VmHWM of the server processes at the end (storm, and renewals if any), MB */
  readonly peakRssMb: number;
  /** largest sum of PSS sampled during the storm and renewals, MB */
  readonly sampledPeakPssMb: number;
  readonly seconds: number;
}

export interface FleetResult {
  readonly sizes: readonly FleetSize[];
  readonly seconds: number;
}

export interface FleetRun {
  readonly options: BenchOptions;
  readonly dir: string;
  /** every workload made; size N uses the first N */
  readonly workloads: readonly Workload[];
  readonly ticksPerS: number;
  readonly floorUs: number | undefined;
}

/** A small seeded PRNG (mulberry32), so that a rerun draws the same channels. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` channels opened one after another, each with the server process that took its connection. */
async function channelsWithOwners(
  server: Server,
  n: number,
): Promise<{ channels: CertifyChannel[]; owners: (number | undefined)[] }> {
  const tree = processTree(server.pid);
  // with workers, the primary only hands connections over
  const holders = tree.length > 1 ? tree.filter((p) => p !== server.pid) : tree;
  const channels: CertifyChannel[] = [];
  const owners: (number | undefined)[] = [];
  for (let i = 0; i < n; i++) {
    const before = connectionOwners(server.port, holders);
    channels.push(...(await openChannels(`127.0.0.1:${server.port}`, 1)));
    const fresh = [...connectionOwners(server.port, holders)].filter(([inode]) => !before.has(inode));
    owners.push(fresh.length === 1 ? fresh[0]?.[1] : undefined);
  }
  return { channels, owners };
}

const closeAll = (cs: readonly CertifyChannel[]): void => {
  for (const c of cs) c.close();
};

async function renewAll(
  f: FleetRun,
  server: Server,
  workloads: readonly Workload[],
  firstOwners: readonly (number | undefined)[],
): Promise<FleetRenewal> {
  const o = f.options;
  const before = await cacheLookups(server.adminPort);
  const { channels, owners } = await channelsWithOwners(server, o.connections);
  const random = seededRandom(workloads.length);
  const pick = Uint16Array.from(workloads, () => Math.floor(random() * channels.length));
  let known = 0;
  let other = 0;
  pick.forEach((c, i) => {
    const first = firstOwners[i % firstOwners.length];
    const now = owners[c];
    if (first === undefined || now === undefined) return;
    known++;
    if (first !== now) other++;
  });
  log(
    `fleet ${workloads.length}: renewing all over ${channels.length} new connections, ${o.concurrency} in flight …`,
  );
  try {
    const result = await runScenario({
      name: 'fleet',
      serverPid: server.pid,
      channels,
      workloads,
      concurrency: o.concurrency,
      options: o,
      floorUs: f.floorUs,
      ticksPerS: f.ticksPerS,
      timeLimitS: o.fleetTimeLimitS,
      channelOf: (i) => pick[i] as number,
      resetPeakRss: false,
    });
    const after = await cacheLookups(server.adminPort);
    return {
      result,
      otherWorkerPercent: known > 0 ? round((100 * other) / known) : undefined,
      cacheHitRates: hitRates(before, after),
    };
  } finally {
    closeAll(channels);
  }
}

async function runSize(f: FleetRun, size: number): Promise<FleetSize> {
  const o = f.options;
  const started = performance.now();
  const workloads = f.workloads.slice(0, size);
  const server = await startServer(f.dir, o, { logName: `fleet-${size}.log`, cpuProfDir: null });
  try {
    const { channels, owners } = await channelsWithOwners(server, o.connections);
    log(
      `fleet ${size}: storm of ${size} new workloads, ${o.stormConcurrency} in flight over ${channels.length} new connections …`,
    );
    let storm: ScenarioResult;
    try {
      storm = await runScenario({
        name: 'fleet',
        serverPid: server.pid,
        channels,
        workloads,
        concurrency: o.stormConcurrency,
        options: o,
        floorUs: f.floorUs,
        ticksPerS: f.ticksPerS,
        timeLimitS: o.fleetTimeLimitS,
        resetPeakRss: false,
      });
    } finally {
      closeAll(channels);
    }
    log(`fleet ${size}: ${storm.ok} ok in ${storm.wallS} s`);
    const renewal = size === o.fleet ? await renewAll(f, server, workloads, owners) : undefined;
    const last = renewal?.result ?? storm;
    return {
      size,
      storm,
      renewal,
      peakRssMb: last.peakRssMb,
      sampledPeakPssMb: Math.max(storm.sampledPeakPssMb, renewal?.result.sampledPeakPssMb ?? 0),
      seconds: round((performance.now() - started) / 1000),
    };
  } finally {
    await server.stop();
  }
}

/** Every size of --fleet-sizes in turn, each against its own new server. */
export async function runFleet(f: FleetRun): Promise<FleetResult> {
  const started = performance.now();
  const sizes: FleetSize[] = [];
  for (const size of f.options.fleetSizes) sizes.push(await runSize(f, size));
  const seconds = round((performance.now() - started) / 1000);
  log(`fleet: ${sizes.length} sizes in ${seconds} s`);
  return { sizes, seconds };
}
