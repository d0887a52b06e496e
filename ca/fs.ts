import { randomBytes } from 'node:crypto';
import { open, link, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CredentialError, FileError } from './errors.js';

export interface AtomicWriteOptions {
  /** file mode of the new file; keys use 0o600 */
  readonly mode?: number;
  /** replace an existing file; without it an existing file makes the write fail with ERR_KEY_EXISTS */
  readonly overwrite?: boolean;
}

/** One file of a group written by writeFilesAtomic. */
export interface AtomicFile extends AtomicWriteOptions {
  readonly path: string;
  readonly data: string | Uint8Array;
}

/**
 * Writes `data` to `path` so that readers see either the old file or the whole new one:
 * temp file in the same directory, fsync, then rename (or link, which refuses to replace).
 * A missing directory is ERR_FILE_NOT_FOUND naming the directory.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  await writeFilesAtomic([{ path, data, ...options }]);
}

/**
 * Writes several files as one change, as far as a POSIX file system allows: every file is first
 * written to a temp file and fsynced; nothing is replaced unless all temp files were written; files
 * that must not exist are linked into place first (ERR_KEY_EXISTS if one appeared meanwhile, undoing
 * the others); then existing files are replaced by rename, keeping a hard-link backup of each so a
 * failure part-way puts the old files back. Each file on its own is always either old or new.
 */
export async function writeFilesAtomic(files: readonly AtomicFile[]): Promise<void> {
  const staged: { file: AtomicFile; tmp: string }[] = [];
  try {
    for (const file of files) staged.push({ file, tmp: await writeTemp(file) });
  } catch (err) {
    await Promise.all(staged.map((s) => unlink(s.tmp).catch(() => undefined)));
    throw err;
  }
  /** undo steps, newest first */
  const undo: (() => Promise<void>)[] = [];
  const backups: string[] = [];
  try {
    for (const { file, tmp } of staged) {
      if (file.overwrite === true) continue;
      try {
        await link(tmp, file.path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new CredentialError('ERR_KEY_EXISTS', `${file.path} already exists`);
        }
        throw err;
      }
      undo.unshift(() => unlink(file.path));
    }
    for (const { file, tmp } of staged) {
      if (file.overwrite !== true) continue;
      const backup = tempName(file.path, 'bak');
      // 'none': nothing to restore; 'kept': restore from the backup; 'unknown' (no hard links): leave as is
      const old = await link(file.path, backup).then(
        () => 'kept' as const,
        (e: unknown) =>
          (e as NodeJS.ErrnoException).code === 'ENOENT' ? ('none' as const) : ('unknown' as const),
      );
      if (old === 'kept') backups.push(backup);
      await rename(tmp, file.path);
      if (old === 'kept') undo.unshift(() => rename(backup, file.path));
      if (old === 'none') undo.unshift(() => unlink(file.path));
    }
  } catch (err) {
    for (const step of undo) await step().catch(() => undefined);
    await Promise.all([...staged.map((s) => s.tmp), ...backups].map((p) => unlink(p).catch(() => undefined)));
    throw err;
  }
  await Promise.all(
    [...staged.filter((s) => s.file.overwrite !== true).map((s) => s.tmp), ...backups].map((p) =>
      unlink(p).catch(() => undefined),
    ),
  );
  for (const dir of new Set(files.map((f) => dirname(f.path)))) await syncDir(dir);
}

function tempName(path: string, suffix: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.${suffix}`);
}

async function writeTemp(file: AtomicFile): Promise<string> {
  const tmp = tempName(file.path, 'tmp');
  const mode = file.mode ?? 0o644;
  let fh;
  try {
    fh = await open(tmp, 'wx', mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new FileError(
        'ERR_FILE_NOT_FOUND',
        `cannot write ${file.path}: directory ${dirname(file.path)} does not exist`,
        { cause: err },
      );
    }
    throw err;
  }
  try {
    await fh.writeFile(file.data);
    await fh.chmod(mode);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  return tmp;
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
