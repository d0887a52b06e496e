import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCertificatesPem, type CertificateInfo } from '../certificate.js';
import { checkCriticalExtensions, signatureVerifies } from '../chain.js';
import { createIssuerCredential, type IssuerCredential } from '../credential.js';
import { CredentialError, FileError } from '../errors.js';
import type { Signer } from '../keys/index.js';
import { createFileKeyStore, type KeyStore } from '../keys/index.js';
import { readPemFile } from '../pem-file.js';

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

/** The files of an anchor directory (`lanyard anchor create`). */
export const ANCHOR_FILES = { cert: 'anchor.crt', key: 'anchor.key' } as const;

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
    throw new FileError(
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

/**
 * The one place an issuer credential is assembled from its material: the key (PKCS#8 or SEC1 PEM)
 * becomes the signer, and createIssuerCredential validates certificate, key and anchors together at
 * `now`. `keyPath` only names the key in errors.
 */
export function issuerCredentialFromPem(
  pem: Pick<IssuerDirFiles, 'certificatePem' | 'keyPem' | 'keyPath' | 'anchorsPem'>,
  now: Date,
): IssuerCredential {
  return createIssuerCredential({
    certificatePem: pem.certificatePem,
    signer: createFileKeyStore().fromPem(pem.keyPem, pem.keyPath),
    anchorsPem: pem.anchorsPem,
    now,
  });
}

/** The credential of the issuer directory `dir` (readIssuerDir, then issuerCredentialFromPem), valid at `now`. */
export async function loadIssuerCredential(
  dir: string,
  options: { readonly now: Date; readonly trustAnchorsPath?: string },
): Promise<IssuerCredential> {
  return issuerCredentialFromPem(await readIssuerDir(dir, options.trustAnchorsPath), options.now);
}

/** Reads DIR/anchor.crt, loads DIR/anchor.key from `keys` and checks they belong together. */
export async function loadAnchorDir(
  dir: string,
  keys: KeyStore = createFileKeyStore(),
): Promise<{ signer: Signer; cert: CertificateInfo; certPem: string }> {
  const { cert, certPem } = await readAnchorCertificate(dir);
  const signer = await keys.load(join(dir, ANCHOR_FILES.key));
  if (!cert.spki.equals(signer.publicKeyDer)) {
    throw new CredentialError(
      'ERR_KEY_MISMATCH',
      `${join(dir, ANCHOR_FILES.key)} does not match ${join(dir, ANCHOR_FILES.cert)}`,
    );
  }
  if (!cert.isCa)
    throw new CredentialError('ERR_NOT_CA', `${join(dir, ANCHOR_FILES.cert)} is not a CA certificate`);
  if (!isSelfSigned(cert)) {
    throw new CredentialError(
      'ERR_ANCHOR_NOT_SELF_SIGNED',
      `${join(dir, ANCHOR_FILES.cert)} is not self-signed, so it is not a trust anchor`,
    );
  }
  checkCriticalExtensions(cert);
  return { signer, cert, certPem };
}

/** DIR/anchor.crt alone (not the key): exactly one certificate, not yet checked. */
export async function readAnchorCertificate(
  dir: string,
): Promise<{ cert: CertificateInfo; certPem: string }> {
  const certPem = await readPemFile(join(dir, ANCHOR_FILES.cert));
  const certs = parseCertificatesPem(certPem, join(dir, ANCHOR_FILES.cert));
  if (certs.length !== 1)
    throw new FileError(
      'ERR_FILE_INVALID',
      `${join(dir, ANCHOR_FILES.cert)} must hold exactly one certificate`,
    );
  return { cert: certs[0] as CertificateInfo, certPem };
}

function isSelfSigned(c: CertificateInfo): boolean {
  return c.subjectDer.equals(c.issuerDer) && signatureVerifies(c, c);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
