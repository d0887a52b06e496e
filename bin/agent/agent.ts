import { mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  CredentialError,
  buildCsr,
  createChainVerifier,
  encodePem,
  parseCertificate,
  LanyardError,
  UsageError,
  type Clock,
  FileError,
} from '../../ca/index.js';
import { writeFileAtomic } from '../../ca/store/index.js';
import { loadIdentityService, type CertifyResponseMessage } from '../../issuer/grpc/index.js';
import { currentAnchors } from './anchors.js';
import { createCertifyCall, type CertifyCall } from './certify-call.js';
import { checkServerName, createIssuerChannel } from './channel.js';
import { loadOrCreateKey, warnIfShared } from './key.js';
import { runRenewals } from './renewal.js';

export { describeError, errorCode } from './error-report.js';
export { renewalDelayMs } from './renewal.js';

export interface CertifyClientOptions {
  /** HOST:PORT of the issuer's gRPC listener */
  readonly server: string;
  readonly identity: string;
  readonly tokenFile: string;
  readonly outDir: string;
  /** PEM trust anchors the returned chain must verify against; copied to OUT/ca.crt */
  readonly trustAnchorsFile: string;
  /**
   * The issuer's bundle endpoint (admin /v1/bundle). When set, it is fetched before each call: a
   * fetched set is used only when it is a strict bundle (CA certificates only, no PEM headers;
   * duplicates folded) that shares an anchor with trustAnchorsFile as it is now; it then adds its
   * other anchors to the file's. The file stays authoritative: a failed fetch uses the file alone.
   * Accepted sources: https (verified with tlsCaFile, else with the file's anchors), plain http to a
   * loopback address, and plain http elsewhere only with insecureBundleUrl.
   */
  readonly bundleUrl?: string;
  /** allow a plain-http bundleUrl to a non-loopback address (anyone on the path can add anchors) */
  readonly insecureBundleUrl?: boolean;
  /** CA for a TLS-serving issuer; plaintext when absent */
  readonly tlsCaFile?: string;
  /**
   * TLS only (needs tlsCaFile): the DNS name sent as SNI and required as a DNS SAN of the issuer's
   * certificate, as a proxy uses LINKERD2_PROXY_IDENTITY_SVC_NAME. Default: the host of `server`.
   */
  readonly serverName?: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** per-call deadline, ms */
  readonly timeoutMs?: number;
  /** how run() waits until the next call (default: a timer); tests pass one that records the delay */
  readonly wait?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export interface CertifiedFiles {
  readonly certPath: string;
  readonly keyPath: string;
  readonly caPath: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** the answer's valid_until: what renewals are scheduled from (never the leaf's notAfter) */
  readonly validUntil: Date;
}

export const OUT_FILES = { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt' } as const;

/** The answer's valid_until (a protobuf Timestamp; seconds arrive as a string). */
export function validUntilOf(res: CertifyResponseMessage): Date {
  const t = res.valid_until as CertifyResponseMessage['valid_until'] | null | undefined;
  const ms = t == null ? NaN : Number(t.seconds) * 1000 + Math.floor((t.nanos || 0) / 1e6);
  if (!Number.isFinite(ms) || ms <= 0)
    throw new InvalidResponseError('the issuer answered without a valid_until');
  return new Date(ms);
}

/** An answer from the issuer that the client cannot use as it is. */
export class InvalidResponseError extends LanyardError<'ERR_RESPONSE_INVALID'> {
  constructor(message: string) {
    super('ERR_RESPONSE_INVALID', message);
  }
}

/** What a proxy does at startup: key (made once), CSR, Certify, verify, write files. */
export interface CertifyClient {
  certifyOnce(): Promise<CertifiedFiles>;
  /** certifyOnce, then renew forever (with backoff on failure) until the signal aborts. */
  run(signal: AbortSignal): Promise<void>;
  close(): void;
}

/**
 * Checks that a bundle URL comes from a source that cannot be spoofed by a neighbour on the network:
 * https, or http to a loopback address, or http elsewhere with the explicit opt-in (a warning is logged).
 * Throws UsageError otherwise.
 */
export function checkBundleUrl(url: string, insecure: boolean, logger?: Logger): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`--bundle-url "${url}" is not a URL`);
  }
  if (u.protocol === 'https:') return u;
  if (u.protocol !== 'http:')
    throw new UsageError(`--bundle-url must be an https:// or http:// URL, not ${u.protocol}`);
  if (isLoopbackHost(u.hostname)) return u;
  if (!insecure) {
    throw new UsageError(
      `--bundle-url ${url} is plain http to a non-loopback address: anyone who can answer there could add a trust anchor. Use https (verified with --tls-ca or the current anchors), or pass --insecure-bundle-url to accept this`,
    );
  }
  logger?.warn(
    { event: 'insecure_bundle_url', url },
    'trust anchors are refreshed over plain http from a non-loopback address: whoever answers there can add anchors',
  );
  return u;
}

