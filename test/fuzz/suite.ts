// A fuzz suite: one target's seeds, input generators and the one rule every outcome must follow. The
// same suite runs a few thousand inputs under `npm test` (test/fuzz/*.test.ts) and any number under
// `npm run fuzz` (test/fuzz/main.ts).
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { mutateText, textMutationArb, type FuzzRunner, type FuzzTarget, type Outcome } from './harness.js';

/** A family of inputs: values drawn by `arb`, turned into input bytes by `build`. */
export interface InputGroup {
  /** the name of its test under `npm test` */
  readonly name: string;
  /** its share of the inputs: the number of runs it gets under `npm test` at FUZZ_SCALE=1 */
  readonly weight: number;
  readonly arb: fc.Arbitrary<unknown>;
  build(value: unknown): Uint8Array | Promise<Uint8Array>;
}

export function group<V>(
  name: string,
  weight: number,
  arb: fc.Arbitrary<V>,
  build: (value: V) => Uint8Array | Promise<Uint8Array>,
): InputGroup {
  return { name, weight, arb, build };
}

/** A group of 1 to `maxMutations` text mutations of seed 0..`maxSeed` (`seedAt` picks a seed by index). */
export function seedTextMutations(
  name: string,
  weight: number,
  seedAt: (index: number) => Buffer,
  o: { maxSeed: number; maxMutations: number },
): InputGroup {
  return group(
    name,
    weight,
    fc.tuple(
      fc.nat({ max: o.maxSeed }),
      fc.array(textMutationArb, { minLength: 1, maxLength: o.maxMutations }),
    ),
    ([seedIndex, mutations]) => {
      let input = seedAt(seedIndex);
      for (const m of mutations) input = mutateText(input, m);
      return input;
    },
  );
}

/**
 * The rule every outcome follows, whatever the target: `fn` returned within `timeBoundMs`, and either
 * accepted the input or refused it with a LanyardError (not a runtime error).
 */
export function assertSettled(o: Outcome, fn: string, what: string, timeBoundMs: number): void {
  assert.notEqual(o.kind, 'hung', `${fn} did not return within ${timeBoundMs} ms for ${what}`);
  if (o.kind === 'accepted') return;
  assert.equal(
    o.kind,
    'rejected',
    `${fn} threw ${o.errorClass ?? '?'} (${o.message ?? ''}), not a LanyardError, for ${what}\n${o.stack ?? ''}`,
  );
}

export interface SuiteStats {
  /** inputs the target accepted */
  accepted: number;
  /** accepted inputs the independent oracle re-verified (equal to `accepted` unless a check failed) */
  reverified: number;
  /** how the other inputs ended: rejection code or kind → count */
  readonly kinds: Map<string, number>;
  /** what the oracles ran: check → count */
  readonly oracle: Map<string, number>;
}

export interface FuzzSuite {
  readonly target: FuzzTarget;
  readonly runner: FuzzRunner;
  /** per-input time bound, ms */
  readonly timeBoundMs: number;
  /** valid inputs the target must accept */
  readonly seeds: readonly { readonly name: string; readonly input: Uint8Array }[];
  readonly groups: readonly InputGroup[];
  /** hand-picked inputs run once */
  readonly edgeCases: readonly Uint8Array[];
  /**
   * The one rule: accepted, and then re-verified by an oracle independent of the code under test; or
   * rejected with a documented code. Throws (an AssertionError naming the input) otherwise.
   */
  check(input: Uint8Array, o: Outcome): Promise<void>;
  readonly stats: SuiteStats;
  close(): Promise<void>;
}

export function newStats(): SuiteStats {
  return { accepted: 0, reverified: 0, kinds: new Map(), oracle: new Map() };
}

export function countKind(stats: SuiteStats, kind: string): void {
  stats.kinds.set(kind, (stats.kinds.get(kind) ?? 0) + 1);
}

export function countOracle(stats: SuiteStats, check: string): void {
  stats.oracle.set(check, (stats.oracle.get(check) ?? 0) + 1);
}

export function formatKinds(
  stats: SuiteStats,
  separator = ', ',
  which: 'kinds' | 'oracle' = 'kinds',
): string {
  return [...stats[which].entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
    .join(separator);
}

/** Runs one input through the target and the rule. */
export async function runInput(suite: FuzzSuite, input: Uint8Array): Promise<Outcome> {
  const o = await suite.runner.run(suite.target, input);
  await suite.check(input, o);
  return o;
}

/** fast-check property over one group (the `npm test` form: stops and shrinks on the first finding). */
export async function assertGroup(suite: FuzzSuite, name: string, numRuns: number): Promise<void> {
  const g = suite.groups.find((x) => x.name === name);
  if (g === undefined) throw new Error(`no input group "${name}" in the ${suite.target} suite`);
  await fc.assert(
    fc.asyncProperty(g.arb, async (v) => {
      await runInput(suite, await g.build(v));
    }),
    { numRuns },
  );
}

/** Bytes of a PEM-like text after the whitespace rules of RFC 7468 lax parsing, for oracles that have none. */
export function pemLines(text: string): string {
  return `${text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .join('\n')}\n`;
}
