// The certify agent's files: its key (OUT/tls.key), made once and reused only when nobody else could
// have written or read it, and the directory it lives in.
import { constants as fsConstants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Logger } from 'pino';
import { CredentialError } from '../../ca/index.js';
import { createFileKeyStore, type Signer } from '../../ca/keys/index.js';

/** The workload key: OUT/tls.key when there is one this user alone owns and can read, else a new one. */
export async function loadOrCreateKey(path: string): Promise<Signer> {
  const pem = await readOwnKeyFile(path);
  const keys = createFileKeyStore();
  if (pem !== undefined) return keys.fromPem(pem, path);
  // 0600, 'wx' and link: a file that appeared meanwhile is never replaced (ERR_KEY_EXISTS)
  return keys.create(path, 'p256');
}

/**
 * The text of an existing key file, or undefined when there is none. Refused with ERR_KEY_PERMISSIONS:
 * a symbolic link, anything but a regular file, a file owned by another user (who could have planted
 * it) and one readable or writable by group or others (mode & 077). Checked on the open descriptor,
 * so the file read is the file checked.
 */
export async function readOwnKeyFile(path: string): Promise<string | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP')
      throw new CredentialError(
        'ERR_KEY_PERMISSIONS',
        `${path} is a symbolic link; a workload key must be a file of its own (remove it, and a new key is made)`,
      );
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new CredentialError('ERR_KEY_PERMISSIONS', `${path} is not a regular file`);
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid)
      throw new CredentialError(
        'ERR_KEY_PERMISSIONS',
        `${path} belongs to uid ${st.uid}, not to this user (uid ${uid}): someone else may have put it there. Remove it (a new key is made) or give it to this user`,
      );
    if ((st.mode & 0o077) !== 0)
      throw new CredentialError(
        'ERR_KEY_PERMISSIONS',
        `${path} has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}; a private key must be readable by its owner only (chmod 600 it, or remove it and a new key is made)`,
      );
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}

/** A warning when OUT is writable by others: they could replace tls.crt or ca.crt under the workload. */
export async function warnIfShared(dir: string, logger: Logger): Promise<void> {
  const st = await stat(dir);
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0)
    logger.warn(
      { event: 'out_dir_shared', dir, mode: (st.mode & 0o777).toString(8).padStart(4, '0') },
      'the output directory is writable by other users, who could replace tls.crt or ca.crt; use a directory of its own (lanyard certify creates a missing one 0700)',
    );
}
