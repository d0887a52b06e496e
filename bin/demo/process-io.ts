// Small helpers for the flat-network story's child processes: JSON lines, output, polling.
import type { ChildProcess } from 'node:child_process';

/** Calls `fn` with every JSON line the child writes to stdout (other lines are skipped). */
export function onJsonLines(child: ChildProcess, fn: (o: Record<string, unknown>) => void): void {
  let buf = '';
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        fn(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a JSON line
      }
    }
  });
}

/**
 * The default bound of every wait for a condition: generous, since on a loaded host (2 cores, load 8
 * and more) starting a program or a round of handshakes can take many times its usual time. The
 * waits end as soon as their condition holds; the bound only turns a hang into an error.
 */
export const WAIT_TIMEOUT_MS = 60_000;

export function waitForOutput(
  child: ChildProcess,
  re: RegExp,
  what: string,
  timeoutMs = WAIT_TIMEOUT_MS,
): Promise<void> {
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`${what}: the process exited (${child.exitCode}): ${err}`);
      return re.test(out);
    },
    what,
    timeoutMs,
  );
}

export async function waitFor(cond: () => boolean, what: string, timeoutMs = WAIT_TIMEOUT_MS): Promise<void> {
  const start = performance.now();
  while (!cond()) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Resolves once the child has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else
      child.once('exit', () => {
        resolve();
      });
  });
}
