// `npm run fuzz -- --target csr|token|pem|bundle|all --iterations N [--seed S] [--max-seconds T]`
//
// Runs the fuzz suites of test/fuzz for as many inputs as asked (npm test runs them a few thousand
// times). Each input goes through the code under test in a worker thread under a time bound; every
// accepted input is re-verified by the suite's independent oracle, every refusal must carry a
// documented code. Findings are counted, not stopped at: crashes (anything but a coded LanyardError),
// hangs (over the time bound), oracle disagreements and undocumented refusals. Exit 0 when all are 0.
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { createBundleSuite } from './bundle-suite.js';
import { createCsrSuite } from './csr-suite.js';
import { describeInput, type FuzzTarget, type Outcome } from './harness.js';
import { createPemSuite } from './pem-suite.js';
import { formatKinds, type FuzzSuite } from './suite.js';
import { createTokenSuite } from './token-suite.js';

const SUITES: Record<FuzzTarget, () => Promise<FuzzSuite>> = {
  // npm test runs `openssl req -verify` on the first dozen accepted CSRs; here on every distinct one
  csr: () => createCsrSuite({ opensslChecks: 'each-distinct' }),
  token: createTokenSuite,
  pem: createPemSuite,
  bundle: createBundleSuite,
};
/** JavaScript's own errors: inside a coded refusal they still mean the code tripped over something */
const RUNTIME_ERRORS = new Set(['TypeError', 'RangeError', 'ReferenceError']);
const KEEP_FINDINGS = 20;
const CHUNK = 1000;

type FindingKind = 'crash' | 'hang' | 'oracle' | 'refusal';

interface Finding {
  readonly kind: FindingKind;
  readonly group: string;
  readonly message: string;
  readonly input: string;
  /** the whole input (up to 64 KiB), to replay it */
  readonly inputBase64: string;
}

export interface FuzzReport {
  readonly target: FuzzTarget;
  readonly seed: number;
  inputs: number;
  accepted: number;
  reverified: number;
  rejected: number;
  crashes: number;
  hangs: number;
  oracleDisagreements: number;
  undocumentedRefusals: number;
  /**
   * coded refusals with a TypeError, RangeError or ReferenceError in their cause chain, by code and
   * message (not a finding by itself: node:crypto throws TypeError for invalid key bytes; the bundle
   * suite, whose reader has no such call, counts one as a finding)
   */
  wrappedRuntimeErrors: Record<string, number>;
  slowestMs: number;
  wallSeconds: number;
  inputsPerSecond: number;
  stoppedEarly: boolean;
  readonly findings: Finding[];
  outcomes: string;
  /** what the oracles ran */
  oracle: string;
}

export async function fuzz(
  target: FuzzTarget,
  o: { iterations: number; seed: number; deadline: number; progressMs: number; stop: () => boolean },
): Promise<FuzzReport> {
  const suite = await SUITES[target]();
  const started = performance.now();
  const report: FuzzReport = {
    target,
    seed: o.seed,
    inputs: 0,
    accepted: 0,
    reverified: 0,
    rejected: 0,
    crashes: 0,
    hangs: 0,
    oracleDisagreements: 0,
    undocumentedRefusals: 0,
    wrappedRuntimeErrors: {},
    slowestMs: 0,
    wallSeconds: 0,
    inputsPerSecond: 0,
    stoppedEarly: false,
    findings: [],
    outcomes: '',
    oracle: '',
  };
  const record = (kind: FindingKind, group: string, message: string, input: Uint8Array): void => {
    if (report.findings.length < KEEP_FINDINGS)
      report.findings.push({
        kind,
        group,
        message: message.slice(0, 2000),
        input: describeInput(input),
        inputBase64: Buffer.from(input.subarray(0, 65_536)).toString('base64'),
      });
  };
  const finish = (): FuzzReport => {
    report.accepted = suite.stats.accepted;
    report.reverified = suite.stats.reverified;
    report.slowestMs = Math.round(suite.runner.slowestMs * 10) / 10;
    report.wallSeconds = Math.round((performance.now() - started) / 100) / 10;
    report.inputsPerSecond = Math.round(report.inputs / Math.max(report.wallSeconds, 0.001));
    report.outcomes = formatKinds(suite.stats);
    report.oracle = formatKinds(suite.stats, ', ', 'oracle');
    return report;
  };
  let lastProgress = started;
  const progress = (): void => {
    const now = performance.now();
    if (now - lastProgress < o.progressMs) return;
    lastProgress = now;
    const rate = report.inputs / ((now - started) / 1000);
    const left = (o.iterations - report.inputs) / Math.max(rate, 1);
    process.stderr.write(
      `fuzz ${target}: ${report.inputs}/${o.iterations} inputs, ${Math.round(rate)}/s, ${suite.stats.accepted} accepted, ` +
        `${report.crashes} crashes, ${report.hangs} hangs, ${report.oracleDisagreements + report.undocumentedRefusals} other findings; ~${Math.round(left)} s left\n`,
    );
  };

  async function consider(input: Uint8Array, group: string): Promise<void> {
    let outcome: Outcome;
    try {
      outcome = await suite.runner.run(target, input);
    } finally {
      report.inputs++;
    }
    if (outcome.kind === 'hung') {
      report.hangs++;
      record('hang', group, `no answer within ${suite.timeBoundMs} ms`, input);
      return;
    }
    if (outcome.kind === 'crashed') {
      report.crashes++;
      record(
        'crash',
        group,
        `${outcome.errorClass ?? '?'}: ${outcome.message ?? ''}\n${outcome.stack ?? ''}`,
        input,
      );
      return;
    }
    if (outcome.kind === 'rejected') {
      report.rejected++;
      const runtime = (outcome.causes ?? []).find((c) => RUNTIME_ERRORS.has(c));
      if (runtime !== undefined) {
        const key = `${outcome.code ?? '?'} wrapping a ${runtime}: ${(outcome.message ?? '').slice(0, 60)}`;
        report.wrappedRuntimeErrors[key] = (report.wrappedRuntimeErrors[key] ?? 0) + 1;
      }
    }
    try {
      await suite.check(input, outcome);
    } catch (err) {
      if (outcome.kind === 'accepted') report.oracleDisagreements++;
      else report.undocumentedRefusals++;
      record(outcome.kind === 'accepted' ? 'oracle' : 'refusal', group, (err as Error).message, input);
    }
  }

  try {
    for (const s of suite.seeds) await consider(s.input, `seed: ${s.name}`);
    for (const e of suite.edgeCases) await consider(e, 'edge cases');
    const mixed = fc.oneof(
      ...suite.groups.map((g, i) => ({ weight: g.weight, arbitrary: g.arb.map((v) => ({ i, v })) })),
    );
    for (let chunk = 0; report.inputs < o.iterations; chunk++) {
      // chunk by chunk, each from its own seed: memory stays flat and any chunk can be replayed
      const values = fc.sample(mixed, {
        numRuns: Math.min(CHUNK, o.iterations - report.inputs),
        seed: (o.seed + chunk) | 0,
      });
      for (const { i, v } of values) {
        if (o.stop() || performance.now() > o.deadline) {
          report.stoppedEarly = true;
          return finish();
        }
        const g = suite.groups[i];
        if (g === undefined) continue;
        await consider(await g.build(v), g.name);
        progress();
      }
    }
    return finish();
  } finally {
    await suite.close();
  }
}