function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

export async function createCertifyClient(o: CertifyClientOptions): Promise<CertifyClient> {
  const serverName =
    o.serverName === undefined ? undefined : checkServerName(o.serverName, o.tlsCaFile !== undefined);
  const bundleUrl =
    o.bundleUrl === undefined
      ? undefined
      : checkBundleUrl(o.bundleUrl, o.insecureBundleUrl === true, o.logger);
  const service = loadIdentityService();
  const channel = createIssuerChannel({
    ...(o.tlsCaFile !== undefined ? { tlsCa: await readFile(o.tlsCaFile) } : {}),
    ...(serverName !== undefined ? { serverName } : {}),
  });
  // 0700: the key lives here, and nobody else may put one in its place (an existing directory is kept)
  await mkdir(o.outDir, { recursive: true, mode: 0o700 });
  await warnIfShared(o.outDir, o.logger);
  const paths = {
    cert: join(o.outDir, OUT_FILES.cert),
    key: join(o.outDir, OUT_FILES.key),
    ca: join(o.outDir, OUT_FILES.ca),
  };
  // before the gRPC client exists: a refused key (ERR_KEY_PERMISSIONS) leaves nothing to close
  const signer = await loadOrCreateKey(paths.key);
  const call = createCertifyCall({
    service,
    server: o.server,
    channel,
    clock: o.clock,
    timeoutMs: o.timeoutMs ?? 10_000,
  });
  const session: Session = { o, bundleUrl, paths, signer, call };
  const certifyOnce = (): Promise<CertifiedFiles> => certifyAndWrite(session);
  return {
    certifyOnce,
    run: (signal) => runRenewals(certifyOnce, o, signal),
    close: () => {
      call.close();
    },
  };
}

/** What one client keeps between calls. */
interface Session {
  readonly o: CertifyClientOptions;
  readonly bundleUrl: URL | undefined;
  readonly paths: { readonly cert: string; readonly key: string; readonly ca: string };
  readonly signer: Awaited<ReturnType<typeof loadOrCreateKey>>;
  readonly call: CertifyCall;
}

/** One certification: token, anchors, CSR, Certify, checks of the answer, files written. */
async function certifyAndWrite({ o, bundleUrl, paths, signer, call }: Session): Promise<CertifiedFiles> {
  const token = await readFile(o.tokenFile).catch((err: unknown) => {
    throw new FileError(
      'ERR_FILE_NOT_FOUND',
      `cannot read the token file ${o.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  });
  const tokenBytes = Buffer.from(token.toString('utf8').trim(), 'utf8');
  const { anchorsPem, anchors } = await currentAnchors(o, bundleUrl);
  const csr = buildCsr(signer, { dnsNames: [o.identity] });
  const res = await call.certify({
    identity: o.identity,
    token: tokenBytes,
    certificate_signing_request: csr,
  });
  const validUntil = validUntilOf(res);
  const leaf = parseCertificate(res.leaf_certificate);
  const intermediates = res.intermediate_certificates.map((d) => parseCertificate(d));
  if (!leaf.spki.equals(signer.publicKeyDer))
    throw new CredentialError('ERR_KEY_MISMATCH', 'the issuer returned a certificate for another key');
  if (!leaf.dnsNames.includes(o.identity))
    throw new CredentialError('ERR_CHAIN_UNTRUSTED', `the returned certificate is not for ${o.identity}`);
  createChainVerifier({ anchors, intermediates }).verify(leaf, o.clock.now());
  const chainPem = [leaf, ...intermediates].map((c) => encodePem('CERTIFICATE', c.der)).join('');
  // Key first (it never changes after the first write), then the chain, then the anchors.
  await writeFileAtomic(paths.cert, chainPem, { overwrite: true });
  await writeFileAtomic(paths.ca, anchorsPem, { overwrite: true });
  o.logger.info(
    {
      event: 'certified',
      identity: o.identity,
      serial: leaf.serialHex,
      notAfter: leaf.notAfter.toISOString(),
      validUntil: validUntil.toISOString(),
    },
    'certificate written',
  );
  return {
    certPath: paths.cert,
    keyPath: paths.key,
    caPath: paths.ca,
    serial: leaf.serialHex,
    notBefore: leaf.notBefore,
    notAfter: leaf.notAfter,
    validUntil,
  };
}
