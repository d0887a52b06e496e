import { mkdirSync, renameSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

let generation = 0;

/**
 * Writes files into `dir` the way the kubelet projects a Secret or ConfigMap volume: a timestamped
 * directory, a `..data` symlink to it swapped atomically by rename, and per-file symlinks
 * `NAME → ..data/NAME`. Calling it again swaps the whole set at once.
 */
export function writeAtomicVolume(dir: string, files: Record<string, string | Uint8Array>): void {
  mkdirSync(dir, { recursive: true });
  const gen = `..2026_11_25_00_00_00.${process.pid}_${++generation}`;
  mkdirSync(join(dir, gen));
  for (const [name, data] of Object.entries(files))
    writeFileSync(join(dir, gen, name), data, { mode: 0o600 });
  symlinkSync(gen, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const name of Object.keys(files)) {
    if (!existsSync(join(dir, name))) symlinkSync(join('..data', name), join(dir, name));
  }
}
