// The command tree, built from each folder's cli module (no side effects: tests and the docs generator use it).
import { Command } from 'commander';
import { registerCaCommands } from './ca-commands.js';
import type { CliContext } from './kit.js';
import { registerDevCommands, registerIssuerCommands } from './issuer-commands.js';
import { registerBundleCommands, registerTrustCommands } from './bundle.js';

export const VERSION = '0.1.0';

export function buildProgram(ctx: CliContext): Command {
  const program = new Command('lanyard')
    .description('Lanyard: a workload-identity certificate authority for multi-cluster service meshes')
    .version(VERSION)
    .showSuggestionAfterError(true)
    .configureHelp({ helpWidth: 110 });
  registerCaCommands(program, ctx);
  registerIssuerCommands(program, ctx);
  registerBundleCommands(program, ctx);
  registerTrustCommands(program, ctx);
  registerDevCommands(program, ctx);
  for (const c of allCommands(program)) c.configureHelp({ helpWidth: 110 });
  return program;
}

export function allCommands(c: Command): Command[] {
  return [c, ...c.commands.flatMap((s) => allCommands(s))];
}

/** `lanyard anchor create`-style full name of a command. */
export function commandPath(c: Command): string {
  const names: string[] = [];
  for (let cur: Command | null = c; cur !== null; cur = cur.parent) names.unshift(cur.name());
  return names.join(' ');
}
