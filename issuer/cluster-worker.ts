// A node:cluster worker of `lanyard serve --workers N`: the Certify service on the shared gRPC port
// (and CreateCertificate on the shared Istio port, with --istio-listen),
// with the credential its primary hands over (it reads no credential file); reports its issuance to
// the primary and drains when told to.
import cluster from 'node:cluster';
import type { Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import { systemClock, systemScheduler, type Clock } from '../ca/index.js';
import type { FromWorker, ToWorker } from './cluster-messages.js';
import type { IssuerConfig } from './config.js';
import { receiveCredentialFromPrimary } from './credential-handoff.js';
import { createIssuanceLedger, type IssuanceLedger } from './ledger.js';
import { startWorkerService } from './main.js';
import { createRenewalCaches } from './renewal-cache.js';
import { ignore, shareRenewalCaches } from './renewal-cache-sharing.js';

/** A worker: the Certify service on the shared port; drains when the primary says so. */
export async function runClusterWorker(
  config: IssuerConfig,
  deps: { logger: Logger; clock?: Clock },
): Promise<void> {
  const local = createIssuanceLedger();
  let pending: NodeJS.Timeout | undefined;
  const report = (): void => {
    pending = undefined;
    process.send?.({ type: 'ledger', snapshot: local.snapshot(), byApi: local.byApi() } satisfies FromWorker);
  };
  // Reports at most every 100 ms, at once when a leaf is signed under an anchor not reported yet. A
  // call only counts (no snapshot: that is an array and an ISO string per anchor, built to report).
  let reportedAnchors = 0;
  const ledger: IssuanceLedger = {
    record(anchor, notAfter, api) {
      local.record(anchor, notAfter, api);
      if (local.anchors !== reportedAnchors) {
        reportedAnchors = local.anchors;
        clearTimeout(pending);
        report();
      } else {
        pending ??= setTimeout(report, 100);
      }
    },
    get total() {
      return local.total;
    },
    byApi: () => local.byApi(),
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
  const logger = deps.logger.child({ worker: worker?.id });
  const renewalCaches = createRenewalCaches(config.renewalCacheBytes);
  const issuer = await startWorkerService(share, {
    logger,
    renewalCaches,
    ...(deps.clock !== undefined ? { clock: deps.clock } : {}),
    ledger,
    credentials: await receiveCredentialFromPrimary({ logger }),
  }).catch((err: unknown) => {
    // the IPC channel would keep this process alive after the CLI reported the error
    worker?.disconnect();
    throw err;
  });
  // what this worker verifies reaches the other workers' renewal caches, through the primary (from
  // here on: a start that failed sends nothing)
  const sharing = shareRenewalCaches({
    caches: renewalCaches,
    clock: deps.clock ?? systemClock,
    scheduler: systemScheduler,
    // best effort: a channel that breaks (EPIPE) is the callback's, not an 'error' event's
    send: (batch) => {
      if (process.connected) process.send?.(batch satisfies FromWorker, undefined, undefined, ignore);
    },
  });
  // Constructing one installs prom-client's listener that answers the primary's metrics requests.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([issuer.metrics.requestRegistry]);
  // Signals go to the primary, which drains the workers in order; a worker ignores them itself.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
  process.on('message', (m: ToWorker) => {
    if (m.type === 'renewal-cache') sharing.receive(m);
    if (m.type !== 'drain') return;
    sharing.close();
    void issuer.shutdown(m.graceMs).then(() => {
      clearTimeout(pending);
      report();
      process.exit(0);
    });
  });
  process.on('disconnect', () => {
    sharing.close();
    void issuer.shutdown(1000).then(() => process.exit(0));
  });
  const istioPort = issuer.istioAddress !== undefined ? { istioPort: issuer.istioAddress.port } : {};
  process.send?.({ type: 'listening', port: issuer.grpcAddress.port, ...istioPort } satisfies FromWorker);
}
