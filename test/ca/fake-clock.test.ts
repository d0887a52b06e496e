// The FakeClock's scheduler (test/support/clock.ts): one-shot and periodic timers run as time moves.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../support/clock.js';

describe('FakeClock as a Scheduler', () => {
  it('runs a periodic task each time it falls due, at its own due time, until cancelled', () => {
    const clock = new FakeClock(0);
    const runs: number[] = [];
    const stop = clock.every(100, () => runs.push(clock.now().getTime()));
    clock.advance(350);
    assert.deepEqual(runs, [100, 200, 300]);
    assert.equal(clock.pendingTimers, 1);
    stop();
    clock.advance(1000);
    assert.deepEqual(runs, [100, 200, 300]);
    assert.equal(clock.pendingTimers, 0);
  });

  it('interleaves periodic and one-shot timers in due order; a task may cancel itself', () => {
    const clock = new FakeClock(0);
    const order: string[] = [];
    let n = 0;
    const stop = clock.every(100, () => {
      order.push(`every@${clock.now().getTime()}`);
      if (++n === 2) stop();
    });
    clock.after(150, () => order.push(`after@${clock.now().getTime()}`));
    clock.advance(500);
    assert.deepEqual(order, ['every@100', 'after@150', 'every@200']);
    assert.equal(clock.pendingTimers, 0);
  });
});
