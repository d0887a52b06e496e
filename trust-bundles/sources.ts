import { stat } from 'node:fs/promises';
import { UsageError, parseCertificatesPem, type CertificateInfo, FileError } from '../ca/index.js';
import { readIssuerDir } from '../ca/store/index.js';
import { parseTrustBundle, type TrustBundle } from './bundle.js';
import type { UntrustedStatus } from './status-contract.js';
import { FetchError, getBounded } from './fetch.js';

/** What each issuer reports of its issuance: per anchor, the latest notAfter of the leaves it signed. */
export interface AnchorIssuanceRecord {
  readonly anchorFingerprint: string;
  readonly latestNotAfter: string;
}

/** One cluster as seen by `check` and `rotate`: bundle, issuer chain, and (online only) issuance record. */
export interface ClusterSnapshot {
  readonly name: string;
  /** the ADMIN_URL or ISSUER_DIR it was read from */
  readonly source: string;
  readonly kind: 'admin' | 'dir';
  readonly bundle: TrustBundle;
  readonly issuerChain: readonly CertificateInfo[];
  /** undefined for offline (directory) sources, which keep no record */
  readonly issuedByAnchor: readonly AnchorIssuanceRecord[] | undefined;
  /**
   * online only: when the issuer loaded its current credential and its leaf policy. Every leaf it signed
   * under an earlier anchor was issued before that moment, so it expires by loadedAt + lifetime + skew.
   */
  readonly issuance:
    | { readonly credentialLoadedAt: Date; readonly leafLifetimeMs: number; readonly clockSkewMs: number }
    | undefined;
  /**
   * admin sources: the chain the identity service's gRPC listener serves (`serve --tls-cert`), the
   * serving certificate first; null: plaintext. undefined: unknown (a directory source, or a /v1/status
   * without `servingTls.chainPem`).
   */
  readonly servingChain?: readonly CertificateInfo[] | null;
  /** for directory sources: the bundle file that `lanyard bundle add/remove` edits */
  readonly bundlePath?: string;
  /**
   * for directory sources: when the issuer certificate or key file last changed (the latest of their
   * mtimes and ctimes; a copy that keeps an old mtime still gets a new ctime)
   */
  readonly issuerFilesChangedAt?: Date;
}

export interface ClusterTarget {
  readonly name: string;
  readonly target: string;
}

