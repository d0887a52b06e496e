import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Logger } from 'pino';
import {
  InvalidRequestError,
  LanyardError,
  systemClock,
  type Clock,
  type ErrorCode,
} from '../../ca/index.js';
import type { Certify } from '../certify.js';
import type { IssuerMetrics } from '../metrics.js';
import { statusName, toGrpcError } from './status.js';

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
    throw new LanyardError('ERR_INTERNAL', `identity.proto not found (looked in ${candidates.join(', ')})`);
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
}

// Request ids: unique per process (random prefix) and cheap (a counter), for correlating log lines.
const REQ_PREFIX = `${randomBytes(3).toString('hex')}-`;
let reqCounter = 0;
function nextReqId(): string {
  return `${REQ_PREFIX}${(++reqCounter).toString(36)}`;
}

/** The Certify handler: decode, call the use case, encode, one log line, one metric sample. */
export function createIdentityHandlers(o: IdentityServiceOptions): grpc.UntypedServiceImplementation {
  const latency = o.metrics.latency.labels('Certify');

  function certify(
    call: grpc.ServerUnaryCall<CertifyRequestMessage, CertifyResponseMessage>,
    callback: grpc.sendUnaryData<CertifyResponseMessage>,
  ): void {
    const started = process.hrtime.bigint();
    const reqId = nextReqId();
    const identity = typeof call.request.identity === 'string' ? call.request.identity.slice(0, 256) : '';
    const finish = (err: unknown, fields: Record<string, unknown>): void => {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      latency.observe(durationMs / 1000);
      if (err === undefined) {
        o.metrics.requests.labels('Certify', 'OK').inc();
        o.logger.info({ reqId, rpc: 'Certify', identity, ...fields, durationMs }, 'certified');
        return;
      }
      const mapped = toGrpcError(err);
      const grpcCode = statusName(mapped.grpcCode);
      o.metrics.requests.labels('Certify', grpcCode).inc();
      const level = mapped.grpcCode === grpc.status.INTERNAL ? 'error' : 'warn';
      o.logger[level](
        {
          reqId,
          rpc: 'Certify',
          identity,
          code: mapped.code,
          // which token check failed, or why the authenticator could not answer
          ...(typeof (err as { reason?: unknown }).reason === 'string'
            ? { reason: (err as { reason: string }).reason }
            : {}),
          grpcCode,
          durationMs,
          ...(level === 'error' ? { err: describeInternal(err) } : {}),
        },
        mapped.message,
      );
      callback({ code: mapped.grpcCode, details: mapped.message });
    };

    if ((call.request as { [UNDECODABLE]?: true })[UNDECODABLE] === true) {
      finish(
        new InvalidRequestError('ERR_INVALID_REQUEST', 'the request is not a CertifyRequest message'),
        {},
      );
      return;
    }
    const ac = new AbortController();
    const onCancel = (): void => {
      ac.abort();
    };
    call.on('cancelled', onCancel);
    let deadlineTimer: NodeJS.Timeout | undefined;
    const deadline = call.getDeadline();
    const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
    if (Number.isFinite(deadlineMs)) {
      deadlineTimer = setTimeout(onCancel, Math.max(0, deadlineMs - o.wallClock.now().getTime()));
    }
    const req = call.request;
    o.certify(
      {
        identity: typeof req.identity === 'string' ? req.identity : '',
        token: req.token ?? Buffer.alloc(0),
        csr: req.certificate_signing_request ?? Buffer.alloc(0),
      },
      { signal: ac.signal },
    )
      .then((result) => {
        if (ac.signal.aborted)
          throw new LanyardError(
            'ERR_DEADLINE_EXCEEDED',
            'the call was cancelled or its deadline passed before a certificate was issued',
          );
        const notAfterMs = result.leaf.notAfter.getTime();
        callback(null, {
          leaf_certificate: result.leaf.der,
          // the credential's chain, computed once; grpc-js only reads it
          intermediate_certificates: result.leaf.intermediates as Buffer[],
          valid_until: { seconds: Math.floor(notAfterMs / 1000), nanos: (notAfterMs % 1000) * 1e6 },
        });
        finish(undefined, {
          authn: result.identity.spiffeId,
          serial: result.leaf.serialHex,
          notAfter: result.leaf.notAfter.toISOString(),
          issuerSkid: result.issuerSkid,
        });
      })
      .catch((err: unknown) => {
        finish(err, {});
      })
      .finally(() => {
        clearTimeout(deadlineTimer);
        call.removeListener('cancelled', onCancel);
      });
  }

  return { Certify: certify as grpc.handleUnaryCall<unknown, unknown> };
}

function describeInternal(err: unknown): { message: string; code?: string; cause?: string } {
  if (!(err instanceof Error)) return { message: String(err) };
  const cause = err.cause instanceof Error ? err.cause.message : undefined;
  return {
    message: err.message,
    ...(err instanceof LanyardError ? { code: err.code } : {}),
    ...(cause !== undefined ? { cause } : {}),
  };
}

/**
 * The code logged for a call that ended before the handler saw it, by the status it ended with
 * (oversized and undecodable messages, a deadline or cancellation, cancelAll() at the end of a drain);
 * any other status is a malformed request.
 */
const ENDED_BEFORE_HANDLER: Partial<Record<grpc.status, ErrorCode>> = {
  [grpc.status.DEADLINE_EXCEEDED]: 'ERR_DEADLINE_EXCEEDED',
  [grpc.status.CANCELLED]: 'ERR_DEADLINE_EXCEEDED',
  [grpc.status.UNAVAILABLE]: 'ERR_ISSUER_UNAVAILABLE',
};

