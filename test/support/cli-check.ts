import type { Command } from 'commander';

/**
 * Checks a quoted `lanyard …` invocation (without the leading `lanyard`) against the real command
 * tree: the subcommands exist and every --flag is an option of the command. undefined when valid.
 */
export function checkInvocation(program: Command, invocation: string): string | undefined {
  const tokens = invocation.split(/\s+/).filter((t) => t.length > 0);
  let cmd = program;
  let i = 0;
  while (i < tokens.length) {
    const sub = cmd.commands.find((c) => c.name() === tokens[i]);
    if (sub === undefined) break;
    cmd = sub;
    i++;
  }
  if (cmd === program && tokens.length > 0 && !(tokens[0] ?? '').startsWith('-'))
    return `unknown command "${tokens[0] ?? ''}"`;
  for (const t of tokens.slice(i)) {
    if (!t.startsWith('--')) continue;
    const flag = t.split('=')[0] as string;
    if (flag === '--help' || flag === '--version') continue;
    if (!cmd.options.some((o) => o.long === flag)) return `"${cmd.name()}" has no option ${flag}`;
  }
  return undefined;
}
