import { runCli } from '../../bin/cli/index.js';
import { systemClock, type Clock } from '../../ca/index.js';
import { buildProgram } from '../../bin/cli/program.js';

export interface InProcResult {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** Runs the CLI in this process (fast; same command tree as bin/lanyard.ts) with an injectable clock. */
export async function runLanyard(
  args: readonly string[],
  options: { clock?: Clock } = {},
): Promise<InProcResult> {
  const out: string[] = [];
  const err: string[] = [];
  const ctx = {
    clock: options.clock ?? systemClock,
    env: {},
    out: (l: string) => {
      out.push(l);
    },
    err: (l: string) => {
      err.push(l);
    },
  };
  const code = await runCli(buildProgram(ctx), args, ctx);
  return { code, out: out.join('\n'), err: err.join('\n') };
}
