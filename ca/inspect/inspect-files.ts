import { readFile } from 'node:fs/promises';
import { FileError } from '../errors.js';
import { inspectBytes, type InspectReport } from './inspect.js';

/** What one file holds: a report per certificate or CSR in it. */
export interface FileInspection {
  readonly file: string;
  readonly items: readonly InspectReport[];
}

/** `inspect`: reads each file in turn (PEM or DER) and reports what it holds at `now`. */
export async function inspectFiles(files: readonly string[], now: Date): Promise<FileInspection[]> {
  const results: FileInspection[] = [];
  for (const file of files) {
    const data = await readFile(file).catch((err: unknown) => {
      throw new FileError('ERR_FILE_NOT_FOUND', `cannot read ${file}: ${(err as Error).message}`);
    });
    results.push({ file, items: inspectBytes(data, now) });
  }
  return results;
}
