#!/usr/bin/env node
// The one CLI entry: parses argv and dispatches to the folders' cli modules.
import { runCli, stdioContext } from './cli/index.js';
import { buildProgram } from './cli/index.js';

const ctx = stdioContext();

process.exitCode = await runCli(buildProgram(ctx), process.argv.slice(2), ctx);
