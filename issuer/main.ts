import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'pino';
import { systemClock, type Clock, type Scheduler } from '../ca/index.js';
import { createAdminApp } from './admin.js';
import type { Authenticator } from './authn/index.js';
import { createAuthenticator } from './authn-factory.js';
import { createCertifier } from './certify.js';
import type { HostPort, IssuerConfig } from './config.js';
import { createIssuerCredentialSource, type CredentialSource } from './credentials.js';
import { GRPC_SERVER_OPTIONS, createIdentityHandlers, loadIdentityService } from './grpc/index.js';
import { createAdmissionControl } from './grpc/index.js';
import { createRejectionLog } from './grpc/index.js';
import { createTlsListener, type TlsListener } from './grpc/index.js';
import { createIssuanceLedger, issuanceObserver, type IssuanceLedger } from './ledger.js';
import { createIssuerMetrics, type IssuerMetrics } from './metrics.js';
import { openServingTlsOf } from './serving-tls.js';
import { createStatusReporter, type StatusReporter } from './status.js';

export interface RunningIssuer {
  /** actual addresses (port 0 in the config picks a free port) */
  readonly grpcAddress: HostPort;
  readonly adminAddress: HostPort;
  readonly credentials: CredentialSource;
  readonly status: StatusReporter;
  readonly metrics: IssuerMetrics;
  /** Stops accepting calls, lets in-flight calls finish within the grace period, then closes everything. */
  shutdown(graceMs?: number): Promise<void>;
}

export const HEALTH_SERVICE = 'io.linkerd.proxy.identity.Identity';

