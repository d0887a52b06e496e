// Cluster mode of `lanyard serve`: the primary keeps the admin endpoints, the issuance record and the
// credential view; N workers (node:cluster, sharing the gRPC port) each run the Certify service, so a
// restart storm uses every core. Workers report their issuance to the primary; metrics are summed
// with prom-client's AggregatorRegistry.
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import { systemClock, type Clock } from '../ca/index.js';
import { IssuerServiceError } from './errors.js';
import { createAdminApp } from './admin.js';
import type { HostPort, IssuerConfig } from './config.js';
import { createIssuerCredentialSource } from './credentials.js';
import { createIssuanceLedger, type AnchorIssuance, type IssuanceLedger } from './ledger.js';
import { createIssuerMetrics } from './metrics.js';
import { startIssuer } from './main.js';
import { openServingTlsOf } from './serving-tls.js';
import { createStatusReporter } from './status.js';

type FromWorker = { type: 'listening'; port: number } | { type: 'ledger'; snapshot: AnchorIssuance[] };
type ToWorker = { type: 'drain'; graceMs: number };

export interface RunningCluster {
  readonly grpcAddress: HostPort;
  readonly adminAddress: HostPort;
  readonly workers: number;
  shutdown(graceMs?: number): Promise<void>;
}

/** The issuance record of all workers: per anchor, issued counts summed and the latest notAfter. */
function createAggregatedLedger(): IssuanceLedger & {
  update(worker: number, snapshot: AnchorIssuance[]): void;
} {
  const byWorker = new Map<number, AnchorIssuance[]>();
  const merged = (): AnchorIssuance[] => {
    const m = new Map<string, { issued: number; latest: number }>();
    for (const snap of byWorker.values()) {
      for (const a of snap) {
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
    snapshot: merged,
    update(worker, snapshot) {
      byWorker.set(worker, snapshot);
    },
  };
}

export async function runClusterPrimary(
  config: IssuerConfig,
  deps: { logger: Logger; clock?: Clock; workers: number },
): Promise<RunningCluster> {
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger;
  const metrics = createIssuerMetrics({ defaultMetrics: false });
  const aggregator = new AggregatorRegistry();
  // checked here once, so a bad pair is one clear error rather than every worker failing; kept
  // current for /v1/status (each worker serves from its own copy)
  const servingTls = await openServingTlsOf(config, { clock, logger, expiry: metrics.servingExpiry });
  const credentials = await createIssuerCredentialSource({ config, clock, logger, reloads: metrics.reloads });

  const ledger = createAggregatedLedger();
  const status = createStatusReporter({
    cluster: config.cluster,
    domain: config.domain,
    clock,
    credentials,
    ledger,
    leafLifetimeMs: config.leafLifetimeMs,
    clockSkewMs: config.clockSkewMs,
    ...(servingTls !== undefined ? { servingTls: () => servingTls.status() } : {}),
  });
  let draining = false;
  // Until every worker listens, a worker that exits is a start-up failure (a bad JWKS file, a port
  // taken …), reported once; it is not replaced, or the primary would fork failing workers forever.
  let started = false;
  let grpcPort = config.listen.port;
  const listening = new Set<number>();

  const fork = (): Worker => {
    const w = cluster.fork();
    w.on('message', (m: FromWorker) => {
      if (m.type === 'listening') {
        grpcPort = m.port;
        listening.add(w.id);
      } else if (m.type === 'ledger') {
        ledger.update(w.id, m.snapshot);
      }
    });
    w.on('exit', (code, signal) => {
      listening.delete(w.id);
      if (started && !draining) {
        logger.error(
          { event: 'worker_exited', worker: w.id, code, signal },
          'a worker exited; starting another',
        );
        fork();
      }
    });
    return w;
  };
  for (let i = 0; i < deps.workers; i++) fork();
  await new Promise<void>((resolve, reject) => {
    // a worker exiting before all listen is a start-up failure; afterwards, the fork() handler replaces it
    const onStartExit = (): void => {
      clearInterval(t);
      draining = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
      void credentials.close().finally(() => {
        reject(
          new IssuerServiceError(
            'ERR_WORKER_START',
            'a worker failed to start (its error is above); nothing is served',
          ),
        );
      });
    };
    const t = setInterval(() => {
      if (listening.size >= deps.workers) {
        clearInterval(t);
        cluster.off('exit', onStartExit);
        resolve();
      }
    }, 20);
    cluster.once('exit', onStartExit);
  });
  started = true;

  const admin = createAdminApp({
    credentials,
    metrics,
    status,
    draining: () => draining,
    metricsText: async () => `${await metrics.stateRegistry.metrics()}\n${await aggregator.clusterMetrics()}`,
  });
  await admin.listen({ host: config.adminListen.host, port: config.adminListen.port });
  const adminPort = (admin.server.address() as { port: number }).port;
  logger.info(
    {
      event: 'started',
      workers: deps.workers,
      grpc: `${config.listen.host}:${grpcPort}`,
      admin: `${config.adminListen.host}:${adminPort}`,
    },
    'issuer started',
  );

  let stopping: Promise<void> | undefined;
  async function shutdown(graceMs = config.shutdownGraceMs): Promise<void> {
    draining = true;
    logger.info({ event: 'draining', graceMs }, 'draining: workers finish their calls in flight');
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) {
              resolve();
              return;
            }
            if (!listening.has(w.id)) {
              // still starting (a replacement): it holds no calls, and would not hear the drain message yet
              w.once('exit', () => {
                resolve();
              });
              w.process.kill('SIGKILL');
              return;
            }
            const kill = setTimeout(() => {
              w.process.kill('SIGKILL');
            }, graceMs + 2000);
            w.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            w.send({ type: 'drain', graceMs } satisfies ToWorker);
          }),
      ),
    );
    await admin.close();
    servingTls?.close();
    await credentials.close();
    logger.info({ event: 'stopped' }, 'issuer stopped');
  }

  return {
    grpcAddress: { host: config.listen.host, port: grpcPort },
    adminAddress: { host: config.adminListen.host, port: adminPort },
    workers: deps.workers,
    shutdown(graceMs) {
      stopping ??= shutdown(graceMs);
      return stopping;
    },
  };
}

