import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

// The entry files' context (bin/lanyard.ts, bin/cli/serve-worker.ts): the CLI's own lines to stderr
// (reportError's `lanyard: … (ERR_…)`) go to fd 2 at once, while the loggers may hold info lines for
// the end of the event-loop turn (issuer/logger.ts).
describe('the CLI context of a real process', () => {
  it('writes an error line after the log lines logged before it in the same turn', () => {
    const script = [
      "const { createLogger } = await import('./issuer/index.ts');",
      "const { stdioContext } = await import('./bin/cli/kit.ts');",
      'const ctx = stdioContext();',
      'const logger = createLogger();',
      "logger.warn('warned');",
      "logger.info('informed');",
      "ctx.err('lanyard: the start failed (ERR_TEST)');",
      "logger.info('after');",
    ].join('\n');
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: new URL('../../..', import.meta.url),
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stderr
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => (l.startsWith('{') ? (JSON.parse(l) as { msg: string }).msg : l));
    assert.deepEqual(lines, ['warned', 'informed', 'lanyard: the start failed (ERR_TEST)', 'after']);
  });
});
