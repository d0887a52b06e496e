// The results as text: one table row per scenario, a few notes per scenario, then the targets table.
import type { ScenarioResult } from './scenario.js';
import type { TargetCheck } from './targets.js';

/** Columns two spaces apart; the first left-aligned, the others right-aligned. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = (rows[0] ?? []).map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r) =>
      r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  '),
    )
    .join('\n');
}

const HEADER = [
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
];

/** The errors cell: `0`, or each error code with its count (`CODE:n,…`). */
export function errorsCell(r: ScenarioResult): string {
  const errs = Object.entries(r.errors)
    .map(([k, v]) => `${k}:${v}`)
    .join(',');
  return errs === '' ? '0' : errs;
}

/** The main/other thr µs cell: server CPU per certificate of the main threads / of the others. */
export const threadsCell = (r: ScenarioResult): string =>
  `${r.serverCpuMainThreadUsPerCertificate.toFixed(0)}/${r.serverCpuOtherThreadsUsPerCertificate.toFixed(0)}`;

function resultRow(r: ScenarioResult): string[] {
  return [
    r.name,
    String(r.concurrency),
    `${r.ok}/${r.requested}`,
    errorsCell(r),
    r.wallS.toFixed(2),
    String(r.certificatesPerS),
    r.latencyMs.p50.toFixed(1),
    r.latencyMs.p90.toFixed(1),
    r.latencyMs.p99.toFixed(1),
    r.latencyMs.max.toFixed(1),
    r.serverCpuUsPerCertificate.toFixed(1),
    r.ratioToOpensslFloor !== undefined ? r.ratioToOpensslFloor.toFixed(2) : 'n/a',
    threadsCell(r),
    r.serverCores.toFixed(2),
    r.peakRssMb.toFixed(1),
    r.clientCpuUsPerCertificate.toFixed(0),
  ];
}

/** Memory, machine load, error samples and the time limit, for one scenario. */
function scenarioNotes(r: ScenarioResult): string[] {
  const lines: string[] = [];
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
  return lines;
}

/** The scenarios' table and notes, then `sections` (stage table, fleet), then the targets. */
export function formatResults(
  results: readonly ScenarioResult[],
  checks: readonly TargetCheck[],
  sections: readonly string[] = [],
): string {
  const lines: string[] = [];
  if (results.length > 0) lines.push(table([HEADER, ...results.map(resultRow)]), '');
  for (const r of results) lines.push(...scenarioNotes(r));
  if (results.length > 0) lines.push('');
  for (const s of sections) lines.push(s, '');
  lines.push(
    table([
      ['target', 'scenario', 'wanted', 'measured', ''],
      ...checks.map((c) => [c.what, c.scenario, c.target, c.measured, c.met ? 'met' : 'NOT MET']),
    ]),
  );
  return lines.join('\n');
}
