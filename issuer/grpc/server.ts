import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Logger } from 'pino';
import { InternalError, InvalidRequestError, LanyardError, type Clock } from '../../ca/index.js';
import { IssuerServiceError } from '../errors.js';
import type { Certify } from '../certify.js';
import type { IssuerMetrics } from '../metrics.js';
import { validUntilFor, type RenewalHint } from '../renewal-hint.js';
import { createCallLog, nextReqId, type CallLog, type HandledCall } from './call-log.js';
import { createRejectionLog, type RejectionLog } from './rejection-log.js';
import { ERROR_CODE_TRAILER } from './status.js';

/** Largest request accepted, bytes (a CSR and a token are a few KiB). */
export const MAX_MESSAGE_BYTES = 64 * 1024;
export const CERTIFY_METHOD = '/io.linkerd.proxy.identity.Identity/Certify';

export interface CertifyRequestMessage {
  identity: string;
  token: Buffer;
  certificate_signing_request: Buffer;
}

export interface CertifyResponseMessage {
  leaf_certificate: Buffer;
  intermediate_certificates: Buffer[];
  valid_until: { seconds: number | string; nanos: number };
}

/** Where identity.proto is: next to this module in the source tree, or copied next to it in dist/. */
export function identityProtoPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    join(here, 'identity.proto'),
    join(here, '..', '..', '..', 'issuer', 'grpc', 'identity.proto'),
  ];
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined)
    throw new InternalError(`identity.proto not found (looked in ${candidates.join(', ')})`);
  return found;
}

/** What the server's decoder hands the handler for a message that is not a CertifyRequest. */
const UNDECODABLE = Symbol('undecodable CertifyRequest');

