// The program a `lanyard serve --workers N` primary forks for its node:cluster workers
// (cluster.setupPrimary exec, with the primary's own arguments): the serve command alone, parsed by
// the same options and LANYARD_* environment variables as in the primary, so a worker's config is
// the primary's and its errors are reported as the CLI reports them; the other commands and their
// libraries are not loaded, which keeps each worker's memory to what serving Certify needs.
import { Command } from 'commander';
import { runCli, stdioContext } from './kit.js';
import { registerServeCommand } from './serve.js';

const ctx = stdioContext();

const program = new Command('lanyard');
registerServeCommand(program, ctx);
process.exitCode = await runCli(program, process.argv.slice(2), ctx);
