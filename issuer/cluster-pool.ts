// The node:cluster workers of a `--workers N` primary: forked, watched until they all listen,
// replaced when one dies after that, drained on shutdown.
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { IssuerServiceError } from './errors.js';
import type { FromWorker, ToWorker } from './cluster-messages.js';

export interface WorkerPool {
  /** resolves once `count` workers listen; a worker exiting before that kills them all and rejects (ERR_WORKER_START) */
  started(): Promise<void>;
  /** the gRPC port the workers reported */
  grpcPort(): number;
  /** sends a message to every connected worker */
  broadcast(m: ToWorker): void;
  /** tells every worker to drain and waits for all to exit (SIGKILL after graceMs + 2 s) */
  drain(graceMs: number): Promise<void>;
}

export function createWorkerPool(o: {
  readonly count: number;
  readonly port: number;
  readonly logger: Logger;
  /** a worker's message other than 'listening' */
  readonly onMessage: (w: Worker, m: FromWorker) => void;
}): WorkerPool {
  let draining = false;
  // Until every worker listens, a worker that exits is a start-up failure (a bad JWKS file, a port
  // taken …), reported once; it is not replaced, or the primary would fork failing workers forever.
  let up = false;
  let grpcPort = o.port;
  const listening = new Set<number>();
  const all = (): Worker[] =>
    Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);

  const fork = (): Worker => {
    const w = cluster.fork();
    w.on('message', (m: FromWorker) => {
      if (m.type === 'listening') {
        grpcPort = m.port;
        listening.add(w.id);
      } else {
        o.onMessage(w, m);
      }
    });
    w.on('exit', (code, signal) => {
      listening.delete(w.id);
      if (up && !draining) {
        o.logger.error(
          { event: 'worker_exited', worker: w.id, code, signal },
          'a worker exited; starting another',
        );
        fork();
      }
    });
    return w;
  };
  for (let i = 0; i < o.count; i++) fork();

  function started(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      // a worker exiting before all listen is a start-up failure; afterwards, fork()'s handler replaces it
      const onStartExit = (): void => {
        clearInterval(t);
        draining = true;
        for (const w of all()) w.process.kill('SIGKILL');
        reject(
          new IssuerServiceError(
            'ERR_WORKER_START',
            'a worker failed to start (its error is above); nothing is served',
          ),
        );
      };
      const t = setInterval(() => {
        if (listening.size >= o.count) {
          clearInterval(t);
          cluster.off('exit', onStartExit);
          up = true;
          resolve();
        }
      }, 20);
      cluster.once('exit', onStartExit);
    });
  }

  function drainOne(w: Worker, graceMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
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
    });
  }

  return {
    started,
    grpcPort: () => grpcPort,
    broadcast(m) {
      for (const w of all()) if (w.isConnected()) w.send(m);
    },
    async drain(graceMs) {
      draining = true;
      await Promise.all(all().map((w) => drainOne(w, graceMs)));
    },
  };
}
