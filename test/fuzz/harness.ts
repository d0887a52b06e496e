// Fuzz harness: runs each input in a worker thread under a per-input time bound (a synchronous
// endless loop cannot be interrupted from its own thread), and mutators for DER bytes and JWTs.
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';

/** What a fuzzed call did, as classified inside the worker. */
export interface Outcome {
  readonly kind: 'accepted' | 'rejected' | 'crashed' | 'hung';
  /** constructor name of the thrown value */
  readonly errorClass?: string;
  readonly code?: string;
  readonly isLanyardError?: boolean;
  readonly isInvalidRequestError?: boolean;
  /** gRPC status name the issuer's error table gives the error */
  readonly grpcStatus?: string;
  readonly message?: string;
  readonly stack?: string;
  /** for accepted tokens: the service account */
  readonly account?: { readonly namespace: string; readonly name: string };
  /** for accepted CSRs: the request's DER and the SPKI parseCsr returned */
  readonly csr?: { readonly der: Uint8Array; readonly spki: Uint8Array };
  /** for accepted PEM texts: the blocks decodePem returned */
  readonly pem?: readonly { readonly label: string; readonly der: Uint8Array }[];
  /** for accepted bundles: the anchors parseTrustBundle returned, in its order */
  readonly bundle?: readonly {
    readonly der: Uint8Array;
    readonly fingerprint: string;
    readonly notBeforeMs: number;
  }[];
  /**
   * for rejections: the constructor names along the error's cause chain, outermost first (a TypeError
   * or RangeError wrapped into a coded error is still a crash)
   */
  readonly causes?: readonly string[];
  readonly ms: number;
}

export type FuzzTarget = 'csr' | 'token' | 'pem' | 'bundle';

export interface FuzzWorkerData {
  /** JWKS of the token authenticator (token target only) */
  readonly jwksFile?: string;
  readonly tokenIssuer?: string;
  /** the authenticator's fixed clock, ms since the epoch */
  readonly nowMs: number;
}

/** Multiplier for the number of fuzz inputs (FUZZ_SCALE=20 for a long local run). */
export const FUZZ_SCALE = Math.max(0.01, Number(process.env.FUZZ_SCALE ?? '1') || 1);
export const runs = (n: number): number => Math.max(1, Math.round(n * FUZZ_SCALE));

/** One worker thread that evaluates inputs one at a time; restarted after a hang. */
export class FuzzRunner {
  private worker: Worker | undefined;
  private ready: Promise<void> | undefined;
  private nextId = 0;
  /** the slowest input seen, ms */
  slowestMs = 0;
  count = 0;

  constructor(
    private readonly data: FuzzWorkerData,
    private readonly timeoutMs: number,
  ) {}

  private start(): Promise<void> {
    // `--import tsx` in a worker's execArgv does not reach its entry module on Node 20: register tsx first
    const entry = new URL('./fuzz-worker.ts', import.meta.url).href;
    const w = new Worker(
      `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`,
      { eval: true, workerData: this.data },
    );
    this.worker = w;
    this.ready = new Promise<void>((resolve, reject) => {
      const onMessage = (m: unknown): void => {
        if (m === 'ready') {
          w.off('message', onMessage);
          resolve();
        }
      };
      w.on('message', onMessage);
      w.once('error', reject);
    });
    return this.ready;
  }

  /** Runs `input` through `target`; a call that takes longer than the time bound is 'hung'. */
  async run(target: FuzzTarget, input: Uint8Array): Promise<Outcome> {
    if (this.worker === undefined) await this.start();
    else await this.ready;
    const w = this.worker as Worker;
    const id = this.nextId++;
    const outcome = await new Promise<Outcome>((resolve) => {
      const timer = setTimeout(() => {
        w.off('message', onMessage);
        this.worker = undefined;
        void w.terminate();
        resolve({ kind: 'hung', ms: this.timeoutMs });
      }, this.timeoutMs);
      const onMessage = (m: { id: number; outcome: Outcome }): void => {
        if (m.id !== id) return;
        clearTimeout(timer);
        w.off('message', onMessage);
        resolve(m.outcome);
      };
      w.on('message', onMessage);
      w.postMessage({ id, target, input });
    });
    this.count++;
    this.slowestMs = Math.max(this.slowestMs, outcome.ms);
    return outcome;
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w !== undefined) await w.terminate();
  }
}

export function describeInput(input: Uint8Array): string {
  const b = Buffer.from(input);
  return b.length <= 512 ? b.toString('hex') : `${b.subarray(0, 512).toString('hex')}… (${b.length} bytes)`;
}

