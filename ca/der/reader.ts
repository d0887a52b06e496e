import { InvalidRequestError, type EncodingErrorCode } from '../errors.js';

/** One DER TLV inside a buffer. Offsets are absolute in `buf`. */
export interface Tlv {
  readonly tag: number;
  /** offset of the tag byte */
  readonly start: number;
  /** offset of the first content byte */
  readonly contentStart: number;
  /** offset just past the last content byte */
  readonly end: number;
  readonly buf: Buffer;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Malformed DER: codes ERR_DER_MALFORMED, ERR_DER_TRUNCATED, ERR_DER_TRAILING_DATA. */
export class DerError extends InvalidRequestError {
  declare readonly code: DerErrorCode;
  // eslint-disable-next-line @typescript-eslint/no-useless-constructor -- it narrows the codes accepted
  constructor(code: DerErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

type DerErrorCode = Extract<EncodingErrorCode, `ERR_DER_${string}`>;

/** Reads the TLV at `offset`, which must end at or before `limit`. Strict DER: definite, minimal lengths. */
export function readTlv(buf: Buffer, offset: number, limit: number = buf.length): Tlv {
  if (offset >= limit) throw new DerError('ERR_DER_TRUNCATED', `expected a DER element at byte ${offset}`);
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('ERR_DER_MALFORMED', `multi-byte tag at byte ${offset}`);
  let p = offset + 1;
  if (p >= limit) throw new DerError('ERR_DER_TRUNCATED', `missing length at byte ${p}`);
  const first = buf[p++] as number;
  let len: number;
  if (first < 0x80) {
    len = first;
  } else {
    const n = first & 0x7f;
    if (n === 0) throw new DerError('ERR_DER_MALFORMED', `indefinite length at byte ${offset}`);
    if (n > 4) throw new DerError('ERR_DER_MALFORMED', `length of ${n} bytes at byte ${offset}`);
    if (p + n > limit) throw new DerError('ERR_DER_TRUNCATED', `length runs past the end at byte ${offset}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[p++] as number);
    if (buf[offset + 2] === 0 || len < 0x80) {
      throw new DerError('ERR_DER_MALFORMED', `non-minimal length at byte ${offset}`);
    }
  }
  const end = p + len;
  if (end > limit)
    throw new DerError('ERR_DER_TRUNCATED', `element at byte ${offset} runs past its container`);
  return { tag, start: offset, contentStart: p, end, buf };
}

/** Parses exactly one element spanning the whole buffer. */
export function readRoot(buf: Buffer, expectedTag: number = TAG.SEQUENCE): Tlv {
  // The tag is checked before the length, so bytes that are not this element at all (text, another
  // type) read as malformed rather than as a truncated element.
  if (buf.length > 0 && buf[0] !== expectedTag)
    throw new DerError('ERR_DER_MALFORMED', `expected tag 0x${hex(expectedTag)} at byte 0`);
  const t = readTlv(buf, 0);
  if (t.end !== buf.length) {
    throw new DerError(
      'ERR_DER_TRAILING_DATA',
      `${buf.length - t.end} byte(s) after the end of the DER element`,
    );
  }
  return t;
}

/** The direct children of a constructed element. */
export function children(t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let p = t.contentStart;
  while (p < t.end) {
    const c = readTlv(t.buf, p, t.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

export function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (t === undefined) throw new DerError('ERR_DER_MALFORMED', `${what} is missing`);
  if (t.tag !== tag)
    throw new DerError('ERR_DER_MALFORMED', `${what}: expected tag 0x${hex(tag)}, got 0x${hex(t.tag)}`);
  return t;
}

export function content(t: Tlv): Buffer {
  return t.buf.subarray(t.contentStart, t.end);
}

export function whole(t: Tlv): Buffer {
  return t.buf.subarray(t.start, t.end);
}

const oidCache = new Map<string, string>();

/** Dotted form of an OBJECT IDENTIFIER. */
export function readOid(t: Tlv): string {
  const c = content(t);
  const key = c.toString('latin1');
  const cached = oidCache.get(key);
  if (cached !== undefined) return cached;
  if (c.length === 0 || ((c[c.length - 1] as number) & 0x80) !== 0) {
    throw new DerError('ERR_DER_MALFORMED', 'malformed OBJECT IDENTIFIER');
  }
  const arcs: number[] = [];
  let v = 0;
  for (let i = 0; i < c.length; i++) {
    const b = c[i] as number;
    if (v === 0 && b === 0x80) throw new DerError('ERR_DER_MALFORMED', 'non-minimal OBJECT IDENTIFIER arc');
    v = v * 128 + (b & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 256)
      throw new DerError('ERR_DER_MALFORMED', 'OBJECT IDENTIFIER arc too large');
    if ((b & 0x80) === 0) {
      arcs.push(v);
      v = 0;
    }
  }
  const firstArc = arcs[0] as number;
  const head = firstArc < 40 ? [0, firstArc] : firstArc < 80 ? [1, firstArc - 40] : [2, firstArc - 80];
  const dotted = [...head, ...arcs.slice(1)].join('.');
  if (oidCache.size < 256) oidCache.set(key, dotted);
  return dotted;
}

/** A BIT STRING's bytes; requires 0 unused bits. */
export function readBitStringBytes(t: Tlv, what: string): Buffer {
  const c = content(expectTag(t, TAG.BIT_STRING, what));
  if (c.length === 0 || c[0] !== 0)
    throw new DerError('ERR_DER_MALFORMED', `${what}: unsupported unused bits`);
  return c.subarray(1);
}

/** An INTEGER's content bytes (two's complement, big-endian), checked for minimal encoding. */
export function readIntegerBytes(t: Tlv, what: string): Buffer {
  const c = content(expectTag(t, TAG.INTEGER, what));
  if (c.length === 0) throw new DerError('ERR_DER_MALFORMED', `${what}: empty INTEGER`);
  if (
    c.length > 1 &&
    ((c[0] === 0 && ((c[1] as number) & 0x80) === 0) || (c[0] === 0xff && ((c[1] as number) & 0x80) !== 0))
  ) {
    throw new DerError('ERR_DER_MALFORMED', `${what}: non-minimal INTEGER`);
  }
  return c;
}

export function readSmallInteger(t: Tlv, what: string): number {
  const c = readIntegerBytes(t, what);
  if (c.length > 4) throw new DerError('ERR_DER_MALFORMED', `${what}: INTEGER too large`);
  return c.readIntBE(0, c.length);
}

/** UTCTime or GeneralizedTime in the RFC 5280 profile (Zulu, seconds, no fractions). */
export function readTime(t: Tlv, what: string): Date {
  const s = content(t).toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (t.tag === TAG.UTC_TIME) {
    m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
    if (m === null) throw new DerError('ERR_DER_MALFORMED', `${what}: malformed UTCTime`);
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (t.tag === TAG.GENERALIZED_TIME) {
    m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
    if (m === null) throw new DerError('ERR_DER_MALFORMED', `${what}: malformed GeneralizedTime`);
    year = Number(m[1]);
  } else {
    throw new DerError('ERR_DER_MALFORMED', `${what}: expected a time`);
  }
  const [month, day, hour, minute, second] = m.slice(2, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Date.UTC rolls over out-of-range fields (month 13, 30 February, hour 24); such a time is malformed.
  if (
    date.getUTCFullYear() !== year ||
    date.getUTCMonth() !== month - 1 ||
    date.getUTCDate() !== day ||
    date.getUTCHours() !== hour ||
    date.getUTCMinutes() !== minute ||
    date.getUTCSeconds() !== second
  ) {
    throw new DerError('ERR_DER_MALFORMED', `${what}: invalid date`);
  }
  return date;
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}
