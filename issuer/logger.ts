import { pino, type DestinationStream, type Logger } from 'pino';

/** Paths never written to a log, whatever a caller passes in. */
// Explicit paths only: wildcard paths cost ≈ 10 µs on every line, and no line nests these fields
// deeper (the per-call line is flat and built from named fields).
export const REDACT_PATHS = [
  'token',
  'req.token',
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'key',
  'privateKey',
];

/** The issuer's logger: base fields service, cluster and trustDomain on every line. */
export function createIssuerLogger(
  config: { cluster: string; domain: { trustDomain: string }; logLevel: string },
  destination?: DestinationStream,
): Logger {
  return createLogger({
    level: config.logLevel,
    base: { service: 'lanyard-issuer', cluster: config.cluster, trustDomain: config.domain.trustDomain },
    ...(destination !== undefined ? { destination } : {}),
  });
}

export function createLogger(
  options: { level?: string; base?: Record<string, unknown>; destination?: DestinationStream } = {},
): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: options.base ?? {},
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? stderrLines(),
  );
}

/** A destination that writes what it is given at once or at the end of the event-loop turn. */
export interface BatchedDestination extends DestinationStream {
  /** writes every line given so far, before returning */
  readonly flushSync: () => void;
  /** pino's logger.flush(): writes every line given so far, then calls back */
  readonly flush: (cb?: (err?: Error) => void) => void;
}

/** Lines held before they are written whatever the turn: a few hundred per-call lines. */
const BATCH_MAX_CHARS = 64 * 1024;

/** pino's warn: lines at this level and above (warn, error, fatal) are never held. */
const WRITE_AT_ONCE_LEVEL = 40;

/**
 * Joins the info and debug lines written during one turn of the event loop (the per-call success
 * lines) and hands them to `out` together, once, when the turn ends (setImmediate), or as soon as
 * BATCH_MAX_CHARS are held. An idle server's line is written at the end of its own turn (well under a
 * millisecond later); a busy one writes the lines of all the calls that finished in a turn with one
 * write(2) instead of one each. A warn, error or fatal line is written before logger.x() returns,
 * together with the lines held before it (one write, in order).
 *
 * Measured (pino lines of the Certify call's shape, to a file and to a pipe, 8 lines a turn): pino's
 * synchronous destination costs ≈ 4.5 µs a line on top of the ≈ 4 µs pino spends building it, this
 * ≈ 1.5 µs; an asynchronous sonic-boom (writes on the libuv thread pool) ≈ 6.5 µs, so it was not used.
 *
 * What a crash can lose: the info and debug lines of the turn in progress (at most BATCH_MAX_CHARS),
 * and only when the process ends without running its 'exit' handlers (SIGKILL, the OOM killer, a
 * native crash, a worker the primary kills); process.exit(), a normal end and an uncaught exception
 * all run the 'exit' hook that writes them.
 */
export function batchLines(out: { write(s: string): unknown; flushSync?(): void }): BatchedDestination {
  let held = '';
  let scheduled: NodeJS.Immediate | undefined;
  const flushSync = (): void => {
    if (scheduled !== undefined) clearImmediate(scheduled);
    scheduled = undefined;
    if (held === '') return;
    const lines = held;
    held = '';
    out.write(lines);
  };
  const destination = {
    // pino sets lastLevel (the line's level) on a destination marked so, before each write
    [pino.symbols.needsMetadataGsym]: true as const,
    lastLevel: 0,
    write(line: string) {
      held += line;
      if (destination.lastLevel >= WRITE_AT_ONCE_LEVEL || held.length >= BATCH_MAX_CHARS) flushSync();
      else scheduled ??= setImmediate(flushSync);
    },
    flushSync,
    flush(cb?: (err?: Error) => void) {
      flushSync();
      cb?.();
    },
  };
  return destination;
}

// One per process: there is one fd 2, and lines from several loggers must reach it in the order they
// were written.
let stderr: BatchedDestination | undefined;

/**
 * fd 2 through pino's synchronous sonic-boom (which deals with partial writes, EAGAIN on a
 * non-blocking pipe and EPIPE), fed by batchLines; whatever is held is written on process exit.
 */
function stderrLines(): BatchedDestination {
  if (stderr !== undefined) return stderr;
  const created = batchLines(pino.destination({ fd: 2, sync: true }));
  process.on('exit', created.flushSync);
  return (stderr = created);
}

/**
 * Writes the log lines this process holds for the end of the turn now (nothing when none are held or
 * no logger writes to stderr): whoever writes to stderr other than through a logger (the CLI's error
 * line) calls it first, so its line comes after the log lines logged before it.
 */
export function flushLogLines(): void {
  stderr?.flushSync();
}
