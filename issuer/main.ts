import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { systemClock, type Clock, type Scheduler } from '../ca/index.js';
import type { Authenticator, RateBudget } from './authn/index.js';
import { createAuthenticator, createTokenReviewBudget } from './authn-factory.js';
import { createCertifier, type Certify } from './certify.js';
import type { HostPort, IssuerConfig } from './config.js';
import { createIssuerCredentialSource, type CredentialSource } from './credentials.js';
import { type TlsListener } from './grpc/index.js';
import { createIssuerHealth, type IssuerHealth } from './health.js';
import { openIstio, type IstioParts } from './istio-service.js';
import type { KubeConnection } from '../trust-bundles/index.js';
import { bindGrpcServer, createGrpcServers, grpcServersOf, type GrpcServers } from './grpc-bind.js';
import { createIssuanceLedger, issuanceObserver, type IssuanceLedger } from './ledger.js';
import { createIssuerMetrics, type IssuerMetrics } from './metrics.js';
import { credentialReady, type Readiness } from './readiness.js';
import { createRenewalCaches, type RenewalCaches } from './renewal-cache.js';
import { openServingTlsOf, type ServingTls } from './serving-tls.js';
import type { BoundPorts, StatusReporter } from './status.js';

/** A running Certify service; `status` is what its health follows (R: a full status reporter, or readiness alone). */
export interface RunningService<R extends Readiness = Readiness> {
  /** actual addresses (port 0 in the config picks a free port) */
  readonly grpcAddress: HostPort;
  readonly adminAddress: HostPort;
  /** the Istio CA API's TLS listener (--istio-listen), when on */
  readonly istioAddress?: HostPort;
  readonly credentials: CredentialSource;
  readonly status: R;
  readonly metrics: IssuerMetrics;
  /** Stops accepting calls, lets in-flight calls finish within the grace period, then closes everything. */
  shutdown(graceMs?: number): Promise<void>;
}

export type RunningIssuer = RunningService<StatusReporter>;

export interface StartIssuerDeps {
  readonly logger: Logger;
  readonly clock?: Clock;
  /** runs the re-reads of the credential and serving files (default: Node's timers, unref'd) */
  readonly scheduler?: Scheduler;
  readonly authenticator?: Authenticator;
  /** the Istio CA API's authenticator (default: one of config.auth's kind, for --istio-token-audience) */
  readonly istioAuthenticator?: Authenticator;
  /** the Kubernetes API of the impersonation node check (default: --kubeconfig, else in-cluster) */
  readonly istioKubeConnection?: KubeConnection;
  /** false: no admin endpoints (a cluster worker runs startWorkerService: its primary serves them) */
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
  /** the random source of renewal hints (default Math.random) */
  readonly random?: () => number;
  /** the renewal caches (a cluster worker passes the ones it shares); default: config.renewalCacheBytes */
  readonly renewalCaches?: RenewalCaches;
}

/** What a running issuer closes on shutdown (or when its start fails half-way). */
interface IssuerParts extends GrpcServers {
  readonly logger: Logger;
  readonly health: IssuerHealth;
  readonly servingTls: ServingTls | undefined;
  readonly credentials: CredentialSource;
  readonly authenticator: Authenticator;
  readonly istio: IstioParts | undefined;
}

/** What startService asks its caller for: what health follows, and the admin app (absent: none). */
interface ServiceParts<R extends Readiness> {
  reporter(o: {
    readonly clock: Clock;
    readonly credentials: CredentialSource;
    readonly ledger: IssuanceLedger;
    readonly servingTls: ServingTls | undefined;
    /** the ports bound (known once the start has bound them) */
    readonly bound: () => BoundPorts;
  }): R;
  readonly admin?: (o: {
    readonly credentials: CredentialSource;
    readonly metrics: IssuerMetrics;
    readonly status: R;
    readonly draining: () => boolean;
  }) => FastifyInstance;
}

/**
 * Composition root of `lanyard serve` (one process, or --workers 1): builds the dependencies and
 * starts both servers (the gRPC server alone when deps.admin is false). No logic of its own.
 */
export async function startIssuer(config: IssuerConfig, deps: StartIssuerDeps): Promise<RunningIssuer> {
  // loaded here, not by every importer of this module: a cluster worker (startWorkerService) needs
  // neither the status report (@peculiar/x509) nor the admin app (fastify)
  const { createIssuerStatusReporter } = await import('./status.js');
  const adminApp = deps.admin === false ? undefined : (await import('./admin.js')).createAdminApp;
  return startService(config, deps, {
    reporter: (o) => createIssuerStatusReporter(config, o),
    ...(adminApp !== undefined ? { admin: adminApp } : {}),
  });
}

/**
 * The Certify service of a node:cluster worker: the gRPC server only, its health following the
 * credential's readiness (the primary serves the admin endpoints and the status).
 */
