export { runCli, reportError, collect, durationOption, EXIT, ExitStatus, type CliContext } from './kit.js';
export { allCommands, buildProgram, commandPath } from './program.js';
export { CertifyFailed } from './certify.js';
