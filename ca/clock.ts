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