export function startWorkerService(config: IssuerConfig, deps: StartIssuerDeps): Promise<RunningService> {
  return startService(config, deps, {
    reporter: (o) => ({ ready: () => credentialReady(o.credentials, o.clock) }),
  });
}

async function startService<R extends Readiness>(
  config: IssuerConfig,
  deps: StartIssuerDeps,
  shape: ServiceParts<R>,
): Promise<RunningService<R>> {
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger;
  // An unusable serving pair fails the start instead of failing every handshake later. The files are
  // re-read every poll interval, so a renewed serving certificate (cert-manager) is picked up without
  // a restart.
  const tlsListeners: TlsListener[] = [];
  const metrics = createIssuerMetrics({ renewalHint: config.renewalHint });
  const scheduler = deps.scheduler !== undefined ? { scheduler: deps.scheduler } : {};
  const servingTls = await openServingTlsOf(config, {
    clock,
    ...scheduler,
    logger,
    expiry: metrics.servingExpiry,
    onPair: (pair) => {
      for (const l of tlsListeners) l.setServingPair({ cert: pair.certPem, key: pair.keyPem });
    },
  });
  // NOT_SERVING until it follows the reporter
  const health = createIssuerHealth({ metrics });
  const credentials = await openCredentials(config, deps, { clock, metrics, health, servingTls });

  const ledger = deps.ledger ?? createIssuanceLedger();
  let ports: BoundPorts = {};
  const reporter = shape.reporter({ clock, credentials, ledger, servingTls, bound: () => ports });
  health.follow(reporter);

  const caches = deps.renewalCaches ?? createRenewalCaches(config.renewalCacheBytes);
  metrics.watchRenewalCaches(caches);
  const tokenReviewBudget = createTokenReviewBudget({ clock, workers: config.workers });
  const authenticator = await openAuthenticator(config, deps, { clock, metrics, caches, tokenReviewBudget });
  const { certify, istio } = await openCertifiers(config, deps, {
    tokenReviewBudget,
    clock,
    metrics,
    credentials,
    authenticator,
    ledger,
    csrCache: caches.csr,
  });
  const grpcServer = createGrpcServers(config, deps, { certify, istio, logger, metrics, health });
  const parts: IssuerParts = { logger, health, servingTls, credentials, authenticator, istio, ...grpcServer };
  const bound = await bindGrpcServer(config, deps, parts, { metrics, clock, tlsListeners }).catch(
    async (err: unknown) => {
      await closeIssuerParts(parts);
      throw err;
    },
  );
  ports = { grpc: bound.grpcPort, istio: bound.istioPort };
  const istioAt =
    config.istio !== undefined && bound.istioPort !== undefined
      ? { host: config.istio.listen.host, port: bound.istioPort }
      : undefined;
  const admin = shape.admin?.({ credentials, metrics, status: reporter, draining: health.draining });
  await admin?.listen({ host: config.adminListen.host, port: config.adminListen.port });
  const adminPort = admin === undefined ? 0 : (admin.server.address() as { port: number }).port;
  logger.info(
    {
      event: 'started',
      grpc: `${config.listen.host}:${bound.grpcPort}`,
      admin: `${config.adminListen.host}:${adminPort}`,
      ...(istioAt !== undefined ? { istio: `${istioAt.host}:${istioAt.port}` } : {}),
      auth: authenticator.name,
      ready: reporter.ready(),
    },
    'issuer started',
  );

  let shutdownPromise: Promise<void> | undefined;
  return {
    grpcAddress: { host: config.listen.host, port: bound.grpcPort },
    adminAddress: { host: config.adminListen.host, port: adminPort },
    ...(istioAt !== undefined ? { istioAddress: istioAt } : {}),
    credentials,
    status: reporter,
    metrics,
    shutdown(graceMs = config.shutdownGraceMs) {
      shutdownPromise ??= drainIssuer(parts, tlsListeners, admin, graceMs);
      return shutdownPromise;
    },
  };
}

