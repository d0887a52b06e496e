/** Minimal DER writer for the hot path: every function returns a finished TLV as a Buffer. */

export function encodeLength(len: number): Buffer {
  if (len < 0x80) return Buffer.from([len]);
  if (len < 0x100) return Buffer.from([0x81, len]);
  if (len < 0x10000) return Buffer.from([0x82, len >> 8, len & 0xff]);
  if (len < 0x1000000) return Buffer.from([0x83, len >> 16, (len >> 8) & 0xff, len & 0xff]);
  throw new RangeError(`DER length ${len} too large`);
}

export function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  let len = 0;
  for (const p of parts) len += p.length;
  const head = encodeLength(len);
  const out = Buffer.allocUnsafe(1 + head.length + len);
  out[0] = tag;
  head.copy(out, 1);
  let o = 1 + head.length;
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

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; seconds precision, Zulu. */
export function time(d: Date): Buffer {
  const y = d.getUTCFullYear();
  const rest =
    pad2(d.getUTCMonth() + 1) +
    pad2(d.getUTCDate()) +
    pad2(d.getUTCHours()) +
    pad2(d.getUTCMinutes()) +
    pad2(d.getUTCSeconds()) +
    'Z';
  if (y >= 1950 && y < 2050) return tlv(0x17, Buffer.from(pad2(y % 100) + rest, 'latin1'));
  return tlv(0x18, Buffer.from(String(y).padStart(4, '0') + rest, 'latin1'));
}
