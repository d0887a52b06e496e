import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Logger } from 'pino';
import { InvalidRequestError, type Clock } from '../../ca/index.js';
import { InvalidTokenError } from '../authn/index.js';
import { IstioRequestError } from '../errors.js';
import type { IstioCertify } from '../istio-certify.js';
import type { IssuerMetrics } from '../metrics.js';
import { createCallLog, nextReqId, type CallLog, type HandledCall } from './call-log.js';
import { createRejectionLog, type RejectionLog } from './rejection-log.js';
import { MAX_CALL_MS, protoPath } from './server.js';
import { toIstioGrpcError } from './status.js';
import { refuseCall, runUnaryCall, undecodableRefusal, withTolerantDecoder } from './unary.js';

export const CREATE_CERTIFICATE_METHOD = '/istio.v1.auth.IstioCertificateService/CreateCertificate';

/** google.protobuf.Struct as @grpc/proto-loader decodes it (oneofs: `kind` names the value set). */
interface StructMessage {
  fields?: Record<string, { kind?: string; stringValue?: string } | undefined>;
}

export interface IstioCertificateRequestMessage {
  csr: string;
  /** int64, decoded as a decimal string */
  validity_duration: string;
  metadata: StructMessage | null;
}

export interface IstioCertificateResponseMessage {
  cert_chain: readonly string[];
}

/** The IstioCertificateService definition from istio-ca.proto (a message that does not decode reaches the handler as a marker). */
export function loadIstioCaService(): grpc.ServiceDefinition {
  const def = protoLoader.loadSync(protoPath('istio-ca.proto'), {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    istio: { v1: { auth: { IstioCertificateService: grpc.ServiceClientConstructor } } };
  };
  return withTolerantDecoder(pkg.istio.v1.auth.IstioCertificateService.service, 'CreateCertificate');
}

export interface IstioCaServiceOptions {
  readonly certify: IstioCertify;
  readonly logger: Logger;
  readonly metrics: IssuerMetrics;
  readonly wallClock: Clock;
  /** this issuer's --cluster: the only non-empty `clusterid` accepted */
  readonly cluster: string;
  readonly maxCallMs?: number;
  readonly rejectionLog?: RejectionLog;
}

type CreateCall = grpc.ServerUnaryCall<IstioCertificateRequestMessage, IstioCertificateResponseMessage>;
type CreateCallback = grpc.sendUnaryData<IstioCertificateResponseMessage>;

interface HandlerContext {
  readonly certify: IstioCertify;
  readonly calls: CallLog;
  readonly wallClock: Clock;
  readonly maxCallMs: number;
  readonly cluster: string;
}

/** The CreateCertificate handler: headers and fields read, the use case called, the chain answered. */
export function createIstioCaHandlers(o: IstioCaServiceOptions): grpc.UntypedServiceImplementation {
  const ctx: HandlerContext = {
    certify: o.certify,
    calls: createCallLog({
      logger: o.logger,
      metrics: o.metrics,
      rejections: o.rejectionLog ?? createRejectionLog({ logger: o.logger, clock: o.wallClock }),
      rpc: 'CreateCertificate',
      mapError: toIstioGrpcError,
    }),
    wallClock: o.wallClock,
    maxCallMs: o.maxCallMs ?? MAX_CALL_MS,
    cluster: o.cluster,
  };

  function createCertificate(call: CreateCall, callback: CreateCallback): void {
    const handled: HandledCall = { started: process.hrtime.bigint(), reqId: nextReqId(), identity: '' };
    const undecodable = undecodableRefusal(call.request, 'IstioCertificateRequest');
    if (undecodable !== undefined) refuseCall(ctx.calls, handled, undecodable, callback);
    else void handle(ctx, call, callback, handled);
  }

  return { CreateCertificate: createCertificate as grpc.handleUnaryCall<unknown, unknown> };
}

/**
 * The `authorization: Bearer <token>` header's token; empty when the header is absent (the use case
 * refuses that with reason `missing`). A header that is there but not `Bearer <token>` (another
 * scheme, spaces in the token, no token) is refused here: ERR_TOKEN_INVALID, reason `malformed`.
 */
export function bearerToken(md: grpc.Metadata): Buffer {
  const value = md.get('authorization')[0];
  if (value === undefined) return Buffer.alloc(0);
  const text = typeof value === 'string' ? value : value.toString('latin1');
  const m = /^Bearer +(\S+)\s*$/i.exec(text);
  if (m?.[1] === undefined)
    throw new InvalidTokenError('the authorization header is not "Bearer <token>"', { reason: 'malformed' });
  return Buffer.from(m[1], 'latin1');
}

/** The `clusterid` header must be absent, empty or this issuer's cluster: ERR_CLUSTER_UNKNOWN otherwise. */
function checkCluster(md: grpc.Metadata, cluster: string): void {
  const value = md.get('clusterid')[0];
  const id = typeof value === 'string' ? value : (value?.toString('latin1') ?? '');
  if (id !== '' && id !== cluster)
    throw new IstioRequestError('ERR_CLUSTER_UNKNOWN', 'the clusterid header names another cluster');
}

function readInput(req: IstioCertificateRequestMessage, md: grpc.Metadata) {
  const fields = req.metadata?.fields ?? {};
  const impersonated = fields.ImpersonatedIdentity;
  if (impersonated !== undefined && impersonated.kind !== 'stringValue')
    throw new InvalidRequestError('ERR_INVALID_REQUEST', 'ImpersonatedIdentity is not a string');
  const validity = Number(req.validity_duration);
  return {
    token: bearerToken(md),
    csr: Buffer.from(typeof req.csr === 'string' ? req.csr : '', 'utf8'),
    // beyond 2^53 s the TTL is refused anyway as too long
    validitySeconds: Number.isFinite(validity) ? validity : Number.MAX_SAFE_INTEGER,
    impersonatedIdentity: impersonated?.stringValue,
  };
}

async function handle(
  ctx: HandlerContext,
  call: CreateCall,
  callback: CreateCallback,
  handled: HandledCall,
): Promise<void> {
  await runUnaryCall(ctx, call, callback, handled, {
    run(limits) {
      checkCluster(call.metadata, ctx.cluster);
      return ctx.certify(readInput(call.request, call.metadata), limits);
    },
    answer(result) {
      callback(null, { cert_chain: result.certChain });
      ctx.calls.certified(
        { ...handled, identity: result.identity.spiffeId },
        {
          authn: `${result.caller.namespace}/${result.caller.name}`,
          serial: result.leaf.serialHex,
          notAfter: result.leaf.notAfter.toISOString(),
          issuerSkid: result.issuerSkid,
        },
      );
    },
  });
}