export const GRPC_SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': 1024 * 1024,
  'grpc.keepalive_permit_without_calls': 1,
  // channelz bookkeeping costs every call; nothing here reads it
  'grpc.enable_channelz': 0,
};

/**
 * Admission control for Certify, as a server interceptor: a call is counted from the moment its
 * headers arrive until it ends. Certify itself mostly runs without yielding, so calls wait *before*
 * the handler (read from the connection but not yet handled); counting at arrival is what bounds
 * them. Beyond `maxInFlight` a call is answered RESOURCE_EXHAUSTED at once, before its message is
 * even decoded.
 *
 * A call ends in one of two ways, and its slot is released exactly once on either: its status
 * passes through this interceptor (the handler answered, or grpc-js found no or two messages), or
 * the call ends without that: grpc-js sends some statuses on the transport call itself, past every
 * interceptor (a message over the size limit, a deadline that passes before the message, a bad
 * grpc-timeout or compression), and a client may reset the stream. Every ending reaches the
 * listener's onCancel (grpc-js calls it once the stream is done, whatever ended it).
 *
 * Calls the handler never sees are logged and counted here, one line and one requests_total sample
 * each (the handler does both for the calls it handles). Must be the first (innermost) interceptor:
 * it watches the statuses grpc-js sends on the transport call by wrapping that call's sendStatus.
 */
export function createAdmissionControl(o: {
  readonly maxInFlight: number;
  readonly logger: Logger;
  readonly metrics: IssuerMetrics;
  /** reads the wall clock for gRPC deadlines (which are wall-clock instants) */
  readonly wallClock?: Clock;
}): {
  readonly interceptor: grpc.ServerInterceptor;
  readonly inFlight: () => number;
  /** ends every admitted call still in progress with UNAVAILABLE (a shutdown's grace period ran out); how many */
  readonly cancelAll: () => number;
} {
  let admitted = 0;
  // how to end each admitted call still in progress
  const active = new Set<() => void>();
  const gauge = o.metrics.inFlight.labels('Certify');
  const interceptor: grpc.ServerInterceptor = (method, call) => {
    if (method.path !== CERTIFY_METHOD) return new grpc.ServerInterceptingCall(call);
    const started = process.hrtime.bigint();
    let counted = false;
    // the handler was invoked: it writes the call's log line and metric sample itself
    let handled = false;
    let accounted = false;
    let messages = 0;
    // the first status sent on the transport, whoever sent it (what the client receives)
    let sent: Parameters<grpc.ServerInterceptingCallInterface['sendStatus']>[0] | undefined;
    const transportSendStatus = call.sendStatus.bind(call);
    call.sendStatus = (status) => {
      sent ??= status;
      transportSendStatus(status);
    };
    const cancel = (): void => {
      call.sendStatus({ code: grpc.status.UNAVAILABLE, details: 'the issuer is shutting down; retry' });
    };
    const release = (): void => {
      if (!counted) return;
      counted = false;
      active.delete(cancel);
      admitted--;
      gauge.set(admitted);
    };
    const account = (): void => {
      if (handled || accounted) return;
      accounted = true;
      const deadline = call.getDeadline();
      const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
      const code =
        sent?.code ??
        ((o.wallClock ?? systemClock).now().getTime() >= deadlineMs
          ? grpc.status.DEADLINE_EXCEEDED
          : grpc.status.CANCELLED);
      const grpcCode = statusName(code);
      o.metrics.requests.labels('Certify', grpcCode).inc();
      o.logger.warn(
        {
          reqId: nextReqId(),
          rpc: 'Certify',
          code: ENDED_BEFORE_HANDLER[code] ?? 'ERR_INVALID_REQUEST',
          grpcCode,
          durationMs: Number(process.hrtime.bigint() - started) / 1e6,
        },
        sent === undefined
          ? 'the client ended the call before it was answered'
          : `the call ended before the handler: ${sent.details ?? grpcCode}`,
      );
    };
    const listener = new grpc.ServerListenerBuilder()
      .withOnReceiveMetadata((metadata, next) => {
        if (admitted >= o.maxInFlight) {
          accounted = true;
          const message = `the issuer is at its limit of ${o.maxInFlight} calls in flight; retry with backoff`;
          o.metrics.requests.labels('Certify', 'RESOURCE_EXHAUSTED').inc();
          o.logger.warn(
            {
              reqId: nextReqId(),
              rpc: 'Certify',
              code: 'ERR_OVERLOADED',
              grpcCode: 'RESOURCE_EXHAUSTED',
              inFlight: admitted,
            },
            message,
          );
          call.sendStatus({ code: grpc.status.RESOURCE_EXHAUSTED, details: message });
          return;
        }
        admitted++;
        counted = true;
        active.add(cancel);
        gauge.set(admitted);
        next(metadata);
      })
      .withOnReceiveMessage((message, next) => {
        messages++;
        next(message);
      })
      .withOnReceiveHalfClose((next) => {
        // grpc-js invokes a unary handler at half-close when exactly one message arrived
        if (messages === 1) handled = true;
        next();
      })
      .withOnCancel(() => {
        release();
        account();
      })
      .build();
    const responder = new grpc.ResponderBuilder()
      .withStart((next) => {
        next(listener);
      })
      .withSendStatus((status, next) => {
        release();
        next(status);
      })
      .build();
    return new grpc.ServerInterceptingCall(call, responder);
  };
  return {
    interceptor,
    inFlight: () => admitted,
    cancelAll() {
      const calls = [...active];
      // each ends through the transport; the listener's onCancel then releases its slot
      for (const c of calls) c();
      return calls.length;
    },
  };
}