/** The use cases: Certify, and CreateCertificate when config.istio is set (both record issuance in `ledger`). */
async function openCertifiers(
  config: IssuerConfig,
  deps: StartIssuerDeps,
  o: {
    readonly clock: Clock;
    readonly metrics: IssuerMetrics;
    readonly credentials: CredentialSource;
    readonly authenticator: Authenticator;
    readonly ledger: IssuanceLedger;
    readonly csrCache: RenewalCaches['csr'];
    readonly tokenReviewBudget: RateBudget;
  },
): Promise<{ certify: Certify; istio: IstioParts | undefined }> {
  const { clock, credentials } = o;
  const { leafLifetimeMs: lifetimeMs, clockSkewMs, leafKeyTypes: allowedKeyTypes } = config;
  const policy = { lifetimeMs, clockSkewMs, allowedKeyTypes };
  const certify = createCertifier({
    csrCache: o.csrCache,
    clock,
    credentials,
    authenticator: o.authenticator,
    policy,
    domain: config.domain,
    onIssued: issuanceObserver(o.ledger, 'Certify'),
  });
  const injected = {
    ...(deps.istioAuthenticator !== undefined ? { authenticator: deps.istioAuthenticator } : {}),
    ...(deps.istioKubeConnection !== undefined ? { kubeConnection: deps.istioKubeConnection } : {}),
  };
  const istio = await openIstio(config, {
    clock,
    logger: deps.logger,
    metrics: o.metrics,
    credentials,
    policy,
    onIssued: issuanceObserver(o.ledger, 'CreateCertificate'),
    tokenReviewBudget: o.tokenReviewBudget,
    ...injected,
  });
  return { certify, istio };
}

/**
 * The credential source: the one handed over (a cluster worker's) or the issuer directory's. An
 * --intermediates file that does not validate fails the start: what was opened is closed.
 */
async function openCredentials(
  config: IssuerConfig,
  deps: StartIssuerDeps,
  o: {
    readonly clock: Clock;
    readonly metrics: IssuerMetrics;
    readonly health: IssuerHealth;
    readonly servingTls: ServingTls | undefined;
  },
): Promise<CredentialSource> {
  if (deps.credentials !== undefined) {
    deps.credentials.onChange(o.health.update);
    return deps.credentials;
  }
  return createIssuerCredentialSource({
    config,
    clock: o.clock,
    ...(deps.scheduler !== undefined ? { scheduler: deps.scheduler } : {}),
    logger: deps.logger,
    reloads: o.metrics.reloads,
    lastReload: o.metrics.lastReload,
    onReload: o.health.update,
  }).catch((err: unknown) => {
    o.servingTls?.close();
    o.health.close();
    throw err;
  });
}

/**
 * The authenticator `config.auth` asks for (or the injected one). `tokenReviewBudget` is the process's
 * one total TokenReview budget, shared with the Istio API's authenticator.
 */
async function openAuthenticator(
  config: IssuerConfig,
  deps: StartIssuerDeps,
  o: {
    readonly clock: Clock;
    readonly metrics: IssuerMetrics;
    readonly caches: RenewalCaches;
    readonly tokenReviewBudget: RateBudget;
  },
): Promise<Authenticator> {
  if (deps.authenticator !== undefined) return deps.authenticator;
  return createAuthenticator(config.auth, {
    tokenCache: o.caches.token,
    tokenReviewBudget: o.tokenReviewBudget,
    clock: o.clock,
    clockSkewMs: config.clockSkewMs,
    logger: deps.logger.child({ component: 'authn' }),
    metrics: o.metrics,
    workers: config.workers,
  });
}

/** A start that failed half-way: closes what was opened. */
async function closeIssuerParts(parts: IssuerParts): Promise<void> {
  parts.servingTls?.close();
  parts.admission.close();
  parts.rejectionLog.close();
  for (const s of grpcServersOf(parts)) s.forceShutdown();
  parts.health.close();
  await parts.credentials.close();
  await parts.authenticator.close?.();
  await parts.istio?.close();
}

/** Stops accepting calls, lets those in flight finish within graceMs (then cancels them), closes everything. */
async function drainIssuer(
  parts: IssuerParts,
  tlsListeners: readonly TlsListener[],
  admin: FastifyInstance | undefined,
  graceMs: number,
): Promise<void> {
  const { logger, admission } = parts;
  const servers = grpcServersOf(parts);
  parts.health.drain();
  parts.servingTls?.close();
  for (const l of tlsListeners) l.close();
  logger.info({ event: 'draining', graceMs }, 'draining: no new calls, finishing those in flight');
  await new Promise<void>((resolve) => {
    const force = setTimeout(() => {
      logger.warn({ event: 'grace_expired' }, 'grace period over; cancelling the remaining calls');
      // grpc-js's forceShutdown() only destroys connections it tracks for channelz (disabled
      // here), so the calls still in progress are ended one by one first
      admission.cancelAll();
      for (const s of servers) s.forceShutdown();
      for (const l of tlsListeners) l.destroyAll();
      resolve();
    }, graceMs);
    // both servers (Certify's and the Istio API's) drain together
    let left = servers.length;
    for (const s of servers)
      s.tryShutdown(() => {
        if (--left > 0) return;
        clearTimeout(force);
        resolve();
      });
  });
  await admin?.close();
  admission.close();
  parts.rejectionLog.close();
  await parts.credentials.close();
  await parts.authenticator.close?.();
  await parts.istio?.close();
  logger.info({ event: 'stopped' }, 'issuer stopped');
}
