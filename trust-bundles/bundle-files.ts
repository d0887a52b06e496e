import { readFile } from 'node:fs/promises';
import { FileError, parseCertificatesPem, type CertificateInfo } from '../ca/index.js';
import { readPemFile, writeFileAtomic } from '../ca/store/index.js';
import { createTrustBundle, parseTrustBundle, type TrustBundle } from './bundle.js';

/** A bundle file before and after a change (`before` undefined: the file is new). */
export interface BundleChange {
  readonly file: string;
  readonly before: TrustBundle | undefined;
  readonly after: TrustBundle;
}

/** A bundle file, read strictly (parseTrustBundle): CA certificates only, no other block. */
export async function readBundleFile(file: string): Promise<TrustBundle> {
  return parseTrustBundle(await readPemFile(file), file);
}

/** The anchors of these PEM files (anchor.crt, ca.crt, another bundle), each read as a bundle. */
export async function readAnchorFiles(files: readonly string[]): Promise<CertificateInfo[]> {
  const out: CertificateInfo[] = [];
  for (const f of files) out.push(...(await readBundleFile(f)).anchors.map((a) => a.certificate));
  return out;
}

/** `bundle create`: a new bundle file from the anchors of `anchorFiles`; an existing file only with `force`. */
export async function createBundleFile(
  file: string,
  anchorFiles: readonly string[],
  options: { force: boolean },
): Promise<BundleChange> {
  const after = createTrustBundle(await readAnchorFiles(anchorFiles));
  await writeBundleFile(file, after, options.force);
  return { file, before: undefined, after };
}

/** `bundle add`: the anchors of `anchorFiles` added to the bundle in `file` (present ones kept once). */
export async function addToBundleFile(file: string, anchorFiles: readonly string[]): Promise<BundleChange> {
  const before = await readBundleFile(file);
  const after = before.add(await readAnchorFiles(anchorFiles));
  await writeBundleFile(file, after, true);
  return { file, before, after };
}

/**
 * `bundle remove`: one anchor out of the bundle in `file`, named by fingerprint (or a unique prefix) or
 * by a file holding its certificate. Refused (nothing written) when it would leave the bundle empty.
 */
export async function removeFromBundleFile(file: string, which: string): Promise<BundleChange> {
  const before = await readBundleFile(file);
  const after = before.remove(await anchorFingerprint(which));
  if (after.anchors.length === 0) {
    throw new FileError('ERR_FILE_INVALID', `removing ${which} would leave ${file} empty; nothing changed`);
  }
  await writeBundleFile(file, after, true);
  return { file, before, after };
}

/** A fingerprint as given, or the fingerprint of the one certificate in the file `which` names. */
async function anchorFingerprint(which: string): Promise<string> {
  const asFile = await readFile(which, 'utf8').then(
    (t) => t,
    () => undefined,
  );
  if (asFile === undefined) return which;
  const certs = parseCertificatesPem(asFile, which);
  if (certs.length !== 1)
    throw new FileError('ERR_FILE_INVALID', `${which} must hold exactly one certificate to name an anchor`);
  return createTrustBundle(certs).anchors[0]?.fingerprint ?? which;
}

async function writeBundleFile(file: string, b: TrustBundle, overwrite: boolean): Promise<void> {
  try {
    await writeFileAtomic(file, b.toPem(), { overwrite });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_KEY_EXISTS') {
      throw new FileError(
        'ERR_FILE_INVALID',
        `${file} already exists; use "lanyard bundle add" or pass --force`,
      );
    }
    throw err;
  }
}
