// Binding the gRPC server of a serving process: plaintext by grpc-js, or our TLS listeners (the
// Certify port and, with --istio-listen, the Istio CA API's) injecting connections into it.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Clock } from '../ca/index.js';
import type { IssuerConfig } from './config.js';
import { createTlsListener, type TlsListener } from './grpc/index.js';
import { listenIstio } from './istio-service.js';
import type { IssuerMetrics } from './metrics.js';
import type { ServingTls } from './serving-tls.js';

/**
 * Binds the gRPC server to config.listen. Plaintext: grpc-js binds the port itself. TLS: our
 * listener terminates TLS (so that proxies offering no ALPN are served) and injects each connection
 * into grpc-js. On failure the TLS listener is closed.
 */
export async function bindGrpcServer(
  config: IssuerConfig,
  deps: { readonly tlsPrefaceTimeoutMs?: number },
  parts: {
    readonly server: grpc.Server;
    readonly servingTls: ServingTls | undefined;
    readonly logger: Logger;
  },
  o: {
    readonly metrics: IssuerMetrics;
    readonly clock: Clock;
    /** where the serving pair's renewals find the listener */
    readonly tlsRef: { listener?: TlsListener; istio?: TlsListener };
  },
): Promise<{ grpcPort: number; istioPort?: number; tlsListeners: TlsListener[] }> {
  const { server, servingTls } = parts;
  if (servingTls === undefined) {
    const grpcPort = await new Promise<number>((resolve, reject) => {
      server.bindAsync(
        `${formatHost(config.listen.host)}:${config.listen.port}`,
        grpc.ServerCredentials.createInsecure(),
        (err, port) => {
          if (err) reject(err);
          else resolve(port);
        },
      );
    });
    return { grpcPort, tlsListeners: [] };
  }
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const pair = servingTls.pair();
  const tlsListener = (o.tlsRef.listener = createTlsListener({
    cert: pair.certPem,
    key: pair.keyPem,
    inject: (socket) => {
      injector.injectConnection(socket);
    },
    metrics: o.metrics,
    logger: parts.logger,
    clock: o.clock,
    ...(deps.tlsPrefaceTimeoutMs !== undefined ? { prefaceTimeoutMs: deps.tlsPrefaceTimeoutMs } : {}),
  }));
  let grpcPort: number;
  try {
    grpcPort = await tlsListener.listen(config.listen.host, config.listen.port);
  } catch (err) {
    tlsListener.close();
    throw err;
  }
  const istio = await listenIstio(config, {
    pair,
    inject: (socket) => {
      injector.injectConnection(socket);
    },
    metrics: o.metrics,
    logger: parts.logger,
    clock: o.clock,
    ...(deps.tlsPrefaceTimeoutMs !== undefined ? { prefaceTimeoutMs: deps.tlsPrefaceTimeoutMs } : {}),
  }).catch((err: unknown) => {
    tlsListener.close();
    throw err;
  });
  if (istio === undefined) return { grpcPort, tlsListeners: [tlsListener] };
  o.tlsRef.istio = istio.listener;
  return { grpcPort, istioPort: istio.port, tlsListeners: [tlsListener, istio.listener] };
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
