#!/usr/bin/env node
// The one CLI entry: parses argv and dispatches to the folders' cli modules.
import { runCli, type CliContext } from './cli/index.js';
import { systemClock } from '../ca/index.js';
import { buildProgram } from './cli/index.js';

const ctx: CliContext = {
  clock: systemClock,
  env: process.env,
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

process.exitCode = await runCli(buildProgram(ctx), process.argv.slice(2), ctx);
