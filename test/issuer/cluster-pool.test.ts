// `--workers N`: the node flags each worker is forked with (issue 15, memory of a storm).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { workerExecArgv } from '../../issuer/cluster-pool.js';

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
