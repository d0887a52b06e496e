import { execFile, execFileSync, type ExecFileSyncOptions } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { encodePem } from '../../ca/index.js';

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

/** A temporary directory removed by the returned cleanup. */
export function tempDir(prefix = 'lanyard-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    cleanup: () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function pemOf(certs: readonly Uint8Array[]): string {
  return certs.map((c) => encodePem('CERTIFICATE', c)).join('');
}

/**
 * `openssl verify -x509_strict -purpose <purpose>` of `leaf` with `untrusted` intermediates and
 * `anchors` as the only trust store; `atSeconds` sets -attime.
 */
export function opensslVerify(options: {
  leaf: Uint8Array;
  intermediates?: readonly Uint8Array[];
  anchors: readonly Uint8Array[];
  purpose: 'sslclient' | 'sslserver';
  atSeconds?: number;
}): OpensslResult {
  const { dir, cleanup } = tempDir('lanyard-verify-');
  try {
    writeFileSync(join(dir, 'anchors.pem'), pemOf(options.anchors));
    writeFileSync(join(dir, 'leaf.pem'), pemOf([options.leaf]));
    const args = ['verify', '-x509_strict', '-purpose', options.purpose, '-CAfile', join(dir, 'anchors.pem')];
    if (options.intermediates !== undefined && options.intermediates.length > 0) {
      writeFileSync(join(dir, 'untrusted.pem'), pemOf(options.intermediates));
      args.push('-untrusted', join(dir, 'untrusted.pem'));
    }
    if (options.atSeconds !== undefined) args.push('-attime', String(options.atSeconds));
    args.push(join(dir, 'leaf.pem'));
    return openssl(args);
  } finally {
    cleanup();
  }
}

/** `openssl x509 -text -noout` of a DER certificate. */
export function opensslText(der: Uint8Array): string {
  const r = openssl(['x509', '-inform', 'DER', '-noout', '-text'], { input: Buffer.from(der) });
  if (!r.ok) throw new Error(`openssl x509 failed: ${r.stderr}`);
  return r.stdout;
}

/** The text block of one extension in `openssl x509 -text` output: its header line and value lines. */
export function extensionBlock(text: string, name: string): { critical: boolean; value: string } | undefined {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.trim().startsWith(`${name}:`));
  if (i < 0) return undefined;
  const header = (lines[i] as string).trim();
  const indent = (lines[i] as string).search(/\S/);
  const value: string[] = [];
  for (let j = i + 1; j < lines.length; j++) {
    const l = lines[j] as string;
    if (l.search(/\S/) <= indent) break;
    value.push(l.trim());
  }
  return { critical: header.endsWith('critical'), value: value.join('\n') };
}

/**
 * A P-256 (or other) key and CSR made by openssl itself: an independent producer of CSRs.
 * `san` is the -addext subjectAltName value, e.g. "DNS:a.b"; `subj` defaults to an empty subject.
 */
export function opensslCsr(options: { keyArgs?: readonly string[]; san?: string; subj?: string }): {
  csrDer: Buffer;
  keyPem: string;
} {
  const { dir, cleanup } = tempDir('lanyard-csr-');
  try {
    const keyArgs = options.keyArgs ?? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
    const args = [
      'req',
      '-new',
      ...keyArgs,
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'csr.der'),
      '-outform',
      'DER',
      '-subj',
      options.subj ?? '/',
    ];
    if (options.san !== undefined) args.push('-addext', `subjectAltName=${options.san}`);
    const r = openssl(args);
    if (!r.ok) throw new Error(`openssl req failed: ${r.stderr}`);
    return { csrDer: readFileSync(join(dir, 'csr.der')), keyPem: readFileSync(join(dir, 'key.pem'), 'utf8') };
  } finally {
    cleanup();
  }
}
