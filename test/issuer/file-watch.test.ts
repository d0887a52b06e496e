// The one file-watching mechanism (issue 12, point 4): pure decisions, a tracker on the clock, and a
// watch whose looks run on the scheduler (here the FakeClock: no sleeping).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  contentFingerprint,
  createFileVersionTracker,
  createFileWatch,
  decideFileChange,
  lookAtContents,
  lookAtStats,
  lookDue,
  rememberVerdict,
  statFingerprint,
  type FileLook,
  type WatchVerdict,
} from '../../issuer/file-watch.js';
import { FakeClock } from '../support/clock.js';
import { tempDir } from '../support/temp-dir.js';

const seen = (fingerprint: string): FileLook<undefined> => ({ ok: true, fingerprint, value: undefined });
const unreadable: FileLook<undefined> = { ok: false, error: new Error('ENOENT') };

describe('file-watch decisions (pure)', () => {
  it('a version never seen is changed; the accepted or refused one is unchanged; a failed look is unreadable', () => {
    assert.equal(decideFileChange({}, seen('a')), 'changed');
    assert.equal(decideFileChange({ accepted: 'a' }, seen('a')), 'unchanged');
    assert.equal(decideFileChange({ refused: 'b' }, seen('b')), 'unchanged');
    assert.equal(decideFileChange({ accepted: 'a', refused: 'b' }, seen('c')), 'changed');
    assert.equal(decideFileChange({ accepted: 'a' }, unreadable), 'unreadable');
  });

  it("'latest' remembers one version whatever its verdict, and a retry forgets it", () => {
    const accepted = rememberVerdict({}, 'a', 'accepted', 'latest');
    assert.deepEqual(accepted, { accepted: 'a' });
    const refused = rememberVerdict(accepted, 'b', 'refused', 'latest');
    assert.deepEqual(refused, { refused: 'b' });
    assert.equal(decideFileChange(refused, seen('a')), 'changed', 'files put back are handed over again');
    assert.deepEqual(rememberVerdict(refused, 'c', 'retry', 'latest'), {});
  });

  it("'both' keeps the accepted and the refused version; a retry changes nothing", () => {
    let m = rememberVerdict({}, 'a', 'accepted', 'both');
    m = rememberVerdict(m, 'b', 'refused', 'both');
    assert.deepEqual(m, { accepted: 'a', refused: 'b' });
    assert.equal(decideFileChange(m, seen('a')), 'unchanged');
    assert.equal(rememberVerdict(m, 'c', 'retry', 'both'), m);
    assert.deepEqual(rememberVerdict(m, 'c', 'accepted', 'both'), { accepted: 'c', refused: 'b' });
  });

  it('an on-use look is due when never made, then once the interval has passed', () => {
    assert.equal(lookDue(undefined, 0, 1000), true);
    assert.equal(lookDue(5000, 5999, 1000), false);
    assert.equal(lookDue(5000, 6000, 1000), true);
  });

  it('fingerprints: any stat field or any content byte makes another version; parts are separated', () => {
    const s = { mtimeMs: 1, size: 2, ino: 3 };
    assert.notEqual(statFingerprint(s), statFingerprint({ ...s, ino: 4 }));
    assert.notEqual(statFingerprint(s), statFingerprint({ ...s, mtimeMs: 2 }));
    assert.equal(contentFingerprint('a', 'b'), contentFingerprint('a', 'b'));
    assert.notEqual(contentFingerprint('ab', ''), contentFingerprint('a', 'b'));
  });
});

describe('file-watch tracker (on-use looks on the clock)', () => {
  it('is due again only fileCheck-interval after the last look, and remembers verdicts', () => {
    const clock = new FakeClock();
    const t = createFileVersionTracker({ clock, intervalMs: 1000, initial: 'a' });
    assert.equal(t.due(), true);
    t.looked();
    clock.advance(999);
    assert.equal(t.due(), false);
    clock.advance(1);
    assert.equal(t.due(), true);
    assert.equal(t.decide(seen('a')), 'unchanged');
    t.settle('b', 'refused');
    assert.equal(t.decide(seen('b')), 'unchanged');
    assert.equal(t.decide(seen('a')), 'changed');
  });
});

