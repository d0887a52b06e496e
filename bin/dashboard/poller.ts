// Reads every cluster on its own loop (every intervalMs, each read bounded), keeping the latest
// reading of each: a slow or dead cluster delays only itself.
import { setMaxListeners } from 'node:events';
import { systemScheduler, type Clock, type Scheduler } from '../../ca/index.js';
import { readCluster, type ClusterReading, type ClusterTarget } from '../../trust-bundles/index.js';

export interface MeshPoller {
  readonly targets: readonly ClusterTarget[];
  /** the latest reading of each cluster, in the order given (undefined: not read yet) */
  readings(): { readonly name: string; readonly reading: ClusterReading | undefined }[];
  /** reads every cluster once more now; resolves when every read has ended */
  refresh(): Promise<void>;
  close(): void;
}

export interface MeshPollerOptions {
  readonly targets: readonly ClusterTarget[];
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly clock: Clock;
  readonly scheduler?: Scheduler;
  /** start the loops (default true); false: only refresh() reads */
  readonly start?: boolean;
}

export function createMeshPoller(o: MeshPollerOptions): MeshPoller {
  const latest = new Map<string, ClusterReading>();
  const inFlight = new Map<string, Promise<void>>();
  const ac = new AbortController();
  // each cluster's three requests listen on it at once
  setMaxListeners(Math.max(10, o.targets.length * 4), ac.signal);
  const scheduler = o.scheduler ?? systemScheduler;
  const now = (): Date => o.clock.now();
  const readOne = (t: ClusterTarget): Promise<void> => {
    const running = inFlight.get(t.name);
    if (running !== undefined) return running;
    const p = readCluster(t, { timeoutMs: o.timeoutMs, maxBytes: o.maxBytes, signal: ac.signal }, now)
      .then((r) => {
        if (!ac.signal.aborted) latest.set(t.name, r);
      })
      .catch(() => undefined)
      .finally(() => inFlight.delete(t.name));
    inFlight.set(t.name, p);
    return p;
  };
  const stops: (() => void)[] = [];
  if (o.start !== false) {
    for (const t of o.targets) {
      void readOne(t);
      stops.push(scheduler.every(o.intervalMs, () => void readOne(t)));
    }
  }
  return {
    targets: o.targets,
    readings: () => o.targets.map((t) => ({ name: t.name, reading: latest.get(t.name) })),
    refresh: async () => {
      await Promise.all(o.targets.map((t) => readOne(t)));
    },
    close: () => {
      for (const s of stops) s();
      ac.abort();
    },
  };
}
