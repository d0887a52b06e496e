import { CommanderError, type Command } from 'commander';
import { allCommands } from '../../bin/cli/program.js';

export interface InvocationProblem {
  /** commander's error code: commander.unknownCommand, commander.unknownOption, commander.missingMandatoryOptionValue, commander.invalidArgument, commander.help (a command group given no subcommand), … */
  readonly code: string;
  readonly message: string;
}

/**
 * Checks a quoted `lanyard …` invocation (without the leading `lanyard`) by parsing it with the real
 * command tree, as `lanyard` would, but with every action replaced by a no-op: unknown commands and
 * subcommands, unknown options (long or short), missing required options, invalid choices, missing
 * or excess arguments all fail; so does a command group without its subcommand. Placeholder values (DIR, <file>) are accepted as any value would be.
 * Takes the tree or a factory for it; a tree passed in is changed (it throws instead of exiting and
 * never runs an action) and may be reused across calls. undefined when valid.
 */
export function checkInvocation(
  program: Command | (() => Command),
  invocation: string,
): InvocationProblem | undefined {
  const cmd = typeof program === 'function' ? program() : program;
  prepare(cmd);
  const tokens = invocation.split(/\s+/).filter((t) => t.length > 0);
  try {
    cmd.parse(tokens, { from: 'user' });
    return { code: 'no-action', message: 'the invocation reached no command action' };
  } catch (err) {
    if (err instanceof Parsed) return undefined;
    if (!(err instanceof CommanderError)) throw err;
    // --help and --version are fine; help shown because a command was incomplete is not
    if (err.exitCode === 0) return undefined;
    return { code: err.code, message: err.message };
  }
}

/** Thrown by the root's preAction hook: the invocation passed every check commander makes. */
class Parsed extends Error {}

const prepared = new WeakSet<Command>();

/** Makes the tree throw instead of exiting or printing, and stop just before any action runs. */
function prepare(program: Command): void {
  if (prepared.has(program)) return;
  prepared.add(program);
  for (const c of allCommands(program)) {
    c.exitOverride();
    c.configureOutput({ writeOut: () => undefined, writeErr: () => undefined, outputError: () => undefined });
  }
  // The root's preAction hook runs first, after every check and just before the action: stop there.
  program.hook('preAction', () => {
    throw new Parsed();
  });
}