describe('file-watch looks', () => {
  it('reads contents and stats; a missing file is unreadable', async (t) => {
    const { dir, cleanup } = tempDir('lanyard-file-watch-');
    t.after(cleanup);
    const p = join(dir, 'f');
    writeFileSync(p, 'one');
    const c = await lookAtContents([p]);
    assert.ok(c.ok);
    assert.deepEqual(c.value, ['one']);
    assert.equal(c.fingerprint, contentFingerprint('one'));
    assert.equal((await lookAtStats([p])).ok, true);
    assert.equal((await lookAtContents([join(dir, 'missing')])).ok, false);
    assert.equal((await lookAtStats([join(dir, 'missing')])).ok, false);
  });
});

describe('file-watch on the scheduler', () => {
  /** a watch over scripted looks: `version` is what the files hold (undefined: unreadable) */
  function scripted(verdicts: (v: string) => WatchVerdict, policy: 'latest' | 'both' = 'latest') {
    const clock = new FakeClock();
    const state = { version: 'a' as string | undefined, looks: 0 };
    const changes: string[] = [];
    const unreadables: number[] = [];
    const watch = createFileWatch({
      look: () => {
        state.looks++;
        return Promise.resolve(
          state.version === undefined
            ? { ok: false as const, error: new Error('gone') }
            : { ok: true as const, fingerprint: state.version, value: state.version },
        );
      },
      onChange: (v) => {
        changes.push(v);
        return verdicts(v);
      },
      onUnreadable: () => unreadables.push(state.looks),
      policy,
      clock,
      scheduler: clock,
      pollIntervalMs: 1000,
    });
    /** moves the clock one poll on and lets that look finish */
    const poll = async (): Promise<void> => {
      clock.advance(1000);
      await watch.check();
    };
    return { clock, state, changes, unreadables, watch, poll };
  }

  it('looks every poll interval and hands over each changed version once', async () => {
    const w = scripted(() => 'accepted');
    assert.equal(await w.watch.check(), 'changed');
    await w.poll();
    await w.poll();
    assert.deepEqual(w.changes, ['a']);
    assert.equal(w.state.looks, 3);
    w.state.version = 'b';
    await w.poll();
    assert.deepEqual(w.changes, ['a', 'b']);
    await w.watch.close();
    assert.equal(w.clock.pendingTimers, 0, 'close stops the poll');
  });

  it('an unreadable look keeps what is in use and reports it; a retry is handed over again at the next poll', async () => {
    let notYet = true;
    const w = scripted((v) => (v === 'b' && notYet ? 'retry' : 'accepted'));
    await w.watch.check();
    w.state.version = undefined;
    assert.equal(await w.watch.check(), 'unreadable');
    assert.equal(w.unreadables.length, 1);
    w.state.version = 'b';
    await w.poll();
    await w.poll();
    notYet = false;
    await w.poll();
    await w.poll();
    assert.deepEqual(w.changes, ['a', 'b', 'b', 'b']);
    await w.watch.close();
  });

  it("with 'both', the version in use is not handed over again after a refusal", async () => {
    const w = scripted((v) => (v === 'b' ? 'refused' : 'accepted'), 'both');
    await w.watch.check();
    w.state.version = 'b';
    await w.poll();
    await w.poll();
    w.state.version = 'a';
    await w.poll();
    assert.deepEqual(w.changes, ['a', 'b']);
    await w.watch.close();
  });

  it('joins a look in progress instead of starting another', async () => {
    const w = scripted(() => 'accepted');
    await Promise.all([w.watch.check(), w.watch.check(), w.watch.check()]);
    assert.equal(w.state.looks, 1);
    await w.watch.close();
  });
});
