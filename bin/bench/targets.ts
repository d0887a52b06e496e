// The figures the bench is held to (docs/performance.md), checked against a run's results.
import type { Scenario } from './options.js';
import type { ScenarioResult } from './scenario.js';

export interface TargetCheck {
  readonly scenario: Scenario;
  readonly what: string;
  readonly target: string;
  readonly measured: string;
  readonly met: boolean;
}

const errorCount = (r: ScenarioResult): number => Object.values(r.errors).reduce((a, b) => a + b, 0);

/** The checks of one scenario's result, in the order the table lists them. */
function checksOf(r: ScenarioResult): TargetCheck[] {
  const check = (what: string, target: string, measured: string, met: boolean): TargetCheck => ({
    scenario: r.name,
    what,
    target,
    measured,
    met,
  });
  const cpu = `${r.serverCpuUsPerCertificate} µs`;
  switch (r.name) {
    case 'cold':
      return [
        check(
          `throughput at ${r.concurrency} in flight`,
          '≥ 2,500 certificates/s',
          `${r.certificatesPerS} /s`,
          r.certificatesPerS >= 2500,
        ),
        check('p99 latency', '≤ 200 ms', `${r.latencyMs.p99} ms`, r.latencyMs.p99 <= 200),
        check('server CPU per certificate', '≤ 400 µs', cpu, r.serverCpuUsPerCertificate <= 400),
      ];
    case 'renew':
      return [check('server CPU per certificate', '≤ 150 µs', cpu, r.serverCpuUsPerCertificate <= 150)];
    case 'storm':
      return [
        check(
          'served, no error',
          `${r.requested} of ${r.requested}, 0 errors`,
          `${r.ok} of ${r.requested}, ${errorCount(r)} errors`,
          r.ok === r.requested && errorCount(r) === 0,
        ),
        check('server peak RSS (sum of VmHWM)', '≤ 300 MB', `${r.peakRssMb} MB`, r.peakRssMb <= 300),
      ];
  }
}

export function checkTargets(results: readonly ScenarioResult[]): TargetCheck[] {
  return results.flatMap(checksOf);
}
