/** How long `waitFor` keeps asking, and how often. */
export interface WaitOptions {
  /** give up after this many milliseconds (default 5 s) */
  readonly timeoutMs?: number;
  /** wait this long between two questions (default 5 ms) */
  readonly intervalMs?: number;
}

/**
 * The suite's one polling loop: asks `predicate` until it holds, waiting `intervalMs` between two
 * questions; throws `timed out … waiting for <what>` after `timeoutMs` (`what` may be a function,
 * read only then, to name state such as a child's output). For what a test cannot drive itself (a
 * child process, a socket, a file watch); time-based behaviour uses the FakeClock instead.
 */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  what: string | (() => string),
  options: WaitOptions | number = {},
): Promise<void> {
  const { timeoutMs = 5_000, intervalMs = 5 } =
    typeof options === 'number' ? { timeoutMs: options } : options;
  const deadline = performance.now() + timeoutMs;
  while (!(await predicate())) {
    if (performance.now() > deadline) {
      const said = typeof what === 'string' ? what : what();
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${said}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