/** A worker: the Certify service on the shared port; drains when the primary says so. */
export async function runClusterWorker(
  config: IssuerConfig,
  deps: { logger: Logger; clock?: Clock },
): Promise<void> {
  const local = createIssuanceLedger();
  let pending: NodeJS.Timeout | undefined;
  const report = (): void => {
    pending = undefined;
    process.send?.({ type: 'ledger', snapshot: local.snapshot() } satisfies FromWorker);
  };
  // Reports at most every 100 ms, at once when a leaf is signed under an anchor not reported yet.
  const known = new Set<string>();
  const ledger: IssuanceLedger = {
    record(anchor, notAfter) {
      local.record(anchor, notAfter);
      const fresh = local.snapshot().length !== known.size;
      if (fresh) {
        for (const a of local.snapshot()) known.add(a.anchorFingerprint);
        clearTimeout(pending);
        report();
      } else {
        pending ??= setTimeout(report, 100);
      }
    },
    get total() {
      return local.total;
    },
    snapshot: () => local.snapshot(),
  };
  const worker = cluster.worker;
  // --max-in-flight and --max-in-flight-per-peer bound the whole issuer: each worker admits its share
  // (connections are spread over the workers, so a peer's share of one worker is its share of all)
  const perWorker = (n: number): number => Math.max(1, Math.ceil(n / Math.max(1, config.workers)));
  const share = {
    ...config,
    maxInFlight: perWorker(config.maxInFlight),
    maxInFlightPerPeer: perWorker(config.maxInFlightPerPeer),
  };
  const issuer = await startIssuer(share, {
    logger: deps.logger.child({ worker: worker?.id }),
    ...(deps.clock !== undefined ? { clock: deps.clock } : {}),
    admin: false,
    ledger,
  }).catch((err: unknown) => {
    // the IPC channel would keep this process alive after the CLI reported the error
    worker?.disconnect();
    throw err;
  });
  // Constructing one installs prom-client's listener that answers the primary's metrics requests.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([issuer.metrics.requestRegistry]);
  // Signals go to the primary, which drains the workers in order; a worker ignores them itself.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
  process.on('message', (m: ToWorker) => {
    if (m.type !== 'drain') return;
    void issuer.shutdown(m.graceMs).then(() => {
      clearTimeout(pending);
      report();
      process.exit(0);
    });
  });
  process.on('disconnect', () => {
    void issuer.shutdown(1000).then(() => process.exit(0));
  });
  process.send?.({ type: 'listening', port: issuer.grpcAddress.port } satisfies FromWorker);
}

export const isClusterWorker = (): boolean => cluster.isWorker;
