/** The only place in Lanyard that reads the wall clock. Everything else takes a Clock. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = Object.freeze({
  now: () => new Date(),
});

/** Milliseconds since the epoch from a Clock, for code that only needs a number. */
export function nowMs(clock: Clock): number {
  return clock.now().getTime();
}

/**
 * Runs a callback later: the seam that makes timers fakeable (tests pass FakeClock, whose advance()
 * runs the callbacks that fall due). Taken only where a timer's firing is part of what is tested.
 */
export interface Scheduler {
  /** calls `fn` once after `ms` milliseconds; the returned function cancels it */
  after(ms: number, fn: () => void): () => void;
  /** calls `fn` every `ms` milliseconds (the first time `ms` from now); the returned function stops it */
  every(ms: number, fn: () => void): () => void;
}

/** Longest delay setTimeout takes; longer ones would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Node's timers, unref'd: a pending callback never keeps the process alive. */
export const systemScheduler: Scheduler = Object.freeze({
  after(ms: number, fn: () => void): () => void {
    const t = setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMER_MS));
    t.unref();
    return () => {
      clearTimeout(t);
    };
  },
  every(ms: number, fn: () => void): () => void {
    const t = setInterval(fn, Math.min(Math.max(1, ms), MAX_TIMER_MS));
    t.unref();
    return () => {
      clearInterval(t);
    };
  },
});
