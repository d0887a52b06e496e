// `--workers N`: the node flags each worker is forked with (issue 15, memory of a storm), and what the
// primary does with a worker's IPC errors.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { Logger } from 'pino';
import { watchIpcErrors, workerExecArgv } from '../../issuer/cluster-pool.js';

describe('workerExecArgv', () => {
  it("keeps the primary's node flags and adds a 4 MiB semi-space", () => {
    assert.deepEqual(workerExecArgv(['--import', 'tsx'], undefined), [
      '--import',
      'tsx',
      '--max-semi-space-size=4',
    ]);
  });

  it('leaves a semi-space size the operator gave, on the command line or in NODE_OPTIONS, alone', () => {
    assert.deepEqual(workerExecArgv(['--max-semi-space-size=16'], undefined), ['--max-semi-space-size=16']);
    assert.deepEqual(workerExecArgv(['--max_semi_space_size', '8'], ''), ['--max_semi_space_size', '8']);
    assert.deepEqual(workerExecArgv([], '--enable-source-maps --max-semi-space-size=32'), []);
  });

  it('is not fooled by a flag that only begins like it', () => {
    assert.deepEqual(workerExecArgv([], '--max-semi-space-size-x=1'), ['--max-semi-space-size=4']);
  });
});

describe('watchIpcErrors', () => {
  it("logs a worker's 'error' (a send to a worker killed outright: EPIPE) instead of crashing the primary", () => {
    const lines: unknown[] = [];
    const logger = { warn: (fields: unknown) => lines.push(fields) } as unknown as Logger;
    const w = Object.assign(new EventEmitter(), { id: 7 });
    watchIpcErrors(w, logger);
    assert.doesNotThrow(() => w.emit('error', new Error('write EPIPE')));
    assert.deepEqual(lines, [{ event: 'worker_ipc_error', worker: 7, err: 'write EPIPE' }]);
  });
});
