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
  /** the Istio CA API's port the workers reported (undefined: not served) */
  istioPort(): number | undefined;
  /** sends a message to every connected worker */
  broadcast(m: ToWorker): void;
  /** tells every worker to drain and waits for all to exit (SIGKILL after graceMs + 2 s) */
  drain(graceMs: number): Promise<void>;
}

/** What the pool knows of its workers; fork() and started() update it. */
interface PoolState {
  draining: boolean;
  // Until every worker listens, a worker that exits is a start-up failure (a bad JWKS file, a port
  // taken …), reported once; it is not replaced, or the primary would fork failing workers forever.
  up: boolean;
  grpcPort: number;
  istioPort: number | undefined;
  readonly listening: Set<number>;
}

export function createWorkerPool(o: {
  readonly count: number;
  readonly port: number;
  readonly logger: Logger;
  /** the module each worker runs, with this process's arguments (default: this process's main module) */
  readonly exec?: string;
  /** a worker's message other than 'listening' */
  readonly onMessage: (w: Worker, m: FromWorker) => void;
}): WorkerPool {
  const state: PoolState = {
    draining: false,
    up: false,
    grpcPort: o.port,
    istioPort: undefined,
    listening: new Set(),
  };
  cluster.setupPrimary({
    ...(o.exec !== undefined ? { exec: o.exec } : {}),
    execArgv: workerExecArgv(process.execArgv, process.env.NODE_OPTIONS),
  });

  const fork = (): Worker => {
    const w = cluster.fork();
    watchIpcErrors(w, o.logger);
    w.on('message', (m: FromWorker) => {
      if (m.type === 'listening') {
        state.grpcPort = m.port;
        state.istioPort = m.istioPort;
        state.listening.add(w.id);
      } else {
        o.onMessage(w, m);
      }
    });
    w.on('exit', (code, signal) => {
      state.listening.delete(w.id);
      if (state.up && !state.draining) {
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

  return {
    started: () => whenAllListen(state, o.count),
    grpcPort: () => state.grpcPort,
    istioPort: () => state.istioPort,
    broadcast(m) {
      for (const w of allWorkers())
        if (w.isConnected())
          w.send(m, undefined, undefined, (err) => {
            if (err !== null) warnIpcError(o.logger, w, err);
          });
    },
    async drain(graceMs) {
      state.draining = true;
      await Promise.all(allWorkers().map((w) => drainWorker(w, graceMs, state.listening)));
    },
  };
}

/**
 * Logs a worker's 'error' events instead of letting them crash the primary: a send to a worker killed
 * outright fails with EPIPE while it still looks connected (its 'disconnect' not seen yet); its
 * 'exit' follows, and fork()'s handler replaces it.
 */
export function watchIpcErrors(
  w: { readonly id: number; on(event: 'error', listener: (err: Error) => void): unknown },
  logger: Logger,
): void {
  w.on('error', (err: Error) => {
    warnIpcError(logger, w, err);
  });
}

function warnIpcError(logger: Logger, w: { readonly id: number }, err: Error): void {
  logger.warn(
    { event: 'worker_ipc_error', worker: w.id, err: err.message },
    'a message to or from a worker failed',
  );
}

/**
 * The node flags of a worker: this process's, plus a smaller young generation unless the operator
 * set one (on the command line or in NODE_OPTIONS). V8's default semi-space on 64-bit (16 MiB, two
 * of them) is resident memory that a storm fills in every worker; at 4 MiB a 10,000-workload storm
 * peaks ≈ 45 MB lower over two workers for no CPU per certificate we could measure (issue 15).
 */
export function workerExecArgv(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((a) =>
    /^--max[-_]semi[-_]space[-_]size(=|$)/.test(a),
  );
  return given ? [...execArgv] : [...execArgv, `--max-semi-space-size=${WORKER_SEMI_SPACE_MIB}`];
}

const WORKER_SEMI_SPACE_MIB = 4;

function allWorkers(): Worker[] {
  return Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
}

/** Resolves once `count` workers listen; a worker exiting before that kills them all and rejects. */
function whenAllListen(state: PoolState, count: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    // a worker exiting before all listen is a start-up failure; afterwards, fork()'s handler replaces it
    const onStartExit = (): void => {
      clearInterval(t);
      state.draining = true;
      for (const w of allWorkers()) w.process.kill('SIGKILL');
      reject(
        new IssuerServiceError(
          'ERR_WORKER_START',
          'a worker failed to start (its error is above); nothing is served',
        ),
      );
    };
    const t = setInterval(() => {
      if (state.listening.size >= count) {
        clearInterval(t);
        cluster.off('exit', onStartExit);
        state.up = true;
        resolve();
      }
    }, 20);
    cluster.once('exit', onStartExit);
  });
}

/** Tells one worker to drain and resolves when it exits (SIGKILL after graceMs + 2 s). */
function drainWorker(w: Worker, graceMs: number, listening: ReadonlySet<number>): Promise<void> {
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
