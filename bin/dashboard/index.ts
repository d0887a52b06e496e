import type { AddressInfo } from 'node:net';
import type { Clock } from '../../ca/index.js';
import type { ClusterTarget, MeshViewOptions } from '../../trust-bundles/index.js';
import { createDashboardApp } from './app.js';
import { createMeshPoller } from './poller.js';

export { createDashboardApp, type DashboardAppOptions } from './app.js';
export { createMeshPoller, type MeshPoller } from './poller.js';

export const DASHBOARD_DEFAULTS = Object.freeze({
  listen: '127.0.0.1:9900',
  refreshMs: 10_000,
  /** the deadline of each request to a cluster */
  timeoutMs: 5_000,
  /** the largest answer read from a cluster */
  maxBytes: 1024 * 1024,
});

export interface RunningDashboard {
  /** http://HOST:PORT/ */
  readonly url: string;
  close(): Promise<void>;
}

/** Reads the clusters every refreshMs and serves the page on host:port. */
export async function startDashboard(o: {
  readonly clusters: readonly ClusterTarget[];
  readonly host: string;
  readonly port: number;
  readonly refreshMs: number;
  readonly timeoutMs: number;
  readonly maxBytes?: number;
  readonly clock: Clock;
  readonly view?: MeshViewOptions;
}): Promise<RunningDashboard> {
  const poller = createMeshPoller({
    targets: o.clusters,
    // read twice per page reload: a page shows what happened up to half a refresh before it reloaded,
    // so a change (a cluster gone) appears at the first reload after it
    intervalMs: Math.max(500, Math.round(o.refreshMs / 2)),
    timeoutMs: o.timeoutMs,
    maxBytes: o.maxBytes ?? DASHBOARD_DEFAULTS.maxBytes,
    clock: o.clock,
  });
  const app = createDashboardApp({
    poller,
    clock: o.clock,
    refreshMs: o.refreshMs,
    ...(o.view !== undefined ? { view: o.view } : {}),
  });
  try {
    await app.listen({ host: o.host, port: o.port });
  } catch (err) {
    poller.close();
    throw err;
  }
  const { address, port } = app.server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}/`,
    close: async () => {
      poller.close();
      await app.close();
    },
  };
}
