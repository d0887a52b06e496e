import { randomBytes } from 'node:crypto';
import { open, link, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CredentialError } from './errors.js';

export interface AtomicWriteOptions {
  /** file mode of the new file; keys use 0o600 */
  readonly mode?: number;
  /** replace an existing file; without it an existing file makes the write fail with ERR_KEY_EXISTS */
  readonly overwrite?: boolean;
}

/**
 * Writes `data` to `path` so that readers see either the old file or the whole new one:
 * temp file in the same directory, fsync, then rename (or link, which refuses to replace).
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', options.mode ?? 0o644);
  try {
    await fh.writeFile(data);
    await fh.chmod(options.mode ?? 0o644);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  try {
    if (options.overwrite === true) {
      await rename(tmp, path);
    } else {
      try {
        await link(tmp, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new CredentialError('ERR_KEY_EXISTS', `${path} already exists; pass --force to replace it`);
        }
        throw err;
      }
      await unlink(tmp);
    }
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await syncDir(dir);
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // some file systems refuse fsync on a directory; the rename is still atomic
  } finally {
    await fh.close();
  }
}