/** Composition root of `lanyard serve`: builds the dependencies and starts both servers. No logic of its own. */
export async function startIssuer(
  config: IssuerConfig,
  deps: {
    readonly logger: Logger;
    readonly clock?: Clock;
    /** runs the re-reads of the credential and serving files (default: Node's timers, unref'd) */
    readonly scheduler?: Scheduler;
    readonly authenticator?: Authenticator;
    /** false in a cluster worker: the primary serves the admin endpoints */
    readonly admin?: boolean;
    /** where issuance is recorded (a cluster worker passes one that reports to the primary) */
    readonly ledger?: IssuanceLedger;
    /** the credential (a cluster worker passes the one its primary hands over); default: read from config.issuerDir */
    readonly credentials?: CredentialSource;
    /** how long a TLS connection may take to send the HTTP/2 preface (default 10 s) */
    readonly tlsPrefaceTimeoutMs?: number;
    /** how long a call may take to send its whole request (default ADMISSION_DEFAULTS) */
    readonly messageTimeoutMs?: number;
    /** the longest a call may run whatever its deadline (default MAX_CALL_MS) */
    readonly maxCallMs?: number;
  },
): Promise<RunningIssuer> {
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger;
  // An unusable serving pair fails the start instead of failing every handshake later. The files are
  // re-read every poll interval, so a renewed serving certificate (cert-manager) is picked up without
  // a restart.
  const tlsRef: { listener?: TlsListener } = {};
  const metrics = createIssuerMetrics();
  const scheduler = deps.scheduler !== undefined ? { scheduler: deps.scheduler } : {};
  const servingTls = await openServingTlsOf(config, {
    clock,
    ...scheduler,
    logger,
    expiry: metrics.servingExpiry,
    onPair: (pair) => tlsRef.listener?.setServingPair({ cert: pair.certPem, key: pair.keyPem }),
  });
  const health = new HealthImplementation({ '': 'NOT_SERVING', [HEALTH_SERVICE]: 'NOT_SERVING' });
  let draining = false;
  // Filled in once the reporter exists; health reads as NOT_SERVING until then.
  const ref: { status?: StatusReporter } = {};
  function updateHealth(): void {
    const serving = !draining && ref.status?.ready() === true;
    health.setStatus('', serving ? 'SERVING' : 'NOT_SERVING');
    health.setStatus(HEALTH_SERVICE, serving ? 'SERVING' : 'NOT_SERVING');
    metrics.ready.set(serving ? 1 : 0);
  }
  const credentials =
    deps.credentials ??
    (await createIssuerCredentialSource({
      config,
      clock,
      ...scheduler,
      logger,
      reloads: metrics.reloads,
      onReload: updateHealth,
    }));
  if (deps.credentials !== undefined) deps.credentials.onChange(updateHealth);

  const ledger = deps.ledger ?? createIssuanceLedger();
  const reporter = createStatusReporter({
    cluster: config.cluster,
    domain: config.domain,
    clock,
    credentials,
    ledger,
    leafLifetimeMs: config.leafLifetimeMs,
    clockSkewMs: config.clockSkewMs,
    ...(servingTls !== undefined ? { servingTls: () => servingTls.status() } : {}),
  });
  ref.status = reporter;
  updateHealth();
  const healthTimer = setInterval(updateHealth, 1000);
  healthTimer.unref();

  const authenticator =
    deps.authenticator ??
    (await createAuthenticator(config.auth, {
      clock,
      clockSkewMs: config.clockSkewMs,
      logger: logger.child({ component: 'authn' }),
      metrics,
      workers: config.workers,
    }));
  const certify = createCertifier({
    clock,
    credentials,
    authenticator,
    policy: {
      lifetimeMs: config.leafLifetimeMs,
      clockSkewMs: config.clockSkewMs,
      allowedKeyTypes: config.leafKeyTypes,
    },
    domain: config.domain,
    onIssued: issuanceObserver(ledger),
  });

  // one rate for the lines of every rejected call, whichever of the two ended it
  const rejectionLog = createRejectionLog({ logger, clock });
  const admission = createAdmissionControl({
    maxInFlight: config.maxInFlight,
    maxInFlightPerPeer: config.maxInFlightPerPeer,
    logger,
    metrics,
    rejectionLog,
    ...(deps.messageTimeoutMs !== undefined ? { messageTimeoutMs: deps.messageTimeoutMs } : {}),
  });
  const server = new grpc.Server({ ...GRPC_SERVER_OPTIONS, interceptors: [admission.interceptor] });
  server.addService(
    loadIdentityService(),
    createIdentityHandlers({
      certify,
      logger,
      metrics,
      wallClock: systemClock,
      rejectionLog,
      ...(deps.maxCallMs !== undefined ? { maxCallMs: deps.maxCallMs } : {}),
    }),
  );
  health.addToServer(server);
  // Plaintext: grpc-js binds the port itself. TLS: our listener terminates TLS (so that proxies
  // offering no ALPN are served) and injects each connection into grpc-js.
  let tlsListener: TlsListener | undefined;
  let grpcPort: number;
  try {
    if (servingTls === undefined) {
      grpcPort = await new Promise<number>((resolve, reject) => {
        server.bindAsync(
          `${formatHost(config.listen.host)}:${config.listen.port}`,
          grpc.ServerCredentials.createInsecure(),
          (err, port) => {
            if (err) reject(err);
            else resolve(port);
          },
        );
      });
    } else {
      const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
      const pair = servingTls.pair();
      tlsListener = tlsRef.listener = createTlsListener({
        cert: pair.certPem,
        key: pair.keyPem,
        inject: (socket) => {
          injector.injectConnection(socket);
        },
        metrics,
        logger,
        clock,
        ...(deps.tlsPrefaceTimeoutMs !== undefined ? { prefaceTimeoutMs: deps.tlsPrefaceTimeoutMs } : {}),
      });
      grpcPort = await tlsListener.listen(config.listen.host, config.listen.port);
    }
  } catch (err) {
    tlsListener?.close();
    servingTls?.close();
    admission.close();
    rejectionLog.close();
    server.forceShutdown();
    clearInterval(healthTimer);
    await credentials.close();
    await authenticator.close?.();
    throw err;
  }

  const admin =
    deps.admin === false
      ? undefined
      : createAdminApp({ credentials, metrics, status: reporter, draining: () => draining });
  await admin?.listen({ host: config.adminListen.host, port: config.adminListen.port });
  const adminPort = admin === undefined ? 0 : (admin.server.address() as { port: number }).port;
  logger.info(
    {
      event: 'started',
      grpc: `${config.listen.host}:${grpcPort}`,
      admin: `${config.adminListen.host}:${adminPort}`,
      auth: authenticator.name,
      ready: reporter.ready(),
    },
    'issuer started',
  );

  let shutdownPromise: Promise<void> | undefined;
  async function doShutdown(graceMs: number): Promise<void> {
    draining = true;
    updateHealth();
    clearInterval(healthTimer);
    servingTls?.close();
    tlsListener?.close();
    logger.info({ event: 'draining', graceMs }, 'draining: no new calls, finishing those in flight');
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        logger.warn({ event: 'grace_expired' }, 'grace period over; cancelling the remaining calls');
        // grpc-js's forceShutdown() only destroys connections it tracks for channelz (disabled
        // here), so the calls still in progress are ended one by one first
        admission.cancelAll();
        server.forceShutdown();
        tlsListener?.destroyAll();
        resolve();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    await admin?.close();
    admission.close();
    rejectionLog.close();
    await credentials.close();
    await authenticator.close?.();
    logger.info({ event: 'stopped' }, 'issuer stopped');
  }

  return {
    grpcAddress: { host: config.listen.host, port: grpcPort },
    adminAddress: { host: config.adminListen.host, port: adminPort },
    credentials,
    status: reporter,
    metrics,
    shutdown(graceMs = config.shutdownGraceMs) {
      shutdownPromise ??= doShutdown(graceMs);
      return shutdownPromise;
    },
  };
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
