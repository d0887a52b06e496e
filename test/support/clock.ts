import type { Clock, Scheduler } from '../../ca/index.js';

interface Timer {
  readonly atMs: number;
  readonly seq: number;
  readonly fn: () => void;
}

/**
 * A clock that only moves when told to, and a Scheduler on that clock: advance() and set() run, in
 * order of their due time, the callbacks that fall due (each sees now() at its own due time).
 */
export class FakeClock implements Clock, Scheduler {
  private ms: number;
  private timers: Timer[] = [];
  private seq = 0;
  constructor(start: Date | string | number = '2026-06-01T00:00:00Z') {
    this.ms = new Date(start).getTime();
  }
  now(): Date {
    return new Date(this.ms);
  }
  advance(ms: number): void {
    this.runUntil(this.ms + ms);
  }
  set(t: Date | string | number): void {
    this.runUntil(new Date(t).getTime());
  }
  after(ms: number, fn: () => void): () => void {
    const timer: Timer = { atMs: this.ms + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }
  /** callbacks scheduled and neither run nor cancelled */
  get pendingTimers(): number {
    return this.timers.length;
  }
  private runUntil(targetMs: number): void {
    for (;;) {
      const due = this.timers
        .filter((t) => t.atMs <= targetMs)
        .sort((a, b) => a.atMs - b.atMs || a.seq - b.seq)[0];
      if (due === undefined) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.ms = Math.max(this.ms, due.atMs);
      due.fn();
    }
    this.ms = targetMs;
  }
}

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
