import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CredentialError } from './errors.js';

/** The files of an issuer directory, as read (not yet validated). */
export interface IssuerDirFiles {
  readonly layout: 'kubernetes.io/tls' | 'linkerd.io/tls';
  readonly certificatePath: string;
  readonly keyPath: string;
  readonly anchorsPath: string;
  readonly certificatePem: string;
  readonly keyPem: string;
  readonly anchorsPem: string;
}

export const ISSUER_FILES = {
  'kubernetes.io/tls': { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt' },
  'linkerd.io/tls': { cert: 'crt.pem', key: 'key.pem', ca: 'ca.crt' },
} as const;

/** Largest certificate, key or bundle file read, in bytes. */
export const MAX_PEM_FILE_BYTES = 1024 * 1024;

/**
 * Reads `tls.crt`/`tls.key`/`ca.crt` (the kubernetes.io/tls Secret layout, as cert-manager writes it)
 * or `crt.pem`/`key.pem` (linkerd.io/tls). `trustAnchorsPath` overrides `DIR/ca.crt`.
 */
export async function readIssuerDir(dir: string, trustAnchorsPath?: string): Promise<IssuerDirFiles> {
  const layout = (await exists(join(dir, 'tls.crt')))
    ? 'kubernetes.io/tls'
    : (await exists(join(dir, 'crt.pem')))
      ? 'linkerd.io/tls'
      : undefined;
  if (layout === undefined) {
    throw new CredentialError(
      'ERR_FILE_NOT_FOUND',
      `${dir} holds neither tls.crt/tls.key (kubernetes.io/tls) nor crt.pem/key.pem (linkerd.io/tls)`,
    );
  }
  const names = ISSUER_FILES[layout];
  const certificatePath = join(dir, names.cert);
  const keyPath = join(dir, names.key);
  const anchorsPath = trustAnchorsPath ?? join(dir, names.ca);
  const [certificatePem, keyPem, anchorsPem] = await Promise.all([
    readPemFile(certificatePath),
    readPemFile(keyPath),
    readPemFile(anchorsPath),
  ]);
  return { layout, certificatePath, keyPath, anchorsPath, certificatePem, keyPem, anchorsPem };
}

/** Reads a PEM file of bounded size; missing or oversized files get ERR_FILE_NOT_FOUND / ERR_FILE_INVALID. */
export async function readPemFile(path: string): Promise<string> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    throw new CredentialError(
      'ERR_FILE_NOT_FOUND',
      `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      { cause: err },
    );
  }
  if (size > MAX_PEM_FILE_BYTES)
    throw new CredentialError('ERR_FILE_INVALID', `${path} is larger than ${MAX_PEM_FILE_BYTES} bytes`);
  return readFile(path, 'utf8');
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
