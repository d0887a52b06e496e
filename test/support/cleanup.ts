import type { TestContext } from 'node:test';

type Cleanup = () => unknown;

const stacks = new WeakMap<TestContext, Cleanup[]>();

/**
 * Runs `fn` when the test `t` ends, passed or failed, like a `finally` block around the rest of the
 * test. Cleanups run last registered first (the order nested `try/finally` blocks unwind in; node:test
 * runs its own `t.after` hooks first registered first), each even when an earlier one throws; the
 * first error is rethrown after all have run.
 */
export function defer(t: TestContext, fn: Cleanup): void {
  let stack = stacks.get(t);
  if (stack === undefined) {
    const fresh: Cleanup[] = [];
    stacks.set(t, fresh);
    t.after(() => unwind(fresh));
    stack = fresh;
  }
  stack.push(fn);
}

async function unwind(stack: Cleanup[]): Promise<void> {
  let failure: { error: unknown } | undefined;
  for (let fn = stack.pop(); fn !== undefined; fn = stack.pop()) {
    try {
      await fn();
    } catch (error) {
      failure ??= { error };
    }
  }
  if (failure !== undefined) throw failure.error;
}