export function loadIdentityService(): grpc.ServiceDefinition {
  const def = protoLoader.loadSync(identityProtoPath(), {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    io: { linkerd: { proxy: { identity: { Identity: grpc.ServiceClientConstructor } } } };
  };
  const service = pkg.io.linkerd.proxy.identity.Identity.service;
  const method = service.Certify as grpc.MethodDefinition<unknown, unknown>;
  // grpc-js answers a message its decoder throws on with INTERNAL, before any handler or
  // interceptor hook sees it. Bytes that are not a CertifyRequest are a malformed request: the
  // decoder hands the handler a marker instead, and the handler answers INVALID_ARGUMENT.
  const decode = method.requestDeserialize;
  return {
    ...service,
    Certify: {
      ...method,
      requestDeserialize: (bytes: Buffer): unknown => {
        try {
          return decode(bytes);
        } catch {
          return { [UNDECODABLE]: true };
        }
      },
    },
  };
}

export interface IdentityServiceOptions {
  readonly certify: Certify;
  readonly logger: Logger;
  readonly metrics: IssuerMetrics;
  /** reads the wall clock for gRPC deadlines (which are wall-clock instants) */
  readonly wallClock: Clock;
  /** the longest a call may run, whatever deadline its client set (default MAX_CALL_MS) */
  readonly maxCallMs?: number;
  /** how often rejected calls are logged (default: its own, on wallClock) */
  readonly rejectionLog?: RejectionLog;
  /** --renew-after/--renew-spread: valid_until brings renewals forward (renewal-hint.ts) */
  readonly renewalHint?: RenewalHint;
  /** where a hinted valid_until's random point comes from, in [0, 1) (default Math.random) */
  readonly random?: () => number;
}

/** The longest a Certify call may run, whatever deadline its client set. */
export const MAX_CALL_MS = 30_000;

/** What the Certify handler works with, built once per server. */
interface HandlerContext {
  readonly certify: Certify;
  readonly calls: CallLog;
  readonly wallClock: Clock;
  readonly maxCallMs: number;
  readonly renewalHint: RenewalHint | undefined;
  readonly random: () => number;
}

type CertifyCall = grpc.ServerUnaryCall<CertifyRequestMessage, CertifyResponseMessage>;
type CertifyCallback = grpc.sendUnaryData<CertifyResponseMessage>;

/**
 * The Certify handler: decode, call the use case, encode; the call's one log line and one metric
 * sample go through the call log (call-log.ts), its error through the one error→status table.
 */
export function createIdentityHandlers(o: IdentityServiceOptions): grpc.UntypedServiceImplementation {
  const ctx: HandlerContext = {
    certify: o.certify,
    calls: createCallLog({
      logger: o.logger,
      metrics: o.metrics,
      rejections: o.rejectionLog ?? createRejectionLog({ logger: o.logger, clock: o.wallClock }),
    }),
    wallClock: o.wallClock,
    maxCallMs: o.maxCallMs ?? MAX_CALL_MS,
    renewalHint: o.renewalHint,
    random: o.random ?? Math.random,
  };

  function certify(call: CertifyCall, callback: CertifyCallback): void {
    const handled: HandledCall = {
      started: process.hrtime.bigint(),
      reqId: nextReqId(),
      identity: typeof call.request.identity === 'string' ? call.request.identity.slice(0, 256) : '',
    };
    if ((call.request as { [UNDECODABLE]?: true })[UNDECODABLE] === true) {
      refuse(
        ctx,
        handled,
        new InvalidRequestError('ERR_INVALID_REQUEST', 'the request is not a CertifyRequest message'),
        callback,
      );
      return;
    }
    void handle(ctx, call, callback, handled);
  }

  return { Certify: certify as grpc.handleUnaryCall<unknown, unknown> };
}

function refuse(ctx: HandlerContext, call: HandledCall, err: unknown, callback: CertifyCallback): void {
  const mapped = ctx.calls.refused(call, err);
  const trailers = new grpc.Metadata();
  trailers.set(ERROR_CODE_TRAILER, mapped.code);
  callback({ code: mapped.grpcCode, details: mapped.message, metadata: trailers });
}

/** The call's time limit: the client's deadline, but never more than maxCallMs from now. */
function timeLimitMs(ctx: HandlerContext, call: CertifyCall): number {
  // (a call without a deadline would otherwise hold its slot for as long as, say, a token review hangs)
  const deadline = call.getDeadline();
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
  const nowMs = ctx.wallClock.now().getTime();
  const endMs = Math.min(Number.isFinite(deadlineMs) ? deadlineMs : Infinity, nowMs + ctx.maxCallMs);
  return Math.max(0, endMs - nowMs);
}

async function handle(
  ctx: HandlerContext,
  call: CertifyCall,
  callback: CertifyCallback,
  handled: HandledCall,
): Promise<void> {
  const limits = new CallLimits(call, handled.started, timeLimitMs(ctx, call));
  const req = call.request;
  try {
    const result = await ctx.certify(
      {
        identity: typeof req.identity === 'string' ? req.identity : '',
        token: req.token ?? Buffer.alloc(0),
        csr: req.certificate_signing_request ?? Buffer.alloc(0),
      },
      limits,
    );
    if (limits.ended()) throw deadlineExceeded(undefined);
    // notAfter, or earlier while a renewal hint brings renewals forward (at the call's own `now`)
    const validUntil = validUntilFor({
      now: result.now,
      notAfter: result.leaf.notAfter,
      hint: ctx.renewalHint,
      random: ctx.random,
    });
    const validUntilMs = validUntil.getTime();
    callback(null, {
      leaf_certificate: result.leaf.der,
      // the credential's chain, computed once; grpc-js only reads it
      intermediate_certificates: result.leaf.intermediates as Buffer[],
      valid_until: { seconds: Math.floor(validUntilMs / 1000), nanos: (validUntilMs % 1000) * 1e6 },
    });
    ctx.calls.certified(handled, {
      authn: result.identity.spiffeId,
      serial: result.leaf.serialHex,
      notAfter: result.leaf.notAfter.toISOString(),
      ...(validUntilMs !== result.leaf.notAfter.getTime() ? { validUntil: validUntil.toISOString() } : {}),
      issuerSkid: result.issuerSkid,
    });
  } catch (err) {
    // whatever a stage threw once the call ran out of time, the answer is that
    const late = limits.timedOut() && !(err instanceof LanyardError && err.code === 'ERR_DEADLINE_EXCEEDED');
    refuse(ctx, handled, late ? deadlineExceeded(err) : err, callback);
  } finally {
    limits.close();
  }
}

/**
 * The options the use case gets for one call: `signal`, aborted when the client cancels or the call's
 * time limit passes (with the standard AbortError as its reason), and `peer`, the caller's address.
 *
 * Both are made only when a stage reads them: most renewals are answered from the renewal caches
 * without reading either, and an AbortController with its timer and 'cancelled' listener cost
 * ≈ 6 µs a call (the controller alone ≈ 5.3 µs in Node 20). A signal made late is what it would have
 * been had it been made at the start: already aborted when the client has cancelled or when nothing is
 * left of the time limit, else its timer set for what is left.
 *
 * The call is over its time limit once that much time has passed (process.hrtime from the handler's
 * start), whether a signal was made or not and whether its timer has fired yet: a call whose answer is
 * ready past its limit is answered ERR_DEADLINE_EXCEEDED (docs/api.md), even within the turn it began.
 */
class CallLimits {
  #controller: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #onCancel: (() => void) | undefined;
  /** set when the time limit passes, whether or not the client had cancelled first */
  #timedOut = false;
  /** set when the call is answered without a controller: whether it had ended then */
  #endedWhenClosed: boolean | undefined;

  constructor(
    private readonly call: CertifyCall,
    /** process.hrtime.bigint() when the handler got the call */
    private readonly started: bigint,
    private readonly limitMs: number,
  ) {}

  get signal(): AbortSignal {
    return (this.#controller ??= this.#arm()).signal;
  }

  get peer(): string {
    return this.call.getPeer();
  }

  /** whether the call ran out of time (then its answer is ERR_DEADLINE_EXCEEDED) */
  timedOut(): boolean {
    if (!this.#timedOut && this.#elapsedMs() >= this.limitMs) {
      // the time limit has passed, and the timer (if any) has not fired yet: as if it had
      this.#timedOut = true;
      this.#controller?.abort();
    }
    return this.#timedOut;
  }

  /** whether the call was cancelled or ran out of time */
  ended(): boolean {
    return this.timedOut() || this.call.cancelled;
  }

  close(): void {
    if (this.#controller === undefined) {
      this.#endedWhenClosed = this.ended();
      return;
    }
    clearTimeout(this.#timer);
    if (this.#onCancel !== undefined) this.call.removeListener('cancelled', this.#onCancel);
  }

  #arm(): AbortController {
    const ac = new AbortController();
    // read after the call was answered (work a stage left running): what the signal was then, no timer
    if (this.#endedWhenClosed !== undefined) {
      if (this.#endedWhenClosed) ac.abort();
      return ac;
    }
    const leftMs = this.limitMs - this.#elapsedMs();
    if (leftMs <= 0) {
      // nothing left: aborted now (the standard AbortError, as the timer's abort), not on the next turn
      this.#timedOut = true;
      ac.abort();
      return ac;
    }
    if (this.call.cancelled) ac.abort();
    else {
      this.#onCancel = () => {
        ac.abort();
      };
      this.call.on('cancelled', this.#onCancel);
    }
    this.#timer = setTimeout(() => {
      this.#timedOut = true;
      ac.abort();
    }, leftMs);
    return ac;
  }

  #elapsedMs(): number {
    return Number(process.hrtime.bigint() - this.started) / 1e6;
  }
}

function deadlineExceeded(cause: unknown): LanyardError {
  return new IssuerServiceError(
    'ERR_DEADLINE_EXCEEDED',
    'the call was cancelled or its deadline passed before a certificate was issued',
    cause === undefined ? undefined : { cause },
  );
}

export const GRPC_SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': 1024 * 1024,
  'grpc.keepalive_permit_without_calls': 1,
  // A Linkerd proxy has one Certify in flight at a time; a connection holding more streams than this
  // is waiting for nothing (nghttp2 refuses streams beyond it)
  'grpc.max_concurrent_streams': 128,
  // connections are not held for ever: idle ones are closed, old ones asked to reconnect (GOAWAY)
  'grpc.max_connection_idle_ms': 5 * 60_000,
  'grpc.max_connection_age_ms': 30 * 60_000,
  'grpc.max_connection_age_grace_ms': 30_000,
  // channelz bookkeeping costs every call; nothing here reads it
  'grpc.enable_channelz': 0,
};
