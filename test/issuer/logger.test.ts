import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { batchLines, createLogger } from '../../issuer/logger.js';

function recorder(): { writes: string[]; out: { write(s: string): void } } {
  const writes: string[] = [];
  return { writes, out: { write: (s: string) => writes.push(s) } };
}

describe('the serve log destination (batchLines)', () => {
  it('writes the lines of one event-loop turn together, once the turn ends', async () => {
    const { writes, out } = recorder();
    const logger = createLogger({ destination: batchLines(out) });
    logger.info({ n: 1 }, 'first');
    logger.info({ n: 2 }, 'second');
    assert.equal(writes.length, 0);
    await nextTurn();
    assert.equal(writes.length, 1);
    const lines = (writes[0] ?? '')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; n: number });
    assert.deepEqual(
      lines.map((l) => [l.msg, l.n]),
      [
        ['first', 1],
        ['second', 2],
      ],
    );
    logger.info('third');
    await nextTurn();
    assert.equal(writes.length, 2);
    assert.match(writes[1] ?? '', /"msg":"third"/);
  });

  it("writes everything held at once on flushSync and on the logger's flush()", () => {
    const { writes, out } = recorder();
    const destination = batchLines(out);
    const logger = createLogger({ destination });
    logger.info('held');
    destination.flushSync();
    assert.equal(writes.length, 1);
    logger.info('held too');
    logger.flush();
    assert.equal(writes.length, 2);
    destination.flushSync();
    assert.equal(writes.length, 2, 'nothing held, nothing written');
  });

  it('writes a warn, error or fatal line before the call returns, after the lines held before it', () => {
    const { writes, out } = recorder();
    const logger = createLogger({ level: 'debug', destination: batchLines(out) });
    logger.info('one');
    logger.debug('two');
    logger.warn('three');
    assert.equal(writes.length, 1, 'written before logger.warn() returned');
    logger.info('four');
    logger.child({ c: 1 }).error('five');
    logger.info('six');
    logger.fatal('seven');
    logger.info('eight');
    assert.deepEqual(
      writes.map((w) =>
        w
          .trimEnd()
          .split('\n')
          .map((l) => (JSON.parse(l) as { msg: string }).msg),
      ),
      [
        ['one', 'two', 'three'],
        ['four', 'five'],
        ['six', 'seven'],
      ],
    );
  });

  it('does not hold more than a bounded amount within one turn', () => {
    const { writes, out } = recorder();
    const logger = createLogger({ destination: batchLines(out) });
    for (let i = 0; i < 2000; i++) logger.info({ i, pad: 'x'.repeat(100) }, 'busy');
    assert.ok(writes.length >= 2, `written ${writes.length} times within the turn`);
    assert.ok(writes.every((w) => w.endsWith('\n')));
  });

  it('has written a warn line and the lines before it when the process is killed outright', () => {
    const script = [
      "const { createLogger } = await import('./issuer/logger.ts');",
      'const logger = createLogger();',
      "logger.info({ i: 0 }, 'line');",
      "logger.warn({ i: 1 }, 'line');",
      "process.kill(process.pid, 'SIGKILL');",
    ].join('\n');
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: new URL('../..', import.meta.url),
      encoding: 'utf8',
    });
    assert.equal(r.signal, 'SIGKILL');
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('{"level"'));
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as { i: number }).i),
      [0, 1],
    );
  });

  for (const end of ['process.exit(3)', "throw new Error('boom')"]) {
    it(`loses no line when the process ends with ${end}`, () => {
      const script = [
        "const { createLogger } = await import('./issuer/logger.ts');",
        'const logger = createLogger();',
        "for (let i = 0; i < 5; i++) logger.info({ i }, 'line');",
        end,
      ].join('\n');
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: new URL('../..', import.meta.url),
        encoding: 'utf8',
      });
      assert.notEqual(r.status, 0);
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('{"level"'));
      assert.deepEqual(
        lines.map((l) => (JSON.parse(l) as { i: number }).i),
        [0, 1, 2, 3, 4],
      );
    });
  }
});
