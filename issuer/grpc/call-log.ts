import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { LogFn, Logger } from 'pino';
import { LanyardError } from '../../ca/index.js';
import type { ErrorCode } from '../errors.js';
import type { IssuerMetrics } from '../metrics.js';
import type { RejectionLog } from './rejection-log.js';
import { statusName, toGrpcError, type MappedError } from './status.js';

/**
 * The one place a Certify (or CreateCertificate) call is accounted for: each call, however it ends, gets exactly one of
 * these, which writes its one log line (rejected calls at a bounded rate per code, rejection-log.ts)
 * and its one lanyard_requests_total sample. Calls the handler answers also get a latency sample.
 */
export interface CallLog {
  /** a call the handler answered with a certificate */
  certified(call: HandledCall, fields: CertifiedFields): void;
  /** a call the handler refused: `err` mapped through the one error→status table (status.ts), which is returned */
  refused(call: HandledCall, err: unknown): MappedError;
  /** a call that ended before the handler saw it (shed at arrival, or ended by the transport or the client) */
  endedBeforeHandler(code: ErrorCode, grpcCode: grpc.status, message: string, fields: object): void;
}

/** A call the handler saw: when it started (process.hrtime.bigint()), its request id and identity. */
export interface HandledCall {
  readonly started: bigint;
  readonly reqId: string;
  readonly identity: string;
}

export interface CertifiedFields {
  readonly authn: string;
  readonly serial: string;
  readonly notAfter: string;
  /** the answer's valid_until, when a renewal hint set it before notAfter */
  readonly validUntil?: string;
  readonly issuerSkid: string | undefined;
}

/** Where the line of a rejected call goes when its code is over its rate. */
const UNLOGGED: Record<'warn' | 'error', LogFn> = { warn: () => undefined, error: () => undefined };

export function createCallLog(o: {
  readonly logger: Logger;
  readonly metrics: IssuerMetrics;
  readonly rejections: RejectionLog;
  /** the rpc the calls are of: the `api` label of the metrics and the `rpc` field of the lines */
  readonly rpc?: 'Certify' | 'CreateCertificate';
  /** the API's error → status table (default: Certify's, toGrpcError) */
  readonly mapError?: (err: unknown) => MappedError;
}): CallLog {
  const rpc = o.rpc ?? 'Certify';
  const mapError = o.mapError ?? toGrpcError;
  const latency = o.metrics.latency.labels(rpc);
  const ok = o.metrics.requests.labels(rpc, 'OK');
  const elapsedMs = (started: bigint): number => Number(process.hrtime.bigint() - started) / 1e6;

  return {
    certified(call, fields) {
      const durationMs = elapsedMs(call.started);
      latency.observe(durationMs / 1000);
      ok.inc();
      o.logger.info({ reqId: call.reqId, rpc, identity: call.identity, ...fields, durationMs }, 'certified');
    },
    refused(call, err) {
      const durationMs = elapsedMs(call.started);
      latency.observe(durationMs / 1000);
      const mapped = mapError(err);
      const grpcCode = statusName(mapped.grpcCode);
      o.metrics.requests.labels(rpc, grpcCode).inc();
      const level = mapped.grpcCode === grpc.status.INTERNAL ? 'error' : 'warn';
      const reason = (err as { reason?: unknown } | undefined)?.reason;
      (o.rejections.admit(mapped.code, rpc) ? o.logger : UNLOGGED)[level](
        {
          reqId: call.reqId,
          rpc,
          identity: call.identity,
          code: mapped.code,
          // which token check failed, or why the authenticator could not answer
          ...(typeof reason === 'string' ? { reason } : {}),
          grpcCode,
          durationMs,
          // what the caller was not told (paths, URLs, addresses, what a backend said)
          ...(level === 'error' ? { err: describeInternal(err) } : { detail: mapped.detail }),
        },
        mapped.message,
      );
      return mapped;
    },
    endedBeforeHandler(code, grpcCode, message, fields) {
      const name = statusName(grpcCode);
      o.metrics.requests.labels(rpc, name).inc();
      if (!o.rejections.admit(code, rpc)) return;
      o.logger.warn({ reqId: nextReqId(), rpc, code, grpcCode: name, ...fields }, message);
    },
  };
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

// Request ids: unique per process (random prefix) and cheap (a counter), for correlating log lines.
const REQ_PREFIX = `${randomBytes(3).toString('hex')}-`;
let reqCounter = 0;
export function nextReqId(): string {
  return `${REQ_PREFIX}${(++reqCounter).toString(36)}`;
}
