import type { Clock } from '../../ca/index.js';

/** A clock that only moves when told to. */
export class FakeClock implements Clock {
  private ms: number;
  constructor(start: Date | string | number = '2026-06-01T00:00:00Z') {
    this.ms = new Date(start).getTime();
  }
  now(): Date {
    return new Date(this.ms);
  }
  advance(ms: number): void {
    this.ms += ms;
  }
  set(t: Date | string | number): void {
    this.ms = new Date(t).getTime();
  }
}

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
