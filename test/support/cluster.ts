import { prepareIssuerFiles, startServe, type LongRunning } from './cli.js';
import { tempDir } from './temp-dir.js';

/** A running `lanyard serve --workers 2` (startCluster). */
export interface ServeCluster {
  /** the files of prepareIssuerFiles, with service account `web` (DIR/web.token) */
  readonly dir: string;
  readonly serve: LongRunning;
  readonly grpcPort: string;
  /** the port of the Istio CA API the primary reported (only with --istio-listen among the extra flags) */
  readonly istioPort?: string;
  /** the admin origin, http://host:port */
  readonly admin: string;
  /** stops serve (if it still runs) and removes dir, for the suite's `after` */
  stop(): Promise<void>;
}

/**
 * `lanyard serve --workers 2` (startServe) on the files of prepareIssuerFiles(…, ['web']) in a new
 * temporary directory, once the primary reports its ports (for a suite's `before`). `extra`: more
 * files to make in the directory before serve starts, and the further flags that use them.
 */
export async function startCluster(
  prefix: string,
  options: { extra?: (dir: string) => readonly string[] } = {},
): Promise<ServeCluster> {
  const { dir, cleanup } = tempDir(prefix);
  let serve: LongRunning | undefined;
  const stop = async (): Promise<void> => {
    await serve?.stop();
    cleanup();
  };
  try {
    prepareIssuerFiles(dir, ['web']);
    serve = startServe(dir, ['--workers', '2', ...(options.extra?.(dir) ?? [])]);
    const m = await serve.waitFor(
      /gRPC on [^:]+:(\d+) \(2 workers\)(?:, Istio CA on [^:]+:(\d+))?, admin on (http:\/\/\S+)/,
      60_000,
    );
    return {
      dir,
      serve,
      grpcPort: m[1] as string,
      ...(m[2] !== undefined ? { istioPort: m[2] } : {}),
      admin: m[3] as string,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
