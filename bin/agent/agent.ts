import { mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  CredentialError,
  buildCsr,
  createChainVerifier,
  encodePem,
  parseCertificate,
  parseCertificatesPem,
  LanyardError,
  UsageError,
  type CertificateInfo,
  type Clock,
  FileError,
} from '../../ca/index.js';
import { readPemFile, writeFileAtomic } from '../../ca/store/index.js';
import {
  loadIdentityService,
  type CertifyRequestMessage,
  type CertifyResponseMessage,
} from '../../issuer/grpc/index.js';
import { parseTrustBundle } from '../../trust-bundles/index.js';
import { getBounded } from '../../trust-bundles/index.js';
import { checkServerName, createIssuerChannel } from './channel.js';
import { loadOrCreateKey, warnIfShared } from './key.js';

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

/**
 * Renew at 70 % of (valid_until − now), never sooner than 10 s nor later than 24 h: what a Linkerd
 * proxy does with the answer's valid_until (it never reads the leaf's notAfter for this).
 */
export function renewalDelayMs(now: Date, validUntil: Date): number {
  const remaining = validUntil.getTime() - now.getTime();
  return Math.min(Math.max(remaining * 0.7, 10_000), 86_400_000);
}

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
  const method = service.Certify as grpc.MethodDefinition<CertifyRequestMessage, CertifyResponseMessage>;
  const Client = grpc.makeGenericClientConstructor(service, 'Identity');
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
  const client = new Client(o.server, channel.credentials, channel.options);

  async function call(req: CertifyRequestMessage): Promise<CertifyResponseMessage> {
    const deadline = new Date(o.clock.now().getTime() + (o.timeoutMs ?? 10_000));
    return channel.guard(
      () =>
        new Promise((resolve, reject) => {
          client.makeUnaryRequest(
            method.path,
            method.requestSerialize,
            method.responseDeserialize,
            req,
            { deadline },
            (err: grpc.ServiceError | null, res?: CertifyResponseMessage) => {
              if (err !== null || res === undefined) reject(err ?? new Error('empty response'));
              else resolve(res);
            },
          );
        }),
    );
  }

  async function certifyOnce(): Promise<CertifiedFiles> {
    const token = await readFile(o.tokenFile).catch((err: unknown) => {
      throw new FileError(
        'ERR_FILE_NOT_FOUND',
        `cannot read the token file ${o.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    });
    const tokenBytes = Buffer.from(token.toString('utf8').trim(), 'utf8');
    const { anchorsPem, anchors } = await currentAnchors();
    const csr = buildCsr(signer, { dnsNames: [o.identity] });
    const res = await call({ identity: o.identity, token: tokenBytes, certificate_signing_request: csr });
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

  /**
   * The anchors to verify against. The trust-anchors file is authoritative and re-read every time (a
   * mounted ConfigMap changes under it): an anchor removed from it stops being trusted at the next call,
   * one added to it is trusted at once. With bundleUrl, the fetched bundle (strict: CA certificates
   * only) may add anchors beyond the file's, but only when it shares an anchor with the file as it is
   * now, and an https bundle is verified against the file (or tlsCaFile). OUT/ca.crt is only ever
   * written, never read back: what was accepted before is no reason to trust it now, and a bundle
   * that cannot be fetched leaves the file's anchors alone.
   */
  async function currentAnchors(): Promise<{ anchorsPem: string; anchors: CertificateInfo[] }> {
    const filePem = await readPemFile(o.trustAnchorsFile);
    const fromFile = parseCertificatesPem(filePem, o.trustAnchorsFile);
    if (bundleUrl === undefined) return { anchorsPem: filePem, anchors: fromFile };
    let fetchedPem: string;
    try {
      // bounded: --timeout for the whole exchange, 1 MiB, redirects only within the URL's origin
      fetchedPem = await getBounded(bundleUrl, {
        // https: the issuer's serving CA when given, else the anchors of the trust-anchors file
        ca: o.tlsCaFile !== undefined ? await readFile(o.tlsCaFile) : filePem,
        timeoutMs: o.timeoutMs ?? 10_000,
        accept: 'application/x-pem-file, text/plain',
      });
    } catch (err) {
      o.logger.warn(
        { event: 'bundle_fetch_failed', url: o.bundleUrl, code: errorCode(err), err: describeError(err) },
        'using the trust-anchors file alone',
      );
      return { anchorsPem: pemOf(fromFile), anchors: fromFile };
    }
    // Strict: only CA certificates, no headers, no other blocks; refused whole otherwise.
    const fetched = parseTrustBundle(fetchedPem, `the bundle from ${bundleUrl.href}`);
    const inFile = new Set(fromFile.map((a) => a.der.toString('base64')));
    if (!fetched.anchors.some((a) => inFile.has(a.certificate.der.toString('base64')))) {
      throw new CredentialError(
        'ERR_CHAIN_UNTRUSTED',
        `the bundle from ${bundleUrl.href} shares no anchor with ${o.trustAnchorsFile}; refusing it`,
      );
    }
    const added = fetched.anchors
      .map((a) => a.certificate)
      .filter((c) => !inFile.has(c.der.toString('base64')));
    const anchors = [...fromFile, ...added];
    return { anchorsPem: pemOf(anchors), anchors };
  }

  async function run(signal: AbortSignal): Promise<void> {
    let backoffMs = 1000;
    while (!signal.aborted) {
      let delay: number;
      try {
        const files = await certifyOnce();
        backoffMs = 1000;
        delay = renewalDelayMs(o.clock.now(), files.validUntil);
        o.logger.info({ event: 'renewal_scheduled', inMs: Math.round(delay) }, 'next renewal scheduled');
      } catch (err) {
        delay = backoffMs * (0.8 + Math.random() * 0.4);
        backoffMs = Math.min(backoffMs * 2, 60_000);
        o.logger.warn(
          { event: 'certify_failed', code: errorCode(err), retryInMs: Math.round(delay) },
          describeError(err),
        );
      }
      await (o.wait ?? sleep)(delay, signal);
    }
  }

  return {
    certifyOnce,
    run,
    close: () => {
      client.close();
    },
  };
}

function pemOf(certs: readonly CertificateInfo[]): string {
  return certs.map((c) => encodePem('CERTIFICATE', c.der)).join('');
}

export function errorCode(err: unknown): string {
  if (err instanceof LanyardError) return err.code;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? (grpc.status[code] ?? String(code)) : 'ERR_INTERNAL';
}

/** What went wrong, without the code (errorCode() gives that; callers print the two side by side). */
export function describeError(err: unknown): string {
  if (err instanceof LanyardError) return err.message;
  const e = err as { code?: unknown; details?: unknown; message?: unknown };
  if (typeof e.code === 'number' && typeof e.details === 'string') return e.details;
  return typeof e.message === 'string' ? e.message : String(err);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
