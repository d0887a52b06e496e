export { runCli, collect, durationOption, ExitStatus, stdioContext, type CliContext } from './kit.js';
export { allCommands, buildProgram, commandPath } from './program.js';
export { CertifyFailed } from './certify.js';