/** Parses repeated `--cluster NAME=ADMIN_URL|ISSUER_DIR` values. */
export function parseClusterTargets(values: readonly string[] | undefined): ClusterTarget[] {
  if (values === undefined || values.length === 0)
    throw new UsageError('give at least one --cluster NAME=ADMIN_URL or NAME=ISSUER_DIR');
  const seen = new Set<string>();
  return values.map((v) => {
    const i = v.indexOf('=');
    const name = i > 0 ? v.slice(0, i) : '';
    const target = i > 0 ? v.slice(i + 1) : '';
    if (!/^[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$/.test(name) || target === '') {
      throw new UsageError(`--cluster "${v}" must be NAME=ADMIN_URL (http://host:9990) or NAME=ISSUER_DIR`);
    }
    if (seen.has(name)) throw new UsageError(`cluster "${name}" is given twice`);
    seen.add(name);
    return { name, target };
  });
}

/** ADMIN_URL sources: the deadline of each fetch (/v1/bundle, /v1/status), ms */
export const ADMIN_FETCH_TIMEOUT_MS = 5000;

export async function loadCluster(
  t: ClusterTarget,
  options: { timeoutMs?: number } = {},
): Promise<ClusterSnapshot> {
  if (/^https?:\/\//i.test(t.target)) return loadFromAdmin(t, options.timeoutMs ?? ADMIN_FETCH_TIMEOUT_MS);
  const files = await readIssuerDir(t.target);
  const times = await Promise.all(
    [files.certificatePath, files.keyPath].map(async (p) => {
      const st = await stat(p);
      return Math.max(st.mtimeMs, st.ctimeMs);
    }),
  );
  const bundle = parseTrustBundle(files.anchorsPem, files.anchorsPath);
  const anchorFps = new Set(bundle.anchors.map((a) => a.certificate.der.toString('base64')));
  const issuerChain = parseCertificatesPem(files.certificatePem, files.certificatePath).filter(
    (c) => !anchorFps.has(c.der.toString('base64')),
  );
  return {
    name: t.name,
    source: t.target,
    kind: 'dir',
    bundle,
    issuerChain,
    issuedByAnchor: undefined,
    issuance: undefined,
    bundlePath: files.anchorsPath,
    issuerFilesChangedAt: new Date(Math.max(...times)),
  };
}

async function loadFromAdmin(t: ClusterTarget, timeoutMs: number): Promise<ClusterSnapshot> {
  const base = t.target.replace(/\/+$/, '');
  const get = async (path: string): Promise<string> => {
    let url: URL;
    try {
      url = new URL(`${base}${path}`);
    } catch {
      throw new UsageError(`--cluster ${t.name}=${t.target}: not a URL`);
    }
    try {
      // bounded: a deadline for the whole exchange, a size limit, no redirect to another origin
      return await getBounded(url, { timeoutMs });
    } catch (err) {
      if (err instanceof FetchError)
        throw new FetchError(`cluster ${t.name}: ${err.message}`, { reason: err.reason, cause: err });
      throw err;
    }
  };
  const [bundleText, statusText] = await Promise.all([get('/v1/bundle'), get('/v1/status')]);
  let status: UntrustedStatus;
  try {
    status = JSON.parse(statusText) as UntrustedStatus;
  } catch {
    throw new FileError('ERR_FILE_INVALID', `cluster ${t.name}: /v1/status is not JSON`);
  }
  return adminSnapshot(t, bundleText, status);
}

/** The snapshot of a cluster from its admin answers: /v1/bundle (PEM) and /v1/status (parsed JSON). */
export function adminSnapshot(
  t: ClusterTarget,
  bundleText: string,
  status: UntrustedStatus,
): ClusterSnapshot {
  const bundle = parseTrustBundle(bundleText, `${t.name} /v1/bundle`);
  const chainPem = status.issuer?.chainPem;
  const issuerChain =
    typeof chainPem === 'string' && chainPem !== '' ? parseCertificatesPem(chainPem, `${t.name} issuer`) : [];
  const issued = Array.isArray(status.issuedByAnchor)
    ? (status.issuedByAnchor as unknown[]).flatMap((r) => {
        const rec = r as { anchorFingerprint?: unknown; latestNotAfter?: unknown };
        return typeof rec.anchorFingerprint === 'string' && typeof rec.latestNotAfter === 'string'
          ? [{ anchorFingerprint: rec.anchorFingerprint, latestNotAfter: rec.latestNotAfter }]
          : [];
      })
    : [];
  const loadedAt =
    typeof status.credentialLoadedAt === 'string'
      ? new Date(Date.parse(status.credentialLoadedAt))
      : undefined;
  const issuance =
    loadedAt !== undefined &&
    !Number.isNaN(loadedAt.getTime()) &&
    typeof status.leafLifetimeMs === 'number' &&
    typeof status.clockSkewMs === 'number'
      ? {
          credentialLoadedAt: loadedAt,
          leafLifetimeMs: status.leafLifetimeMs,
          clockSkewMs: status.clockSkewMs,
        }
      : undefined;
  const servingChain = servingChainOf(status.servingTls, t.name);
  return {
    name: t.name,
    source: t.target,
    kind: 'admin',
    bundle,
    issuerChain,
    issuedByAnchor: issued,
    issuance,
    ...(servingChain !== undefined ? { servingChain } : {}),
  };
}

/** `servingTls` of a /v1/status, read defensively: null = plaintext, undefined = not said. */
function servingChainOf(
  serving: UntrustedStatus['servingTls'],
  cluster: string,
): readonly CertificateInfo[] | null | undefined {
  if (serving === null) return null;
  if (typeof serving !== 'object') return undefined;
  const chainPem = serving.chainPem;
  if (typeof chainPem !== 'string' || chainPem === '') return undefined;
  return parseCertificatesPem(chainPem, `${cluster} serving chain`);
}
