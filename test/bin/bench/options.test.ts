import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseOptions } from '../../../bin/bench/index.js';

describe('bench options', () => {
  it('runs every scenario, the stage pass and three fleet sizes by default', () => {
    const o = parseOptions([]);
    assert.ok(o !== undefined);
    assert.deepEqual(o.scenarios, ['cold', 'renew', 'storm', 'fleet']);
    assert.equal(o.stages, true);
    assert.deepEqual(o.fleetSizes, [10_000, 50_000, 100_000]);
    assert.equal(o.fleet, 50_000);
  });

  it('adds the renewed fleet size to the sizes, in order, once', () => {
    const o = parseOptions(['--fleet-sizes', '4000,2000,4000', '--fleet', '3000']);
    assert.deepEqual(o?.fleetSizes, [2000, 3000, 4000]);
    assert.deepEqual(parseOptions(['--fleet', '0', '--fleet-sizes', '5'])?.fleetSizes, [5]);
  });

  it('refuses a --stages other than on or off and a size that is not a positive integer', () => {
    assert.throws(() => parseOptions(['--stages', 'maybe']), /--stages/);
    assert.throws(() => parseOptions(['--fleet-sizes', '10000,x']), /--fleet-sizes/);
    assert.equal(parseOptions(['--stages', 'off'])?.stages, false);
  });
});
