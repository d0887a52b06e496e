import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Logger } from 'pino';
import { InternalError, type Clock } from '../../ca/index.js';
import type { Certify } from '../certify.js';
import type { IssuerMetrics } from '../metrics.js';
import { validUntilFor, type RenewalHint } from '../renewal-hint.js';
import { createCallLog, nextReqId, type CallLog, type HandledCall } from './call-log.js';
import { createRejectionLog, type RejectionLog } from './rejection-log.js';
import { refuseCall, runUnaryCall, undecodableRefusal, withTolerantDecoder } from './unary.js';

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
  return protoPath('identity.proto');
}

/** Where one of this folder's .proto files is (the build copies them into dist/ next to this module). */
export function protoPath(file: string): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, file), join(here, '..', '..', '..', 'issuer', 'grpc', file)];
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined) throw new InternalError(`${file} not found (looked in ${candidates.join(', ')})`);
  return found;
}

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
  // bytes that are not a CertifyRequest: INVALID_ARGUMENT from the handler, not grpc-js's INTERNAL
  return withTolerantDecoder(pkg.io.linkerd.proxy.identity.Identity.service, 'Certify');
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
    const undecodable = undecodableRefusal(call.request, 'CertifyRequest');
    if (undecodable !== undefined) refuseCall(ctx.calls, handled, undecodable, callback);
    else void handle(ctx, call, callback, handled);
  }

  return { Certify: certify as grpc.handleUnaryCall<unknown, unknown> };
}

async function handle(
  ctx: HandlerContext,
  call: CertifyCall,
  callback: CertifyCallback,
  handled: HandledCall,
): Promise<void> {
  const req = call.request;
  await runUnaryCall(ctx, call, callback, handled, {
    run: (limits) =>
      ctx.certify(
        {
          identity: typeof req.identity === 'string' ? req.identity : '',
          token: req.token ?? Buffer.alloc(0),
          csr: req.certificate_signing_request ?? Buffer.alloc(0),
        },
        limits,
      ),
    answer(result) {
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
    },
  });
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
