import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCertificatesPem, type CertificateInfo } from '../certificate.js';
import { createIssuerCredential } from '../credential.js';
import { CredentialError, FileError } from '../errors.js';
import { readPemFile } from '../pem-file.js';
import { writeFileAtomic } from '../fs.js';
import { ANCHOR_FILES, ISSUER_FILES, loadAnchorDir, readAnchorCertificate } from './issuer-dir.js';
import type { KeyAlgorithm } from '../keys/index.js';
import type { KeyStore, Signer } from '../keys/index.js';
import { createFileKeyStore, type FileKeyStore } from '../keys/index.js';
import { encodePem } from '../pem.js';
import {
  createAnchorCertificate,
  createCrossCertificate,
  createIssuerCertificate,
  type AnchorProfile,
  type IssuerProfile,
} from '../profiles.js';

/** How the files of a new anchor or issuer are written. */
export interface CaFilesOptions {
  /** replace an existing key and certificate; without it either existing is ERR_KEY_EXISTS and nothing is written */
  readonly force?: boolean;
  /** mode of the directory when it is created */
  readonly dirMode?: number;
  /** where the new key is made and written (the file key store by default) */
  readonly keys?: FileKeyStore;
}

/** A key and its certificate, as written. */
export interface CreatedCa {
  readonly signer: Signer;
  readonly cert: CertificateInfo;
  readonly certPem: string;
  readonly certPath: string;
  readonly keyPath: string;
}

/**
 * A new self-signed anchor in `dir` (DIR/anchor.key 0600, DIR/anchor.crt). The key stays in memory
 * until the certificate is built: a bad option leaves the directory as it was.
 */
export async function createAnchorFiles(
  dir: string,
  o: Omit<AnchorProfile, 'signer'> & CaFilesOptions & { readonly keyType?: KeyAlgorithm },
): Promise<CreatedCa> {
  const certPath = join(dir, ANCHOR_FILES.cert);
  const keyPath = join(dir, ANCHOR_FILES.key);
  await refuseExisting([certPath, keyPath], o.force === true);
  const key = await stageKey(keyPath, o);
  const cert = await createAnchorCertificate({ ...o, signer: key.signer });
  const certPem = encodePem('CERTIFICATE', cert.der);
  await mkdir(dir, { recursive: true, ...(o.dirMode !== undefined ? { mode: o.dirMode } : {}) });
  await key.commit([{ path: certPath, data: certPem, mode: 0o644, overwrite: o.force === true }]);
  return { signer: key.signer, cert, certPem, certPath, keyPath };
}

/**
 * A new issuer signed by `anchor` in `dir`, in the kubernetes.io/tls layout: tls.key (0600), tls.crt,
 * and ca.crt (a copy of the anchor, always replaced). Names, constraints and validity are checked
 * while the certificate is built, before any file is touched.
 */
export async function createIssuerFiles(
  dir: string,
  anchor: { readonly signer: Signer; readonly cert: CertificateInfo; readonly certPem: string },
  o: Omit<IssuerProfile, 'anchor' | 'anchorSigner' | 'issuerPublicKeyDer'> &
    CaFilesOptions & {
      /** an EC type (parseKeyAlgorithm(…, EC_ALGORITHMS)) */ readonly keyType?: KeyAlgorithm;
      /** a file of cross certificates (anchor cross-sign) served after the issuer certificate in tls.crt */
      readonly crossSignedPath?: string;
    },
): Promise<CreatedCa & { readonly caPath: string }> {
  const names = ISSUER_FILES['kubernetes.io/tls'];
  const certPath = join(dir, names.cert);
  const keyPath = join(dir, names.key);
  const caPath = join(dir, names.ca);
  await refuseExisting([certPath, keyPath], o.force === true);
  const crossPem = o.crossSignedPath !== undefined ? await readCrossCertificates(o.crossSignedPath) : '';
  const key = await stageKey(keyPath, o);
  const cert = await createIssuerCertificate({
    ...o,
    anchor: anchor.cert,
    anchorSigner: anchor.signer,
    issuerPublicKeyDer: key.signer.publicKeyDer,
  });
  const certPem = encodePem('CERTIFICATE', cert.der) + crossPem;
  // the served chain [issuer, cross…] is checked as serve will load it: each cross certificate is the
  // anchor's subject and key (ERR_CROSS_CERT_MISMATCH) and outlives the issuer (ERR_CROSS_CERT_EXPIRES_FIRST).
  // The bundle here is the new anchor alone: the old anchor's signature (ERR_CROSS_CERT_UNTRUSTED) and
  // pathLen (ERR_CROSS_PATHLEN) are checked where the bundle holds it (serve, at start and reload).
  if (crossPem !== '')
    createIssuerCredential({
      certificatePem: certPem,
      signer: key.signer,
      anchorsPem: anchor.certPem,
      now: o.now,
    });
  await mkdir(dir, { recursive: true, ...(o.dirMode !== undefined ? { mode: o.dirMode } : {}) });
  await key.commit([
    { path: certPath, data: certPem, mode: 0o644, overwrite: o.force === true },
    { path: caPath, data: anchor.certPem, mode: 0o644, overwrite: true },
  ]);
  return { signer: key.signer, cert, certPem, certPath, keyPath, caPath };
}

