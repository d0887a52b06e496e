import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { defer } from './cleanup.js';

/** A temporary directory removed by the returned cleanup (for suite-level `before`/`after` hooks). */
export function tempDir(prefix = 'lanyard-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    cleanup: () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A temporary directory for the test `t`, removed when it ends (see `defer`). */
export function testDir(t: TestContext, prefix = 'lanyard-test-'): string {
  const { dir, cleanup } = tempDir(prefix);
  defer(t, cleanup);
  return dir;
}
