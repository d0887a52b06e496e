// The process model of `lanyard serve` (runIssuer): one process, or cluster mode. In cluster mode the
// primary keeps the admin endpoints, the issuance record and the credential: it alone reads and
// validates the credential files, and hands each credential that validated to the workers
// (credential-handoff.ts). N workers (node:cluster, sharing the gRPC port) each run the Certify
// service, so a restart storm uses every core. Workers report their issuance to the primary; metrics
// are summed with prom-client's AggregatorRegistry.
import cluster from 'node:cluster';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import { systemClock, type Clock } from '../ca/index.js';
import type { HostPort, IssuerConfig } from './config.js';
import type { ToWorker } from './cluster-messages.js';
import { createWorkerPool, type WorkerPool } from './cluster-pool.js';
import { runClusterWorker } from './cluster-worker.js';
import {
  createIssuerCredentialSource,
  type CredentialMaterial,
  type CredentialSource,
} from './credentials.js';
import type { AnchorIssuance, IssuanceLedger, IssuedByApi } from './ledger.js';
import { createIssuerMetrics } from './metrics.js';
import { forwardRenewalCacheBatch } from './renewal-cache-sharing.js';
import { startIssuer } from './main.js';
import { openServingTlsOf, type ServingTls } from './serving-tls.js';
import type { BoundPorts } from './status.js';

export interface RunningCluster {
  readonly grpcAddress: HostPort;
  readonly adminAddress: HostPort;
  /** the Istio CA API's listener the workers share (--istio-listen), when on */
  readonly istioAddress?: HostPort;
  readonly workers: number;
  shutdown(graceMs?: number): Promise<void>;
}

/** The issuance record of all workers: per anchor, issued counts summed and the latest notAfter. */
function createAggregatedLedger(): IssuanceLedger & {
  update(worker: number, snapshot: AnchorIssuance[], byApi: IssuedByApi): void;
} {
  // each worker's latest report
  const byWorker = new Map<number, { snapshot: AnchorIssuance[]; byApi: IssuedByApi }>();
  const merged = (): AnchorIssuance[] => {
    const m = new Map<string, { issued: number; latest: number }>();
    for (const { snapshot } of byWorker.values()) {
      for (const a of snapshot) {
        const e = m.get(a.anchorFingerprint) ?? { issued: 0, latest: 0 };
        e.issued += a.issued;
        e.latest = Math.max(e.latest, Date.parse(a.latestNotAfter));
        m.set(a.anchorFingerprint, e);
      }
    }
    return [...m].map(([anchorFingerprint, e]) => ({
      anchorFingerprint,
      issued: e.issued,
      latestNotAfter: new Date(e.latest).toISOString(),
    }));
  };
  return {
    record() {
      // the primary signs nothing
    },
    get total() {
      return merged().reduce((n, a) => n + a.issued, 0);
    },
    byApi() {
      let Certify = 0;
      let CreateCertificate = 0;
      for (const { byApi: a } of byWorker.values()) {
        Certify += a.Certify;
        CreateCertificate += a.CreateCertificate;
      }
      return { Certify, CreateCertificate };
    },
    snapshot: merged,
    update(worker, snapshot, byApi) {
      byWorker.set(worker, { snapshot, byApi });
    },
  };
}

export async function runClusterPrimary(
  config: IssuerConfig,
  deps: { logger: Logger; clock?: Clock; workers: number; workerEntry?: string },
): Promise<RunningCluster> {
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger;
  // loaded by the primary only (workers import this module too): fastify, @peculiar/x509
  const { createAdminApp } = await import('./admin.js');
  const { createIssuerStatusReporter } = await import('./status.js');
  const metrics = createIssuerMetrics({ defaultMetrics: false, renewalHint: config.renewalHint });
  const aggregator = new AggregatorRegistry();
  // checked here once, so a bad pair is one clear error rather than every worker failing; kept
  // current for /v1/status (each worker serves from its own copy)
  const servingTls = await openServingTlsOf(config, { clock, logger, expiry: metrics.servingExpiry });
  // the credential is read and validated here only; each one that validates goes to every worker
  let material: CredentialMaterial | undefined;
  const credentialMessage = (): ToWorker => ({ type: 'credential', material });
  // the workers are forked once the first credential is known (they ask for it as they start)
  const forked: { pool?: WorkerPool } = {};
  const credentials = await createIssuerCredentialSource({
    config,
    clock,
    logger,
    reloads: metrics.reloads,
    lastReload: metrics.lastReload,
    onMaterial(m) {
      material = m;
      forked.pool?.broadcast(credentialMessage());
    },
  }).catch((err: unknown) => {
    servingTls?.close();
    throw err;
  });
  const ledger = createAggregatedLedger();
  const bound = (): BoundPorts => ({ grpc: workers.grpcPort(), istio: workers.istioPort() });
  const status = createIssuerStatusReporter(config, { clock, credentials, ledger, servingTls, bound });
  const workers = (forked.pool = createWorkerPool({
    count: deps.workers,
    port: config.listen.port,
    logger,
    ...(deps.workerEntry !== undefined ? { exec: deps.workerEntry } : {}),
    onMessage(w, m) {
      if (m.type === 'ledger') ledger.update(w.id, m.snapshot, m.byApi);
      else if (m.type === 'credential-wanted' && w.isConnected()) w.send(credentialMessage());
      else if (m.type === 'renewal-cache') forwardRenewalCacheBatch(w, m);
    },
  }));
  await workers.started().catch(async (err: unknown) => {
    await credentials.close();
    throw err;
  });

  let draining = false;
  const admin = createAdminApp({
    credentials,
    metrics,
    status,
    draining: () => draining,
    metricsText: async () => `${await metrics.stateRegistry.metrics()}\n${await aggregator.clusterMetrics()}`,
  });
  await admin.listen({ host: config.adminListen.host, port: config.adminListen.port });
  const adminPort = (admin.server.address() as { port: number }).port;
  const addresses = clusterAddresses(config, workers, adminPort);
  logger.info(
    {
      event: 'started',
      workers: deps.workers,
      grpc: hostPortText(addresses.grpcAddress),
      admin: hostPortText(addresses.adminAddress),
      ...(addresses.istioAddress !== undefined ? { istio: hostPortText(addresses.istioAddress) } : {}),
    },
    'issuer started',
  );

  let stopping: Promise<void> | undefined;
  return {
    ...addresses,
    workers: deps.workers,
    shutdown(graceMs = config.shutdownGraceMs) {
      if (stopping === undefined) {
        draining = true;
        stopping = stopClusterPrimary({ logger, workers, admin, servingTls, credentials }, graceMs);
      }
      return stopping;
    },
  };
}