/** `issuer create`: createIssuerFiles under the anchor read from `anchorDir` (loadAnchorDir). */
export async function createIssuerFilesFromAnchorDir(
  anchorDir: string,
  dir: string,
  o: Parameters<typeof createIssuerFiles>[2],
): Promise<CreatedCa & { readonly caPath: string }> {
  return createIssuerFiles(dir, await loadAnchorDir(anchorDir), o);
}

/** `anchor cross-sign`: which anchor signs, which anchor is cross-signed, where the certificate goes. */
export interface CrossCertificateRequest {
  /** the signing anchor's directory (OLD: anchor.crt and anchor.key, loadAnchorDir) */
  readonly anchorDir: string;
  /** the cross-signed anchor's directory (NEW): only its anchor.crt is read */
  readonly subjectDir: string;
  /** where the cross certificate is written (PEM, 0644) */
  readonly outPath: string;
  readonly now: Date;
  /** by default until the earlier of both anchors' notAfter; capped at OLD's */
  readonly lifetimeMs?: number;
  /** replace an existing `outPath`; without it that is ERR_KEY_EXISTS and nothing is written */
  readonly force?: boolean;
  /** where OLD's key is loaded from (the file key store by default) */
  readonly keys?: KeyStore;
}

/**
 * A cross certificate (createCrossCertificate): NEW's subject and key, issued by OLD, written to
 * `outPath` as one PEM CERTIFICATE (temp file, fsync, rename). Every check runs before the file is
 * touched.
 */
export async function createCrossCertificateFile(
  r: CrossCertificateRequest,
): Promise<{ readonly cert: CertificateInfo; readonly certPem: string; readonly path: string }> {
  await refuseExisting([r.outPath], r.force === true);
  const anchor = await loadAnchorDir(r.anchorDir, r.keys);
  const { cert: subject } = await readAnchorCertificate(r.subjectDir);
  const cert = await createCrossCertificate({
    anchor: anchor.cert,
    anchorSigner: anchor.signer,
    subject,
    now: r.now,
    ...(r.lifetimeMs !== undefined ? { lifetimeMs: r.lifetimeMs } : {}),
  });
  const certPem = encodePem('CERTIFICATE', cert.der);
  await writeFileAtomic(r.outPath, certPem, { mode: 0o644, overwrite: r.force === true });
  return { cert, certPem, path: r.outPath };
}

/** The certificates of a --cross-signed file, re-encoded (CERTIFICATE blocks only, at least one). */
async function readCrossCertificates(path: string): Promise<string> {
  const certs = parseCertificatesPem(await readPemFile(path), path);
  if (certs.length === 0) throw new FileError('ERR_FILE_INVALID', `${path} holds no certificate`);
  return certs.map((c) => encodePem('CERTIFICATE', c.der)).join('');
}

/** A new key in memory, written (0600) only with its certificate, as one change (writeFilesAtomic). */
function stageKey(
  keyPath: string,
  o: CaFilesOptions & { readonly keyType?: KeyAlgorithm },
): ReturnType<FileKeyStore['stage']> {
  return (o.keys ?? createFileKeyStore()).stage(keyPath, o.keyType ?? 'p256', { force: o.force === true });
}

/** ERR_KEY_EXISTS before any work when one of `paths` exists and `force` is not set. */
async function refuseExisting(paths: readonly string[], force: boolean): Promise<void> {
  if (force) return;
  for (const p of paths) {
    const found = await stat(p).then(
      () => true,
      () => false,
    );
    if (found) throw new CredentialError('ERR_KEY_EXISTS', `${p} already exists`);
  }
}
