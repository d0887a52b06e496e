// The served lanyard: which entry runs (the build next to the bench, or --lanyard), the throw-away
// anchor, issuer and token-signing key it serves, and the `lanyard serve` process itself.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../../ca/index.js';
import { createSigningKeyDir, DEV_TOKEN_ISSUER } from '../token/index.js';
import type { BenchOptions } from './options.js';

/**
 * The lanyard entry: `override`, else the one next to this module (dist/bin/lanyard.js when compiled,
 * bin/lanyard.ts under tsx). TypeScript entries run through tsx.
 */
export function lanyardCommand(override?: string): { node: string[]; entry: string; fromSources: boolean } {
  const here = fileURLToPath(import.meta.url);
  const entry = override ?? join(dirname(here), '..', `lanyard${extname(here)}`);
  const fromSources = extname(entry) === '.ts';
  return { node: fromSources ? ['--import', 'tsx'] : [], entry, fromSources };
}

function runLanyard(o: BenchOptions, args: string[]): void {
  const cmd = lanyardCommand(o.lanyard);
  const r = spawnSync(process.execPath, [...cmd.node, cmd.entry, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`lanyard ${args.join(' ')} failed: ${r.stderr}`);
}

/** The anchor, the issuer (cluster `bench`) and the token-signing key under `dir`. */
export async function createBenchPki(o: BenchOptions, dir: string): Promise<void> {
  runLanyard(o, ['anchor', 'create', '--out', join(dir, 'anchor')]);
  runLanyard(o, [
    'issuer',
    'create',
    '--anchor',
    join(dir, 'anchor'),
    '--cluster',
    'bench',
    '--out',
    join(dir, 'issuer'),
  ]);
  await createSigningKeyDir(join(dir, 'sa'), { clock: systemClock });
}

export interface Server {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  /** the admin HTTP port (/metrics), when the server printed it */
  readonly adminPort: number | undefined;
  readonly logPath: string;
  stop(): Promise<number | null>;
}

/** Where a server started by the bench logs and profiles (default: server.log, the --cpu-prof option). */
export interface ServerPlacement {
  readonly logName?: string;
  /** node --cpu-prof into this directory; null: no profile whatever the options say */
  readonly cpuProfDir?: string | null;
}

/** Starts `lanyard serve` on the PKI under `dir` and waits for its gRPC port. */
export async function startServer(dir: string, o: BenchOptions, at: ServerPlacement = {}): Promise<Server> {
  const cmd = lanyardCommand(o.lanyard);
  const logPath = join(dir, at.logName ?? 'server.log');
  const logFd = openSync(logPath, 'w');
  const profDir = at.cpuProfDir === undefined ? o.cpuProfDir : (at.cpuProfDir ?? undefined);
  const args = [
    ...cmd.node,
    ...(profDir !== undefined ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []),
    cmd.entry,
    'serve',
    '--issuer-dir',
    join(dir, 'issuer'),
    '--listen',
    '127.0.0.1:0',
    '--admin-listen',
    '127.0.0.1:0',
    '--cluster',
    'bench',
    '--jwks-file',
    join(dir, 'sa', 'jwks.json'),
    '--token-issuer',
    DEV_TOKEN_ISSUER,
    '--max-in-flight',
    String(o.serverMaxInFlight),
    '--log-level',
    o.logLevel,
    ...o.serveArgs,
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', logFd] });
  closeSync(logFd);
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const exited = new Promise<number | null>((r) => {
    child.once('exit', (code) => {
      r(code);
    });
  });
  let out = '';
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`lanyard serve printed no address in 30 s; see ${logPath}`));
    }, 30_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /gRPC on [^:\s]+:(\d+)[^\n]*\n/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolvePort(Number(m[1]));
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`lanyard serve exited with ${code}: ${readFileSync(logPath, 'utf8').slice(-2000)}`));
    });
  });
  if (child.pid === undefined) throw new Error('lanyard serve has no pid');
  // the same line: "… gRPC on 127.0.0.1:P …, admin on http://127.0.0.1:A"
  const admin = /admin on https?:\/\/[^\s]*:(\d+)/.exec(out);
  return {
    child,
    pid: child.pid,
    port,
    adminPort: admin === null ? undefined : Number(admin[1]),
    logPath,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(t);
      process.off('exit', killOnExit);
      return code;
    },
  };
}
