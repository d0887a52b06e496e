// Minimal DER writer for the hot path: the element functions return a finished TLV as a Buffer;
// headLength, writeHead and timeText serve writers that size a structure first and fill one buffer in
// one pass (ca/leaf-template.ts).

/** Octets of the DER length of `len` content bytes: 1 to 4 (longer is a RangeError). */
function lengthOctets(len: number): number {
  if (len < 0x80) return 1;
  if (len < 0x100) return 2;
  if (len < 0x10000) return 3;
  if (len < 0x1000000) return 4;
  throw new RangeError(`DER length ${len} too large`);
}

/** Writes the DER length of `len` at out[o] (sized with lengthOctets); returns the offset after it. */
function writeLength(out: Buffer, o: number, len: number): number {
  if (len < 0x80) out[o++] = len;
  else if (len < 0x100) {
    out[o++] = 0x81;
    out[o++] = len;
  } else if (len < 0x10000) {
    out[o++] = 0x82;
    out[o++] = len >> 8;
    out[o++] = len & 0xff;
  } else {
    out[o++] = 0x83;
    out[o++] = len >> 16;
    out[o++] = (len >> 8) & 0xff;
    out[o++] = len & 0xff;
  }
  return o;
}

export function encodeLength(len: number): Buffer {
  const out = Buffer.allocUnsafe(lengthOctets(len));
  writeLength(out, 0, len);
  return out;
}

/** Tag and length octets of an element whose contents are `len` bytes long. */
export const headLength = (len: number): number => 1 + lengthOctets(len);

/**
 * Writes an element's tag and length octets at out[o], for writers that size a whole structure
 * first (headLength) and fill one buffer; returns the offset after them.
 */
export function writeHead(out: Buffer, o: number, tag: number, len: number): number {
  out[o] = tag;
  return writeLength(out, o + 1, len);
}

export function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = Buffer.allocUnsafe(headLength(len) + len);
  let o = writeHead(out, 0, tag, len);
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export const seq = (...parts: Uint8Array[]): Buffer => tlv(0x30, ...parts);
export const octetString = (b: Uint8Array): Buffer => tlv(0x04, b);
export const bitString = (b: Uint8Array): Buffer => tlv(0x03, Buffer.from([0]), b);
export const ia5 = (s: string): Buffer => tlv(0x16, Buffer.from(s, 'latin1'));
export const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
export const explicit = (n: number, ...parts: Uint8Array[]): Buffer => tlv(0xa0 | n, ...parts);
/** Context-specific primitive [n] IMPLICIT (e.g. GeneralName dNSName [2], URI [6], keyIdentifier [0]). */
export const implicitPrim = (n: number, b: Uint8Array): Buffer => tlv(0x80 | n, b);
export const TRUE = Buffer.from([0x01, 0x01, 0xff]);

/** A non-negative INTEGER from big-endian magnitude bytes (adds a 0x00 pad when the top bit is set). */
export function unsignedInteger(mag: Uint8Array): Buffer {
  let i = 0;
  while (i < mag.length - 1 && mag[i] === 0) i++;
  const m = mag.subarray(i);
  const pad = ((m[0] ?? 0) & 0x80) !== 0;
  return pad ? tlv(0x02, Buffer.from([0]), m) : tlv(0x02, m.length === 0 ? Buffer.from([0]) : m);
}

export function smallInteger(n: number): Buffer {
  if (n < 0 || n > 0x7fffffff) throw new RangeError('smallInteger out of range');
  const bytes: number[] = [];
  do {
    bytes.unshift(n & 0xff);
    n = Math.floor(n / 256);
  } while (n > 0);
  if (((bytes[0] as number) & 0x80) !== 0) bytes.unshift(0);
  return tlv(0x02, Buffer.from(bytes));
}

export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const [a, b, ...rest] = arcs as [number, number, ...number[]];
  const out: number[] = [];
  for (const arc of [a * 40 + b, ...rest]) {
    const stack: number[] = [arc & 0x7f];
    let v = Math.floor(arc / 128);
    while (v > 0) {
      stack.unshift((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(...stack);
  }
  return tlv(0x06, Buffer.from(out));
}

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

/**
 * RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; seconds precision, Zulu. The
 * tag and the (ASCII) content, for writers that place the element themselves.
 */
export function timeText(d: Date): { readonly tag: number; readonly text: string } {
  const y = d.getUTCFullYear();
  const rest =
    pad2(d.getUTCMonth() + 1) +
    pad2(d.getUTCDate()) +
    pad2(d.getUTCHours()) +
    pad2(d.getUTCMinutes()) +
    pad2(d.getUTCSeconds()) +
    'Z';
  if (y >= 1950 && y < 2050) return { tag: 0x17, text: pad2(y % 100) + rest };
  return { tag: 0x18, text: String(y).padStart(4, '0') + rest };
}

/** The Time element of timeText(d). */
export function time(d: Date): Buffer {
  const { tag, text } = timeText(d);
  return tlv(tag, Buffer.from(text, 'latin1'));
}
