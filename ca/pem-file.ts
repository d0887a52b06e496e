import { readFile, stat } from 'node:fs/promises';
import { FileError } from './errors.js';

/** Largest certificate, key or bundle file read, in bytes. */
export const MAX_PEM_FILE_BYTES = 1024 * 1024;

/** Reads a PEM file of bounded size; missing or oversized files get ERR_FILE_NOT_FOUND / ERR_FILE_INVALID. */
export async function readPemFile(path: string): Promise<string> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    throw new FileError(
      'ERR_FILE_NOT_FOUND',
      `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      { cause: err },
    );
  }
  if (size > MAX_PEM_FILE_BYTES)
    throw new FileError('ERR_FILE_INVALID', `${path} is larger than ${MAX_PEM_FILE_BYTES} bytes`);
  return readFile(path, 'utf8');
}
