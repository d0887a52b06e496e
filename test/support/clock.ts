import { type Clock, type Scheduler } from '../../ca/index.js';

interface Timer {
  readonly atMs: number;
  readonly seq: number;
  readonly fn: () => void;
  /** a periodic task (every): scheduled again this long after each run */
  readonly periodMs?: number;
  /** shared by every run of one periodic task, so its cancel handle stops the next run too */
  readonly task: { cancelled: boolean };
}

/**
 * A clock that only moves when told to, and a Scheduler on that clock: advance() and set() run, in
 * order of their due time, the callbacks that fall due (each sees now() at its own due time),
 * periodic ones (every) as many times as they fall due.
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
    return this.schedule(this.ms + Math.max(0, ms), fn, undefined, { cancelled: false });
  }
  every(ms: number, fn: () => void): () => void {
    const periodMs = Math.max(1, ms);
    return this.schedule(this.ms + periodMs, fn, periodMs, { cancelled: false });
  }
  /** callbacks scheduled and neither run nor cancelled (a periodic task counts once) */
  get pendingTimers(): number {
    return this.timers.length;
  }
  private schedule(
    atMs: number,
    fn: () => void,
    periodMs: number | undefined,
    task: { cancelled: boolean },
  ): () => void {
    this.timers.push({ atMs, seq: this.seq++, fn, task, ...(periodMs !== undefined ? { periodMs } : {}) });
    return () => {
      task.cancelled = true;
      this.timers = this.timers.filter((t) => t.task !== task);
    };
  }
  private runUntil(targetMs: number): void {
    for (;;) {
      const due = this.timers
        .filter((t) => t.atMs <= targetMs)
        .sort((a, b) => a.atMs - b.atMs || a.seq - b.seq)[0];
      if (due === undefined) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.ms = Math.max(this.ms, due.atMs);
      if (due.periodMs !== undefined) this.schedule(due.atMs + due.periodMs, due.fn, due.periodMs, due.task);
      due.fn();
    }
    this.ms = targetMs;
  }
}

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
