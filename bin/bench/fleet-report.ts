// The fleet scenario as text: one row per storm and per renewal run, then how long it took.
import type { FleetResult, FleetSize } from './fleet.js';
import type { BenchOptions } from './options.js';
import { errorsCell, table, threadsCell } from './results-table.js';
import type { ScenarioResult } from './scenario.js';

const HEADER = [
  'fleet',
  'phase',
  'in flight',
  'ok/requested',
  'errors',
  'wall s',
  'cert/s',
  'p50 ms',
  'p99 ms',
  'srv CPU µs/cert',
  'main/other thr µs',
  'peak RSS MB',
  'peak PSS MB',
  'cache hits csr/token',
];

function row(size: number, phase: string, r: ScenarioResult, s: FleetSize, hits: string): string[] {
  return [
    String(size),
    phase,
    String(r.concurrency),
    `${r.ok}/${r.requested}`,
    errorsCell(r),
    r.wallS.toFixed(2),
    String(r.certificatesPerS),
    r.latencyMs.p50.toFixed(1),
    r.latencyMs.p99.toFixed(1),
    r.serverCpuUsPerCertificate.toFixed(1),
    threadsCell(r),
    // the peak since the server started: through the storm, and through the renewals on their row
    r.peakRssMb.toFixed(1),
    (phase === 'storm' ? r.sampledPeakPssMb : s.sampledPeakPssMb).toFixed(1),
    hits,
  ];
}

function hitsText(s: FleetSize): string {
  const rates = s.renewal?.cacheHitRates;
  if (rates === undefined) return 'n/a';
  const pct = (k: string): string => (rates[k] !== undefined ? `${rates[k]} %` : 'n/a');
  return `${pct('csr')}/${pct('token')}`;
}

export function formatFleet(fleet: FleetResult, o: BenchOptions): string {
  const rows = fleet.sizes.flatMap((s) => [
    row(s.size, 'storm', s.storm, s, ''),
    ...(s.renewal !== undefined ? [row(s.size, 'renew', s.renewal.result, s, hitsText(s))] : []),
  ]);
  const lines = [
    `Fleet: per size a new server (the bench's serve flags), a storm of that many distinct new workloads over ${o.connections} new connections; for ${o.fleet > 0 ? String(o.fleet) : 'no size'}, then renewals of all of them over ${o.connections} other new connections (channel drawn at random per workload, seeded). Peak RSS = sum of VmHWM since the server started; PSS sampled every 200 ms`,
    table([HEADER, ...rows]),
  ];
  for (const s of fleet.sizes) {
    const ren = s.renewal;
    if (ren !== undefined)
      lines.push(
        `  ${s.size}: renewals on another server process than their first call: ${ren.otherWorkerPercent !== undefined ? `${ren.otherWorkerPercent} %` : 'n/a'}; renewal-cache hit rates ${ren.cacheHitRates === undefined ? 'n/a (no lanyard_renewal_cache_lookups_total in /metrics)' : JSON.stringify(ren.cacheHitRates)}`,
      );
    for (const [code, msg] of Object.entries({ ...s.storm.errorSamples, ...ren?.result.errorSamples }))
      lines.push(`  ${s.size} ${code}: ${msg}`);
    if (s.storm.timedOut || ren?.result.timedOut === true)
      lines.push(`  ${s.size}: the time limit (--fleet-time-limit ${o.fleetTimeLimitS}) stopped a run`);
  }
  lines.push(
    `  fleet took ${fleet.seconds} s (${fleet.sizes.map((s) => `${s.size}: ${s.seconds} s`).join(', ')})`,
  );
  return lines.join('\n');
}
