import { open } from 'node:fs/promises';
import { FileError } from './errors.js';

/** Largest certificate, key or bundle file read, in bytes. */
export const MAX_PEM_FILE_BYTES = 1024 * 1024;

/** Reads a PEM file of bounded size; missing or oversized files get ERR_FILE_NOT_FOUND / ERR_FILE_INVALID. */
export async function readPemFile(path: string): Promise<string> {
  return readTextFile(path, MAX_PEM_FILE_BYTES);
}

/**
 * Reads a small text file (a PEM file, a token, a kubeconfig) reading at most `maxBytes` + 1 bytes, so a
 * file that grows while it is read, or a device, never costs more: ERR_FILE_NOT_FOUND when it cannot
 * be opened or read, ERR_FILE_INVALID when it holds more than `maxBytes`.
 */
export async function readTextFile(path: string, maxBytes: number = MAX_PEM_FILE_BYTES): Promise<string> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw new FileError(
      'ERR_FILE_NOT_FOUND',
      `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      { cause: err },
    );
  }
  try {
    const buf = Buffer.allocUnsafe(maxBytes + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, n, buf.length - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > maxBytes) throw new FileError('ERR_FILE_INVALID', `${path} is larger than ${maxBytes} bytes`);
    }
    return buf.subarray(0, n).toString('utf8');
  } catch (err) {
    if (err instanceof FileError) throw err;
    throw new FileError(
      'ERR_FILE_NOT_FOUND',
      `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      { cause: err },
    );
  } finally {
    await handle.close();
  }
}
