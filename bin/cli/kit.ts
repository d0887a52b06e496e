import { Command, CommanderError, Option } from 'commander';
import { systemClock, type Clock } from '../../ca/index.js';
import { parseDuration } from '../../ca/index.js';
import { LanyardError, UsageError } from '../../ca/index.js';
import { flushLogLines } from '../../issuer/index.js';

/** What the command layer adds to an error of a code: how the operator gets past it with a flag. */
const FLAG_HINTS: Readonly<Partial<Record<string, string>>> = {
  ERR_KEY_EXISTS: '; pass --force to replace it',
};

/** What every command gets from the composition root. */
export interface CliContext {
  readonly clock: Clock;
  readonly env: NodeJS.ProcessEnv;
  out(line: string): void;
  err(line: string): void;
}

/**
 * The context of a real process (the entry files): standard output and error. A line to stderr is
 * written after the log lines logged before it, which the loggers may still hold for the end of the
 * event-loop turn (issuer/logger.ts): the CLI's error line comes last.
 */
export function stdioContext(): CliContext {
  return {
    clock: systemClock,
    env: process.env,
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => {
      flushLogLines();
      process.stderr.write(`${line}\n`);
    },
  };
}

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** Thrown by a command that has printed its result and wants a specific exit code (e.g. `check` → 3). */
export class ExitStatus extends Error {
  constructor(readonly code: number) {
    super(`exit status ${code}`);
  }
}

/** Commander `argParser` for repeatable options. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A duration flag (milliseconds); `defaultText` is parsed as the default and shown as written in --help. */
/**
 * A default as a flag value: in the largest of h, m, s, ms that divides it ("24h", "20s"). Not
 * formatDuration, whose "1d 0h" does not parse back as a flag.
 */
export function durationText(ms: number): string {
  const unit = (
    [
      ['h', 3_600_000],
      ['m', 60_000],
      ['s', 1000],
    ] as const
  ).find(([, n]) => ms % n === 0);
  return unit === undefined ? `${ms}ms` : `${ms / unit[1]}${unit[0]}`;
}

export function durationOption(flags: string, description: string, defaultText?: string): Option {
  const o = new Option(flags, description).argParser((v: string) => parseDuration(v));
  return defaultText !== undefined ? o.default(parseDuration(defaultText), defaultText) : o;
}

/**
 * Runs a check of flag values: any LanyardError it throws becomes a usage error (exit 2) that keeps
 * the original code in its message, so a bad value is a usage error whichever module refuses it.
 */
export function checkFlags<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof LanyardError && !(err instanceof UsageError))
      throw new UsageError(err.message, { cause: err });
    throw err;
  }
}

/**
 * A catch handler naming this command's flag in a UsageError about an option (UsageError.forOption):
 * `flags` maps the option, as the domain function spells it, to the flag. Other errors pass unchanged.
 */
export function nameFlags(flags: Readonly<Partial<Record<string, string>>>): (err: unknown) => never {
  return (err) => {
    if (err instanceof UsageError && err.option !== undefined && err.problem !== undefined) {
      const flag = flags[err.option];
      if (flag !== undefined) throw new UsageError(`${flag} ${err.problem}`);
    }
    throw err;
  };
}

/**
 * Runs `program` on argv and returns the exit code: 0 success, 1 failure, 2 usage error. Errors are
 * printed as "lanyard: <message> (<code>)"; nothing is thrown.
 */
export async function runCli(program: Command, argv: readonly string[], ctx: CliContext): Promise<number> {
  const output = {
    writeOut: (s: string) => {
      ctx.out(s.replace(/\n$/, ''));
    },
    writeErr: (s: string) => {
      ctx.err(s.replace(/\n$/, ''));
    },
  };
  for (const sub of allCommands(program)) {
    sub.exitOverride();
    sub.configureOutput(output);
    sub.showHelpAfterError('(run with --help for usage)');
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof ExitStatus) return err.code;
    if (err instanceof CommanderError) {
      if (
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.version' ||
        err.code === 'commander.help'
      )
        return EXIT.ok;
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    return reportError(err, ctx);
  }
}

export function reportError(err: unknown, ctx: CliContext): number {
  if (err instanceof UsageError) {
    const cause = err.cause instanceof LanyardError ? ` (${err.cause.code})` : '';
    ctx.err(`lanyard: ${err.message}${cause}`);
    return EXIT.usage;
  }
  if (err instanceof LanyardError) {
    ctx.err(`lanyard: ${err.message}${FLAG_HINTS[err.code] ?? ''} (${err.code})`);
    return EXIT.failure;
  }
  if (err instanceof Error && (err as NodeJS.ErrnoException).code !== undefined) {
    ctx.err(`lanyard: ${err.message}`);
    return EXIT.failure;
  }
  ctx.err(`lanyard: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  return EXIT.failure;
}

/** Resolves on the first SIGINT or SIGTERM (how `serve`, `certify` and `dev` are stopped). */
export function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

function allCommands(c: Command): Command[] {
  return [c, ...c.commands.flatMap((s) => allCommands(s))];
}
