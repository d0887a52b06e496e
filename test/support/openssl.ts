import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodePem } from '../../ca/index.js';
import { openssl, type OpensslResult } from './openssl-run.js';
import { tempDir } from './temp-dir.js';

// The openssl runner imports nothing of the CA (test/support/istio uses it alone).
export { openssl, opensslAsync, type OpensslResult } from './openssl-run.js';

// The temp-dir helper lives in temp-dir.ts; re-exported for the tests that import it from here.

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

/**
 * opensslVerify of `leaf` (with `intermediates`) against each of `roots` alone (name → DER), as each of
 * `purposes` (default: client and server): the failures as `-CAfile NAME, PURPOSE: output` lines, so
 * `[]` means every combination verified.
 */
export function opensslVerifyEach(options: {
  leaf: Uint8Array;
  intermediates?: readonly Uint8Array[];
  roots: Readonly<Record<string, Uint8Array>>;
  purposes?: readonly ('sslclient' | 'sslserver')[];
  atSeconds?: number;
}): string[] {
  const failures: string[] = [];
  for (const [name, root] of Object.entries(options.roots)) {
    for (const purpose of options.purposes ?? (['sslclient', 'sslserver'] as const)) {
      const r = opensslVerify({
        leaf: options.leaf,
        anchors: [root],
        purpose,
        ...(options.intermediates !== undefined ? { intermediates: options.intermediates } : {}),
        ...(options.atSeconds !== undefined ? { atSeconds: options.atSeconds } : {}),
      });
      if (!r.ok) failures.push(`-CAfile ${name}, ${purpose}: ${r.stdout}${r.stderr}`);
    }
  }
  return failures;
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

/** The fields of `openssl x509 -text` output that the profile tests compare. */
export interface OpensslCertText {
  /** 1 for v1 … 3 for v3 */
  readonly version: number;
  /** lower-case hex of the serial's magnitude, no separators (as openssl prints it) */
  readonly serialHex: string;
  readonly issuer: string;
  /** '' for an empty subject */
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** extension names ("X509v3 Basic Constraints", …) in certificate order */
  readonly extensions: readonly string[];
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** openssl's "Jun  1 00:00:00 2026 GMT". */
export function parseOpensslDate(s: string): Date {
  const m = /^([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4}) GMT$/.exec(s.trim());
  if (m === null) throw new Error(`unexpected openssl date "${s}"`);
  const [mon, day, hh, mm, ss, year] = m.slice(1) as [string, string, string, string, string, string];
  return new Date(
    Date.UTC(Number(year), MONTHS.indexOf(mon), Number(day), Number(hh), Number(mm), Number(ss)),
  );
}

export function parseOpensslText(text: string): OpensslCertText {
  const lines = text.split('\n');
  const field = (name: string): string => {
    const line = lines.find((l) => new RegExp(`^${name} *:`).test(l.trim()));
    if (line === undefined) throw new Error(`no "${name}" in openssl output`);
    return line.slice(line.indexOf(':') + 1).trim();
  };
  const version = Number(/^(\d+)/.exec(field('Version'))?.[1]);
  const serialInline = field('Serial Number');
  let serialHex: string;
  if (serialInline !== '') {
    const m = /\(0x([0-9a-f]+)\)/.exec(serialInline);
    if (m === null) throw new Error(`unexpected serial "${serialInline}"`);
    const digits = m[1] ?? '';
    serialHex = digits.length % 2 === 1 ? `0${digits}` : digits;
  } else {
    // 9 octets and more: "Serial Number:" alone, then the octets on the next line
    const at = lines.findIndex((l) => l.trim().startsWith('Serial Number:'));
    serialHex = (lines[at + 1] ?? '').trim().replaceAll(':', '');
  }
  const extStart = lines.findIndex((l) => l.trim() === 'X509v3 extensions:');
  const extensions: string[] = [];
  if (extStart >= 0) {
    const indent = (lines[extStart] as string).search(/\S/);
    for (let i = extStart + 1; i < lines.length; i++) {
      const l = lines[i] as string;
      const at = l.search(/\S/);
      if (at <= indent) break;
      if (at === indent + 4) extensions.push(l.trim().replace(/:( critical)?$/, ''));
    }
  }
  return {
    version,
    serialHex,
    issuer: field('Issuer'),
    subject: field('Subject'),
    notBefore: parseOpensslDate(field('Not Before')),
    notAfter: parseOpensslDate(field('Not After')),
    extensions,
  };
}