// ---------------------------------------------------------------- DER mutations

/** Where a TLV's length octets are, found by walking the valid seed. */
export interface LengthField {
  /** offset of the first length octet */
  readonly pos: number;
  /** number of length octets (1 for the short form) */
  readonly size: number;
  readonly value: number;
}

/**
 * The length fields of every TLV in `der`, descending into constructed elements and into OCTET and
 * BIT STRINGs whose content is itself DER (extension values, the signature's INTEGER pair).
 */
export function lengthFields(der: Uint8Array): LengthField[] {
  const out: LengthField[] = [];
  const walk = (start: number, end: number, depth: number): boolean => {
    let p = start;
    const found: LengthField[] = [];
    while (p < end) {
      const tag = der[p] as number;
      if ((tag & 0x1f) === 0x1f || p + 1 >= end) return false;
      const first = der[p + 1] as number;
      let size = 1;
      let len = first;
      if (first & 0x80) {
        size = 1 + (first & 0x7f);
        if (size === 1 || size > 5 || p + 1 + size > end) return false;
        len = 0;
        for (let i = 2; i < size + 1; i++) len = len * 256 + (der[p + i] as number);
      }
      const contentStart = p + 1 + size;
      const contentEnd = contentStart + len;
      if (contentEnd > end) return false;
      found.push({ pos: p + 1, size, value: len });
      if (depth < 12) {
        if (tag & 0x20) {
          if (!walk(contentStart, contentEnd, depth + 1)) return false;
        } else if (tag === 0x04 && len > 1) {
          walk(contentStart, contentEnd, depth + 1);
        } else if (tag === 0x03 && len > 2 && der[contentStart] === 0) {
          walk(contentStart + 1, contentEnd, depth + 1);
        }
      }
      p = contentEnd;
    }
    out.push(...found);
    return true;
  };
  walk(0, der.length, 0);
  return out;
}

export type ByteMutation =
  | { readonly kind: 'flip'; readonly at: number; readonly bit: number }
  | { readonly kind: 'set'; readonly at: number; readonly byte: number }
  | { readonly kind: 'truncate'; readonly at: number }
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'delete'; readonly at: number; readonly n: number }
  | { readonly kind: 'duplicate'; readonly at: number; readonly n: number }
  | {
      readonly kind: 'length';
      readonly field: number;
      readonly how: 'byte' | 'delta' | 'long-form' | 'indefinite' | 'huge';
      readonly byte: number;
      readonly delta: number;
    };

const position = fc.nat({ max: 1_000_000 });

export const byteMutationArb: fc.Arbitrary<ByteMutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: position, bit: fc.nat({ max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: position, byte: fc.nat({ max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: position }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: position,
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: position, n: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), at: position, n: fc.integer({ min: 1, max: 64 }) }),
  fc.record({
    kind: fc.constant('length' as const),
    field: position,
    how: fc.constantFrom(
      'byte' as const,
      'delta' as const,
      'long-form' as const,
      'indefinite' as const,
      'huge' as const,
    ),
    byte: fc.nat({ max: 255 }),
    delta: fc.integer({ min: -3, max: 3 }).filter((d) => d !== 0),
  }),
);

function encodeLength(n: number, minOctets = 0): number[] {
  if (n < 0x80 && minOctets === 0) return [n];
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  while (bytes.length < Math.max(1, minOctets)) bytes.unshift(0);
  return [0x80 | bytes.length, ...bytes];
}

