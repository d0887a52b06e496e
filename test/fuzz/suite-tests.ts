// The node:test side of a fuzz suite, shared by test/fuzz/*.test.ts: the suite made once per file,
// its seeds, its input groups and its edge cases each as a test.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { runs } from './harness.js';
import { assertGroup, runInput, type FuzzSuite } from './suite.js';

/** Makes the suite before the tests of the enclosing `describe` and closes it after them. */
export function useSuite<S extends FuzzSuite>(create: () => Promise<S>): () => S {
  let suite: S | undefined;
  before(async () => {
    suite = await create();
  });
  after(async () => {
    await suite?.close();
  });
  return () => {
    if (suite === undefined) throw new Error('the fuzz suite is made in before()');
    return suite;
  };
}

/** A test that every unmutated seed is accepted; `alsoCheck` adds checks of its own per seed. */
export function itAcceptsSeeds(
  name: string,
  suite: () => FuzzSuite,
  alsoCheck?: (seed: FuzzSuite['seeds'][number]) => void,
): void {
  it(name, async () => {
    for (const s of suite().seeds) {
      const o = await runInput(suite(), s.input);
      assert.equal(o.kind, 'accepted', `${s.name}: ${o.code ?? ''} ${o.message ?? ''}`);
      alsoCheck?.(s);
    }
  });
}

/** One test per input group: [group name, its runs at FUZZ_SCALE=1]. */
export function itRunsGroups(suite: () => FuzzSuite, groups: readonly (readonly [string, number])[]): void {
  for (const [name, numRuns] of groups)
    it(name, async () => {
      await assertGroup(suite(), name, runs(numRuns));
    });
}

/** A test that runs the suite's hand-picked edge cases once each. */
export function itRunsEdgeCases(name: string, suite: () => FuzzSuite): void {
  it(name, async () => {
    for (const input of suite().edgeCases) await runInput(suite(), input);
  });
}
