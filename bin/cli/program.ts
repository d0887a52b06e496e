// The command tree, one module per command group (no side effects: tests and the docs generator use it).
import { Command } from 'commander';
import { registerAnchorCommands } from './anchor.js';
import { registerBundleCommands } from './bundle.js';
import { registerCertifyCommand } from './certify.js';
import { registerCheckCommand } from './check.js';
import { registerDashboardCommand } from './dashboard.js';
import { registerDevCommand } from './dev.js';
import { registerInspectCommand } from './inspect.js';
import { registerIssuerCommands } from './issuer.js';
import type { CliContext } from './kit.js';
import { registerLeafCommands } from './leaf.js';
import { registerRotateCommands } from './rotate.js';
import { registerServeCommand } from './serve.js';
import { registerTokenCommand } from './token.js';

export const VERSION = '0.1.0';

/** The command groups in the order `lanyard --help` lists them. */
const COMMAND_GROUPS: readonly ((program: Command, ctx: CliContext) => void)[] = [
  registerAnchorCommands,
  registerIssuerCommands,
  registerLeafCommands,
  registerInspectCommand,
  registerServeCommand,
  registerCertifyCommand,
  registerBundleCommands,
  registerCheckCommand,
  registerRotateCommands,
  registerDashboardCommand,
  registerTokenCommand,
  registerDevCommand,
];

export function buildProgram(ctx: CliContext): Command {
  const program = new Command('lanyard')
    .description('Lanyard: a workload-identity certificate authority for multi-cluster service meshes')
    .version(VERSION)
    .showSuggestionAfterError(true)
    .configureHelp({ helpWidth: 110 });
  for (const register of COMMAND_GROUPS) register(program, ctx);
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
