// The figures the bench is held to (issue #15; docs/performance.md), checked against a run's results.
import type { FleetResult } from './fleet.js';
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

function check(
  scenario: Scenario,
  what: string,
  target: string,
  measured: string,
  met: boolean,
): TargetCheck {
  return { scenario, what, target, measured, met };
}

/** The checks of one scenario's result, in the order the table lists them. */
function checksOf(r: ScenarioResult): TargetCheck[] {
  const cpu = `${r.serverCpuUsPerCertificate} µs`;
  switch (r.name) {
    case 'cold':
      return [
        check(
          'cold',
          `throughput at ${r.concurrency} in flight`,
          '≥ 2,500 certificates/s',
          `${r.certificatesPerS} /s`,
          r.certificatesPerS >= 2500,
        ),
        check('cold', 'p99 latency', '≤ 250 ms', `${r.latencyMs.p99} ms`, r.latencyMs.p99 <= 250),
        check('cold', 'server CPU per certificate', '≤ 550 µs', cpu, r.serverCpuUsPerCertificate <= 550),
      ];
    case 'renew':
      return [
        check('renew', 'server CPU per certificate', '≤ 200 µs', cpu, r.serverCpuUsPerCertificate <= 200),
      ];
    case 'storm':
      return [
        check(
          'storm',
          'served, no error',
          `${r.requested} of ${r.requested}, 0 errors`,
          `${r.ok} of ${r.requested}, ${errorCount(r)} errors`,
          r.ok === r.requested && errorCount(r) === 0,
        ),
        check('storm', 'server peak RSS (sum of VmHWM)', '≤ 300 MB', `${r.peakRssMb} MB`, r.peakRssMb <= 300),
      ];
    case 'fleet':
      return [];
  }
}

/** The fleet's checks: the renewals of the --fleet size (the target is stated for 50,000). */
function fleetChecks(fleet: FleetResult): TargetCheck[] {
  return fleet.sizes.flatMap((s) => {
    const r = s.renewal?.result;
    if (r === undefined) return [];
    return [
      check(
        'fleet',
        `${s.size} renewals: server CPU per certificate`,
        '≤ 200 µs',
        `${r.serverCpuUsPerCertificate} µs`,
        r.ok === r.requested && r.serverCpuUsPerCertificate <= 200,
      ),
      check(
        'fleet',
        `${s.size} storm + renewals: peak RSS (sum of VmHWM)`,
        '≤ 350 MB',
        `${s.peakRssMb} MB`,
        s.peakRssMb <= 350,
      ),
    ];
  });
}

export function checkTargets(results: readonly ScenarioResult[], fleet?: FleetResult): TargetCheck[] {
  return [...results.flatMap(checksOf), ...(fleet !== undefined ? fleetChecks(fleet) : [])];
}