function printReport(r: FuzzReport): void {
  const lines = [
    `fuzz ${r.target}: ${r.inputs} inputs in ${r.wallSeconds} s (${r.inputsPerSecond}/s, seed ${r.seed})${r.stoppedEarly ? ' — STOPPED EARLY' : ''}`,
    `  accepted ${r.accepted}, re-verified by the independent oracle ${r.reverified}; rejected with a code ${r.rejected}`,
    `  crashes ${r.crashes}, hangs ${r.hangs}, oracle disagreements ${r.oracleDisagreements}, undocumented refusals ${r.undocumentedRefusals}`,
    ...Object.entries(r.wrappedRuntimeErrors).map(([k, n]) => `  (informational) ${n} × ${k}`),
    `  slowest input ${r.slowestMs} ms`,
    `  outcomes: ${r.outcomes}`,
    `  oracle: ${r.oracle}`,
  ];
  for (const f of r.findings)
    lines.push(`  FINDING ${f.kind} (${f.group}): ${f.message}\n    input: ${f.input}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      target: { type: 'string', default: 'all' },
      iterations: { type: 'string', default: '10000' },
      seed: { type: 'string' },
      'max-seconds': { type: 'string' },
      'progress-seconds': { type: 'string', default: '30' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  const all = Object.keys(SUITES) as FuzzTarget[];
  const targets = values.target === 'all' ? all : [values.target as FuzzTarget];
  const iterations = Number(values.iterations);
  if (
    values.help ||
    !targets.every((t) => all.includes(t)) ||
    !Number.isSafeInteger(iterations) ||
    iterations < 1
  ) {
    process.stderr.write(
      'usage: npm run fuzz -- --target csr|token|pem|bundle|all --iterations N [--seed S] [--max-seconds T] [--progress-seconds P] [--json]\n',
    );
    return values.help ? 0 : 2;
  }
  const seed = values.seed !== undefined ? Number(values.seed) : randomInt(2 ** 31);
  const maxMs = values['max-seconds'] !== undefined ? Number(values['max-seconds']) * 1000 : Infinity;
  let stopping = false;
  const onSignal = (): void => {
    stopping = true;
    process.stderr.write('fuzz: stopping after the current input (signal)\n');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const reports: FuzzReport[] = [];
  for (const target of targets) {
    if (stopping) break;
    const r = await fuzz(target, {
      iterations,
      seed,
      deadline: performance.now() + maxMs,
      progressMs: Number(values['progress-seconds']) * 1000,
      stop: () => stopping,
    });
    reports.push(r);
    printReport(r);
    if (values.json) process.stdout.write(`${JSON.stringify(r)}\n`);
  }
  const bad = reports.some(
    (r) =>
      r.crashes + r.hangs + r.oracleDisagreements + r.undocumentedRefusals > 0 || r.reverified !== r.accepted,
  );
  return bad ? 1 : 0;
}

process.exitCode = await main();
