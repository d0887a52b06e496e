// The gRPC servers of a serving process and their binding. The Certify port (--listen) has its own
// grpc.Server (Identity + health); with --istio-listen the Istio CA API's port has another one
// (IstioCertificateService + health), so that neither port answers the other API. Both share one
// admission control (one in-flight budget and one rejection log across the two APIs) and the same
// server options. Plaintext: grpc-js binds the port itself; TLS: our listeners terminate TLS (so that
// proxies offering no ALPN are served) and inject each connection into their server.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../ca/index.js';
import type { Certify } from './certify.js';
import { formatHostPort, type IssuerConfig } from './config.js';
import { GRPC_SERVER_OPTIONS, createIdentityHandlers, loadIdentityService } from './grpc/index.js';
import { createAdmissionControl, type AdmissionControl } from './grpc/index.js';
import { createRejectionLog, type RejectionLog } from './grpc/index.js';
import { createTlsListener, type TlsListener } from './grpc/index.js';
import type { IssuerHealth } from './health.js';
import { addIstioService, type IstioParts } from './istio-service.js';
import type { IssuerMetrics } from './metrics.js';
import type { ServingTls } from './serving-tls.js';

/** The gRPC servers (not yet bound) and what they share. */
export interface GrpcServers {
  /** the --listen port's: Identity (Certify) and health */
  readonly server: grpc.Server;
  /** the --istio-listen port's: IstioCertificateService and health; undefined when the API is off */
  readonly istioServer: grpc.Server | undefined;
  /** one in-flight budget for the calls of both servers */
  readonly admission: AdmissionControl;
  readonly rejectionLog: RejectionLog;
}

/** The gRPC servers: admission control (shared), the Identity service, the Istio CA API's, health. */
export function createGrpcServers(
  config: IssuerConfig,
  deps: {
    readonly clock?: Clock;
    readonly messageTimeoutMs?: number;
    readonly maxCallMs?: number;
    readonly random?: () => number;
  },
  o: {
    readonly certify: Certify;
    readonly istio: IstioParts | undefined;
    readonly logger: Logger;
    readonly metrics: IssuerMetrics;
    readonly health: IssuerHealth;
  },
): GrpcServers {
  const { logger, metrics } = o;
  // one rate for the lines of every rejected call, whichever of the two ended it
  const rejectionLog = createRejectionLog({ logger, clock: deps.clock ?? systemClock });
  const admission = createAdmissionControl({
    maxInFlight: config.maxInFlight,
    maxInFlightPerPeer: config.maxInFlightPerPeer,
    logger,
    metrics,
    rejectionLog,
    ...(deps.messageTimeoutMs !== undefined ? { messageTimeoutMs: deps.messageTimeoutMs } : {}),
  });
  const newServer = (): grpc.Server => {
    const s = new grpc.Server({ ...GRPC_SERVER_OPTIONS, interceptors: [admission.interceptor] });
    o.health.service.addToServer(s);
    return s;
  };
  const maxCallMs = deps.maxCallMs !== undefined ? { maxCallMs: deps.maxCallMs } : {};
  const server = newServer();
  server.addService(
    loadIdentityService(),
    createIdentityHandlers({
      certify: o.certify,
      logger,
      metrics,
      wallClock: systemClock,
      rejectionLog,
      ...maxCallMs,
      ...(config.renewalHint !== undefined ? { renewalHint: config.renewalHint } : {}),
      ...(deps.random !== undefined ? { random: deps.random } : {}),
    }),
  );
  let istioServer: grpc.Server | undefined;
  if (o.istio !== undefined) {
    istioServer = newServer();
    addIstioService(istioServer, o.istio, { config, logger, metrics, rejectionLog, ...maxCallMs });
  }
  return { server, istioServer, admission, rejectionLog };
}

/** Every gRPC server of `servers`. */
export function grpcServersOf(servers: Pick<GrpcServers, 'server' | 'istioServer'>): grpc.Server[] {
  return servers.istioServer === undefined ? [servers.server] : [servers.server, servers.istioServer];
}

/**
 * Binds the servers: the Certify one to config.listen, the Istio one to config.istio.listen. Plaintext
 * (no Istio API then): grpc-js binds the port itself. TLS: a listener per port injects each connection
 * into its server. On failure the TLS listeners are closed.
 */
export async function bindGrpcServer(
  config: IssuerConfig,
  deps: { readonly tlsPrefaceTimeoutMs?: number },
  parts: Pick<GrpcServers, 'server' | 'istioServer'> & {
    readonly servingTls: ServingTls | undefined;
    readonly logger: Logger;
  },
  o: {
    readonly metrics: IssuerMetrics;
    readonly clock: Clock;
    /**
     * where the serving pair's renewals (and the drain) find the TLS listeners: each is added before
     * either listens, so a renewal meanwhile reaches both
     */
    readonly tlsListeners: TlsListener[];
  },
): Promise<{ grpcPort: number; istioPort?: number }> {
  const { server, istioServer, servingTls } = parts;
  if (servingTls === undefined) {
    const grpcPort = await new Promise<number>((resolve, reject) => {
      server.bindAsync(
        formatHostPort(config.listen.host, config.listen.port),
        grpc.ServerCredentials.createInsecure(),
        (err, port) => {
          if (err) reject(err);
          else resolve(port);
        },
      );
    });
    return { grpcPort };
  }
  const pair = servingTls.pair();
  const listenerFor = (s: grpc.Server, listener: 'grpc' | 'istio'): TlsListener => {
    const injector = s.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    return createTlsListener({
      listener,
      cert: pair.certPem,
      key: pair.keyPem,
      inject: (socket) => {
        injector.injectConnection(socket);
      },
      metrics: o.metrics,
      logger: parts.logger,
      clock: o.clock,
      ...(deps.tlsPrefaceTimeoutMs !== undefined ? { prefaceTimeoutMs: deps.tlsPrefaceTimeoutMs } : {}),
    });
  };
  const grpcListener = listenerFor(server, 'grpc');
  const istio = config.istio?.listen;
  const istioListener =
    istio !== undefined && istioServer !== undefined ? listenerFor(istioServer, 'istio') : undefined;
  o.tlsListeners.push(grpcListener, ...(istioListener !== undefined ? [istioListener] : []));
  try {
    const grpcPort = await grpcListener.listen(config.listen.host, config.listen.port);
    if (istio === undefined || istioListener === undefined) return { grpcPort };
    return { grpcPort, istioPort: await istioListener.listen(istio.host, istio.port) };
  } catch (err) {
    for (const l of o.tlsListeners) l.close();
    throw err;
  }
}
