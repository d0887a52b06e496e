// Runs the openssl binary. Imports nothing from the product (ca/, issuer/): the independent Istio
// client's acceptance check (test/support/istio) uses it without loading the CA.
import { execFile, execFileSync, type ExecFileSyncOptions } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface OpensslResult {
  readonly ok: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the openssl binary; never throws on a non-zero exit. */
export function openssl(args: readonly string[], options: ExecFileSyncOptions = {}): OpensslResult {
  try {
    const stdout = execFileSync('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'], ...options }).toString();
    return { ok: true, stdout, stderr: '' };
  } catch (err) {
    const e = err as { stdout?: Buffer; stderr?: Buffer };
    return { ok: false, stdout: e.stdout?.toString() ?? '', stderr: e.stderr?.toString() ?? '' };
  }
}

export async function opensslAsync(args: readonly string[]): Promise<OpensslResult> {
  try {
    const { stdout, stderr } = await execFileAsync('openssl', args);
    return { ok: true, stdout, stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
