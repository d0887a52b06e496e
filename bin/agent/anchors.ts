// The trust anchors the agent verifies a returned chain against: the trust-anchors file, plus what a
// bundle endpoint adds to it.
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { CredentialError, encodePem, parseCertificatesPem, type CertificateInfo } from '../../ca/index.js';
import { readPemFile } from '../../ca/store/index.js';
import { getBounded, parseTrustBundle } from '../../trust-bundles/index.js';
import { describeError, errorCode } from './error-report.js';

/** Where the anchors come from (the CertifyClientOptions of the same names). */
export interface AnchorSources {
  readonly trustAnchorsFile: string;
  /** the bundle URL as given (for logs); the checked URL is passed apart */
  readonly bundleUrl?: string;
  readonly tlsCaFile?: string;
  readonly timeoutMs?: number;
  readonly logger: Logger;
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
export async function currentAnchors(
  o: AnchorSources,
  bundleUrl: URL | undefined,
): Promise<{ anchorsPem: string; anchors: CertificateInfo[] }> {
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

function pemOf(certs: readonly CertificateInfo[]): string {
  return certs.map((c) => encodePem('CERTIFICATE', c.der)).join('');
}