/** Where a cluster serves: the admin port the primary bound, the ports its workers reported. */
function clusterAddresses(
  config: IssuerConfig,
  workers: WorkerPool,
  adminPort: number,
): Pick<RunningCluster, 'grpcAddress' | 'adminAddress' | 'istioAddress'> {
  const istioPort = workers.istioPort();
  return {
    grpcAddress: { host: config.listen.host, port: workers.grpcPort() },
    adminAddress: { host: config.adminListen.host, port: adminPort },
    ...(config.istio !== undefined && istioPort !== undefined
      ? { istioAddress: { host: config.istio.listen.host, port: istioPort } }
      : {}),
  };
}

const hostPortText = (a: HostPort): string => `${a.host}:${a.port}`;

/** Drains the workers, then closes the admin server, the serving TLS watch and the credential source. */
async function stopClusterPrimary(
  parts: {
    readonly logger: Logger;
    readonly workers: WorkerPool;
    readonly admin: FastifyInstance;
    readonly servingTls: ServingTls | undefined;
    readonly credentials: CredentialSource;
  },
  graceMs: number,
): Promise<void> {
  const { logger } = parts;
  logger.info({ event: 'draining', graceMs }, 'draining: workers finish their calls in flight');
  await parts.workers.drain(graceMs);
  await parts.admin.close();
  parts.servingTls?.close();
  await parts.credentials.close();
  logger.info({ event: 'stopped' }, 'issuer stopped');
}

export const isClusterWorker = (): boolean => cluster.isWorker;

/** `lanyard serve` as this process runs it: a cluster worker (nothing to report), or the service itself. */
export type IssuerProcess =
  | { readonly role: 'worker' }
  | {
      /** 'single': one process serves everything; 'primary': the admin side of `workers` workers */
      readonly role: 'single' | 'primary';
      readonly grpcAddress: HostPort;
      readonly adminAddress: HostPort;
      /** the Istio CA API's listener (--istio-listen), when on */
      readonly istioAddress?: HostPort;
      readonly workers: number;
      /** drains and stops (the workers too) */
      shutdown(graceMs?: number): Promise<void>;
    };

/**
 * Runs the issuer service in the process model its config asks for: in a node:cluster worker, a
 * worker; with --workers above 1, a primary forking that many workers; else one process serving
 * everything. Resolves once it serves.
 */
export async function runIssuer(
  config: IssuerConfig,
  deps: {
    readonly logger: Logger;
    readonly clock?: Clock;
    /** the module a worker runs (with this process's arguments); default: this process's main module */
    readonly workerEntry?: string;
  },
): Promise<IssuerProcess> {
  const clock = deps.clock ?? systemClock;
  if (isClusterWorker()) {
    await runClusterWorker(config, { logger: deps.logger, clock });
    return { role: 'worker' };
  }
  if (config.workers > 1) {
    const c = await runClusterPrimary(config, {
      logger: deps.logger,
      clock,
      workers: config.workers,
      ...(deps.workerEntry !== undefined ? { workerEntry: deps.workerEntry } : {}),
    });
    return {
      role: 'primary',
      grpcAddress: c.grpcAddress,
      adminAddress: c.adminAddress,
      ...(c.istioAddress !== undefined ? { istioAddress: c.istioAddress } : {}),
      workers: c.workers,
      shutdown: (graceMs) => c.shutdown(graceMs),
    };
  }
  const issuer = await startIssuer(config, { logger: deps.logger, clock });
  return {
    role: 'single',
    grpcAddress: issuer.grpcAddress,
    adminAddress: issuer.adminAddress,
    ...(issuer.istioAddress !== undefined ? { istioAddress: issuer.istioAddress } : {}),
    workers: 1,
    shutdown: (graceMs) => issuer.shutdown(graceMs),
  };
}
