// What the two unary handlers (Certify, CreateCertificate) share: a decoder that hands the handler a
// marker instead of throwing, the refusal (status, message and code trailer), and the skeleton of a
// call (its time limits, the late answer, the one refusal path).
import * as grpc from '@grpc/grpc-js';
import { InvalidRequestError, LanyardError, type Clock } from '../../ca/index.js';
import { CallLimits, deadlineExceeded, timeLimitMs } from './call-limits.js';
import type { CallLog, HandledCall } from './call-log.js';
import { ERROR_CODE_TRAILER } from './status.js';

/** What the server's decoder hands the handler for bytes that are not the request message. */
const UNDECODABLE = Symbol('undecodable request');

/**
 * `service` with `method`'s decoder made tolerant. grpc-js answers a message its decoder throws on
 * with INTERNAL, before any handler or interceptor hook sees it. Bytes that are not the request
 * message (nesting beyond protobufjs's recursion limit included) are a malformed request: the decoder
 * hands the handler a marker instead, which it refuses with INVALID_ARGUMENT (undecodableRefusal).
 */
export function withTolerantDecoder(service: grpc.ServiceDefinition, method: string): grpc.ServiceDefinition {
  const def = service[method] as grpc.MethodDefinition<unknown, unknown>;
  const decode = def.requestDeserialize;
  return {
    ...service,
    [method]: {
      ...def,
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

/** The refusal of a request its decoder could not read (ERR_INVALID_REQUEST), or undefined. */
export function undecodableRefusal(request: unknown, message: string): InvalidRequestError | undefined {
  return (request as { [UNDECODABLE]?: true })[UNDECODABLE] === true
    ? new InvalidRequestError('ERR_INVALID_REQUEST', `the request is not a ${message} message`)
    : undefined;
}

/** Answers a refused call: the call log maps `err` (its API's table) and logs it; the code goes in a trailer. */
export function refuseCall(
  calls: CallLog,
  call: HandledCall,
  err: unknown,
  callback: grpc.sendUnaryData<never>,
): void {
  const mapped = calls.refused(call, err);
  const trailers = new grpc.Metadata();
  trailers.set(ERROR_CODE_TRAILER, mapped.code);
  callback({ code: mapped.grpcCode, details: mapped.message, metadata: trailers });
}

/**
 * One call, under its time limits: `run` (the use case), then, unless the call ended meanwhile,
 * `answer`. Whatever a stage threw once the call ran out of time, the answer is ERR_DEADLINE_EXCEEDED;
 * every refusal goes through refuseCall.
 */
export async function runUnaryCall<R, Res>(
  ctx: { readonly calls: CallLog; readonly wallClock: Clock; readonly maxCallMs: number },
  call: grpc.ServerUnaryCall<unknown, Res>,
  callback: grpc.sendUnaryData<Res>,
  handled: HandledCall,
  steps: { run(limits: CallLimits): Promise<R>; answer(result: R): void },
): Promise<void> {
  const limits = new CallLimits(call, handled.started, timeLimitMs(ctx.wallClock, ctx.maxCallMs, call));
  try {
    const result = await steps.run(limits);
    if (limits.ended()) throw deadlineExceeded(undefined);
    steps.answer(result);
  } catch (err) {
    const late = limits.timedOut() && !(err instanceof LanyardError && err.code === 'ERR_DEADLINE_EXCEEDED');
    refuseCall(ctx.calls, handled, late ? deadlineExceeded(err) : err, callback);
  } finally {
    limits.close();
  }
}
