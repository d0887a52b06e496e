#!/usr/bin/env node
// The one CLI entry: builds the command tree from each folder's cli module and runs it.
import { Command } from 'commander';
import { registerCaCommands } from '../ca/cli.js';
import { runCli, type CliContext } from '../ca/cli-kit.js';
import { systemClock } from '../ca/clock.js';
import { registerDevCommands, registerIssuerCommands } from '../issuer/cli.js';
import { registerBundleCommands } from '../trust-bundles/cli.js';

export function buildProgram(ctx: CliContext): Command {
  const program = new Command('lanyard')
    .description('Lanyard: a workload-identity certificate authority for multi-cluster service meshes')
    .version('0.1.0')
    .showSuggestionAfterError(true);
  registerCaCommands(program, ctx);
  registerIssuerCommands(program, ctx);
  registerBundleCommands(program, ctx);
  registerDevCommands(program, ctx);
  return program;
}

const ctx: CliContext = {
  clock: systemClock,
  env: process.env,
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

process.exitCode = await runCli(buildProgram(ctx), process.argv.slice(2), ctx);
