import { InvalidRequestError } from './errors.js';

export type PemLabel = 'CERTIFICATE' | 'CERTIFICATE REQUEST' | 'PRIVATE KEY' | 'PUBLIC KEY';

export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

const BEGIN = /^-----BEGIN ([A-Z0-9 ]+)-----$/;
const END = /^-----END ([A-Z0-9 ]+)-----$/;
const BASE64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;
const BEGIN_ANYWHERE = /^[ \t]*-----BEGIN [A-Z0-9 ]+-----[ \t]*\r?$/m;

/**
 * Strict PEM (RFC 7468): blocks with no headers, base64 bodies only; text between blocks is ignored.
 * Throws ERR_PEM_HEADERS for RFC 1421 headers (e.g. Proc-Type) and ERR_PEM_MALFORMED otherwise.
 */
export function decodePem(text: string): PemBlock[] {
  const lines = text.split(/\r?\n/);
  const blocks: PemBlock[] = [];
  let label: string | undefined;
  let body: string[] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (label === undefined) {
      const m = BEGIN.exec(line);
      if (m !== null) {
        label = m[1];
        body = [];
      } else if (line.startsWith('-----')) {
        throw new InvalidRequestError('ERR_PEM_MALFORMED', `unexpected PEM boundary "${truncate(line)}"`);
      }
      continue;
    }
    const end = END.exec(line);
    if (end !== null) {
      if (end[1] !== label) {
        throw new InvalidRequestError(
          'ERR_PEM_MALFORMED',
          `PEM block "${label}" ends with "${end[1] as string}"`,
        );
      }
      const b64 = body.join('');
      const der = Buffer.from(b64, 'base64');
      if (der.length === 0 || der.toString('base64') !== b64) {
        throw new InvalidRequestError('ERR_PEM_MALFORMED', `PEM block "${label}" has an invalid base64 body`);
      }
      blocks.push({ label, der });
      label = undefined;
      continue;
    }
    if (line.includes(':')) {
      throw new InvalidRequestError(
        'ERR_PEM_HEADERS',
        `PEM block "${label}" has headers ("${truncate(line)}"); encrypted or annotated PEM is not accepted`,
      );
    }
    if (!BASE64_LINE.test(line)) {
      throw new InvalidRequestError(
        'ERR_PEM_MALFORMED',
        `PEM block "${label}" has a line that is not base64`,
      );
    }
    body.push(line);
  }
  if (label !== undefined)
    throw new InvalidRequestError('ERR_PEM_MALFORMED', `PEM block "${label}" is not terminated`);
  return blocks;
}

/** Exactly the blocks with `label`; any other block is refused (so a key never hides in a bundle). */
export function decodePemOf(text: string, label: PemLabel, what: string): Buffer[] {
  const blocks = decodePem(text);
  if (blocks.length === 0)
    throw new InvalidRequestError('ERR_PEM_MALFORMED', `${what}: no PEM "${label}" block found`);
  for (const b of blocks) {
    if (b.label !== label) {
      throw new InvalidRequestError(
        'ERR_PEM_UNEXPECTED_TYPE',
        `${what}: found a "${b.label}" block where only "${label}" is allowed`,
      );
    }
  }
  return blocks.map((b) => b.der);
}

export function decodeOnePem(text: string, label: PemLabel, what: string): Buffer {
  const ders = decodePemOf(text, label, what);
  if (ders.length !== 1) {
    throw new InvalidRequestError(
      'ERR_PEM_MALFORMED',
      `${what}: expected one "${label}" block, found ${ders.length}`,
    );
  }
  return ders[0] as Buffer;
}

export function encodePem(label: PemLabel, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * True when bytes are PEM text rather than DER: text (no control characters but tab, CR, LF and
 * form feed) holding a "-----BEGIN …-----" line anywhere, so explanatory text before the block, as
 * `openssl x509 -text` and `openssl req -text` write it, is allowed. DER always has control bytes
 * (its tags and lengths). decodePem still refuses headers inside a block.
 */
export function looksLikePem(bytes: Uint8Array): boolean {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  for (const b of buf) {
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0c && b !== 0x0d) return false;
    if (b === 0x7f) return false;
  }
  return BEGIN_ANYWHERE.test(buf.toString('latin1'));
}

function truncate(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
