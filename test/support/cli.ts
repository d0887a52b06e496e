import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from './wait.js';

export const REPO_ROOT = join(import.meta.dirname, '..', '..');
const ENTRY = ['--import', 'tsx', join(REPO_ROOT, 'bin', 'lanyard.ts')];

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `lanyard ARGS` from the sources (through tsx) and waits for it. */
export function lanyard(
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): CliResult {
  const r = spawnSync(process.execPath, [...ENTRY, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, ...options.env },
    input: options.input ?? '',
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export interface LongRunning {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** resolves with the first match of `re` in standard output */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** SIGTERM, then the exit code */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `lanyard ARGS` in the background (killed by stop(), or when the test process exits). */
export function startLanyard(
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): LongRunning {
  const child = spawn(process.execPath, [...ENTRY, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      process.off('exit', killOnExit);
      resolve(code);
    }),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    async waitFor(re, timeoutMs = 30_000) {
      const seen: { match: RegExpExecArray | null } = { match: null };
      await waitFor(
        () => {
          seen.match = re.exec(out);
          if (seen.match === null && child.exitCode !== null)
            throw new Error(`lanyard exited (${child.exitCode}) before printing ${re}: ${err}`);
          return seen.match !== null;
        },
        () => `${re}; stderr: ${err}`,
        { timeoutMs, intervalMs: 25 },
      );
      return seen.match as RegExpExecArray;
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

/**
 * What an operator does before `lanyard serve`, through the CLI: DIR/anchor, DIR/east (issuer),
 * DIR/sa (token-signing key) and DIR/<sa>.token for each service account in namespace default.
 */
export function prepareIssuerFiles(dir: string, serviceAccounts: readonly string[]): void {
  const must = (args: string[]): CliResult => {
    const r = lanyard(args);
    if (r.code !== 0) throw new Error(`lanyard ${args.join(' ')} failed: ${r.stderr}`);
    return r;
  };
  must(['anchor', 'create', '--out', join(dir, 'anchor')]);
  must([
    'issuer',
    'create',
    '--anchor',
    join(dir, 'anchor'),
    '--cluster',
    'east',
    '--out',
    join(dir, 'east'),
  ]);
  for (const sa of serviceAccounts) {
    const t = must([
      'token',
      '--signing-key-dir',
      join(dir, 'sa'),
      '--namespace',
      'default',
      '--service-account',
      sa,
    ]);
    writeFileSync(join(dir, `${sa}.token`), t.stdout.trim());
  }
}

/**
 * `lanyard serve` on loopback (ports picked by the system) for the files of prepareIssuerFiles.
 * `auth` replaces the authentication flags (by default the JWT flags for prepareIssuerFiles' sa/ keys).
 */
export function startServe(
  dir: string,
  extra: readonly string[] = [],
  options: { auth?: readonly string[] } = {},
): LongRunning {
  return startLanyard(serveArgs(dir, extra, options));
}

/** The arguments of startServe's `lanyard serve` (for a run that is expected to exit). */
export function serveArgs(
  dir: string,
  extra: readonly string[] = [],
  options: { auth?: readonly string[] } = {},
): string[] {
  return [
    'serve',
    '--issuer-dir',
    join(dir, 'east'),
    '--listen',
    '127.0.0.1:0',
    '--admin-listen',
    '127.0.0.1:0',
    '--cluster',
    'east',
    ...(options.auth ?? [
      '--jwks-file',
      join(dir, 'sa', 'jwks.json'),
      '--token-issuer',
      'https://kubernetes.default.svc.cluster.local',
    ]),
    ...extra,
  ];
}