/** Applies one mutation; positions wrap around the input's length. */
export function mutateBytes(input: Uint8Array, m: ByteMutation, fields: readonly LengthField[]): Uint8Array {
  const b = Buffer.from(input);
  const at = (n: number): number => (b.length === 0 ? 0 : n % b.length);
  switch (m.kind) {
    case 'flip': {
      if (b.length === 0) return b;
      const i = at(m.at);
      b[i] = (b[i] as number) ^ (1 << m.bit);
      return b;
    }
    case 'set':
      if (b.length > 0) b[at(m.at)] = m.byte;
      return b;
    case 'truncate':
      return b.subarray(0, at(m.at));
    case 'insert': {
      const i = b.length === 0 ? 0 : m.at % (b.length + 1);
      return Buffer.concat([b.subarray(0, i), m.bytes, b.subarray(i)]);
    }
    case 'delete': {
      const i = at(m.at);
      return Buffer.concat([b.subarray(0, i), b.subarray(i + m.n)]);
    }
    case 'duplicate': {
      const i = at(m.at);
      return Buffer.concat([b.subarray(0, i + m.n), b.subarray(i)]);
    }
    case 'length': {
      // fields describe the unmutated seed; after other mutations they may point at anything, which is fine
      const f = fields.length > 0 ? fields[m.field % fields.length] : undefined;
      if (f === undefined || f.pos + f.size > b.length) return b;
      let replacement: number[];
      switch (m.how) {
        case 'byte':
          replacement = [m.byte];
          break;
        case 'delta':
          replacement = encodeLength(Math.max(0, f.value + m.delta), f.size > 1 ? f.size - 1 : 0);
          break;
        case 'long-form':
          replacement = encodeLength(f.value, f.size + (m.byte % 3));
          break;
        case 'indefinite':
          replacement = [0x80];
          break;
        case 'huge':
          replacement = [0x80 | (1 + (m.byte % 8)), ...Array<number>(1 + (m.byte % 8)).fill(0xff)];
          break;
      }
      return Buffer.concat([b.subarray(0, f.pos), Buffer.from(replacement), b.subarray(f.pos + f.size)]);
    }
  }
}

// ---------------------------------------------------------------- text (JWT) mutations

export type TextMutation =
  | { readonly kind: 'char'; readonly at: number; readonly byte: number }
  | { readonly kind: 'truncate'; readonly at: number }
  | { readonly kind: 'insert'; readonly at: number; readonly text: string }
  | { readonly kind: 'delete'; readonly at: number; readonly n: number }
  | { readonly kind: 'segment'; readonly index: number; readonly replacement: string }
  | { readonly kind: 'dots'; readonly how: 'drop-last' | 'extra' | 'double' };

const jwtChars = fc.constantFrom(
  ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ '.split(''),
);

export const textMutationArb: fc.Arbitrary<TextMutation> = fc.oneof(
  fc.record({
    kind: fc.constant('char' as const),
    at: position,
    // mostly base64url characters, sometimes any byte (non-ASCII, control characters)
    byte: fc.oneof(
      jwtChars.map((c) => c.charCodeAt(0)),
      fc.nat({ max: 255 }),
    ),
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: position }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: position,
    text: fc.oneof(
      fc.string({ unit: jwtChars, minLength: 1, maxLength: 12 }),
      fc.string({ minLength: 1, maxLength: 4 }),
    ),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: position, n: fc.integer({ min: 1, max: 12 }) }),
  fc.record({
    kind: fc.constant('segment' as const),
    index: fc.nat({ max: 2 }),
    replacement: fc.oneof(
      fc.constant(''),
      fc.string({ unit: jwtChars, maxLength: 40 }),
      fc
        .jsonValue({ maxDepth: 3 })
        .map((v) => Buffer.from(JSON.stringify(v) ?? 'null').toString('base64url')),
      fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b).toString('base64url')),
    ),
  }),
  fc.record({
    kind: fc.constant('dots' as const),
    how: fc.constantFrom('drop-last' as const, 'extra' as const, 'double' as const),
  }),
);

export function mutateText(input: Buffer, m: TextMutation): Buffer {
  const at = (n: number): number => (input.length === 0 ? 0 : n % input.length);
  switch (m.kind) {
    case 'char': {
      const b = Buffer.from(input);
      if (b.length > 0) b[at(m.at)] = m.byte;
      return b;
    }
    case 'truncate':
      return input.subarray(0, at(m.at));
    case 'insert': {
      const i = input.length === 0 ? 0 : m.at % (input.length + 1);
      return Buffer.concat([input.subarray(0, i), Buffer.from(m.text, 'utf8'), input.subarray(i)]);
    }
    case 'delete': {
      const i = at(m.at);
      return Buffer.concat([input.subarray(0, i), input.subarray(i + m.n)]);
    }
    case 'segment': {
      const parts = input.toString('latin1').split('.');
      if (m.index < parts.length) parts[m.index] = m.replacement;
      return Buffer.from(parts.join('.'), 'latin1');
    }
    case 'dots': {
      const s = input.toString('latin1');
      if (m.how === 'drop-last') {
        const i = s.lastIndexOf('.');
        return Buffer.from(i < 0 ? s : s.slice(0, i) + s.slice(i + 1), 'latin1');
      }
      return Buffer.from(m.how === 'extra' ? `${s}.` : s.replace('.', '..'), 'latin1');
    }
  }
}
