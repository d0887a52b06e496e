// The serving certificate of `lanyard serve --tls-cert/--tls-key`: what is checked before binding
// (and again on every reload), and the name a Linkerd proxy will ask for.
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import {
  CredentialError,
  checkValidity,
  encodePem,
  parseCertificatesPem,
  systemScheduler,
  type CertificateInfo,
  type Clock,
  type IdentityDomain,
  FileError,
  type Scheduler,
} from '../ca/index.js';
import { readPemFile } from '../ca/store/index.js';
import { IssuerServiceError } from './errors.js';
import type { Logger } from 'pino';
import type { ServingTlsStatus } from '../trust-bundles/index.js';
import { identityServiceName, type IssuerConfig } from './config.js';
import { contentFingerprint, createFileWatch, lookAtContents, type WatchVerdict } from './file-watch.js';

export interface ServingTlsFiles {
  readonly certPath: string;
  readonly keyPath: string;
  /** the DNS name clients use as SNI and check (default: the Linkerd identity service's own identity) */
  readonly serverName?: string;
}

export interface ServingPair {
  readonly certPem: string;
  readonly keyPem: string;
  readonly certificate: CertificateInfo;
  /** every certificate of --tls-cert, the serving certificate first (the chain clients are sent) */
  readonly chain: readonly CertificateInfo[];
}

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

/** Whether `cert` carries `name` as a DNS SAN (exactly, or by a wildcard first label). */
export function certificateNames(cert: CertificateInfo, name: string): boolean {
  const want = name.toLowerCase();
  return cert.dnsNames.some((n) => {
    const dns = n.toLowerCase();
    if (dns === want) return true;
    if (!dns.startsWith('*.')) return false;
    const dot = want.indexOf('.');
    return dot > 0 && want.slice(dot) === dns.slice(1);
  });
}

/**
 * Checks PEM text as a serving pair at `now`: strict PEM certificates, an unencrypted private key
 * matching the first certificate, that certificate valid now, and what real proxies can use: not an
 * RSA key (a Linkerd proxy accepts no RSA-PSS, which TLS 1.3 requires for an RSA CertificateVerify:
 * ERR_SERVING_KEY_UNUSABLE), serverAuth in the EKU when an EKU is present (ERR_SERVING_CERT_EKU).
 * `what` names the files in messages (these are operator-facing, never sent to callers).
 */
export function checkServingPair(
  certPem: string,
  keyPem: string,
  now: Date,
  what: { cert: string; key: string },
): ServingPair {
  const chain = parseCertificatesPem(certPem, what.cert);
  const cert = chain[0] as CertificateInfo;
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyPem, format: 'pem' });
  } catch (err) {
    throw new FileError(
      'ERR_FILE_INVALID',
      `${what.key} is not an unencrypted PEM private key (PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)`,
      { cause: err },
    );
  }
  if (!createPublicKey(key).equals(cert.publicKey)) {
    throw new CredentialError(
      'ERR_KEY_MISMATCH',
      `${what.key} does not match the first certificate in ${what.cert}`,
    );
  }
  const keyType = key.asymmetricKeyType;
  if (keyType === 'rsa' || keyType === 'rsa-pss') {
    throw new IssuerServiceError(
      'ERR_SERVING_KEY_UNUSABLE',
      `${what.cert} has an RSA key: Linkerd proxies speak TLS 1.3 without RSA-PSS and cannot complete a handshake with it; issue the serving certificate with an ECDSA P-256 key (cert-manager: privateKey.algorithm: ECDSA, size: 256)`,
    );
  }
  const eku = new X509Certificate(cert.der).keyUsage;
  if (eku !== undefined && !eku.includes(SERVER_AUTH)) {
    throw new IssuerServiceError(
      'ERR_SERVING_CERT_EKU',
      `${what.cert} has an extended key usage without serverAuth: clients refuse it as a TLS server certificate; add serverAuth (cert-manager: usages: [server auth])`,
    );
  }
  checkValidity(cert, now, `serving certificate (${what.cert})`);
  try {
    createSecureContext({ cert: certPem, key: keyPem });
  } catch (err) {
    throw new FileError(
      'ERR_FILE_INVALID',
      `${what.cert} and ${what.key} are refused by Node's TLS: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return { certPem, keyPem, certificate: cert, chain };
}

/**
 * Reads --tls-cert/--tls-key once and checks them with checkServingPair. Throws a CredentialError
 * (ERR_FILE_NOT_FOUND, ERR_PEM_*, ERR_CERT_MALFORMED, ERR_FILE_INVALID, ERR_KEY_MISMATCH,
 * ERR_SERVING_KEY_UNUSABLE, ERR_SERVING_CERT_EKU, ERR_CERT_EXPIRED, ERR_CERT_NOT_YET_VALID).
 */
export async function checkServingTls(tls: ServingTlsFiles, now: Date): Promise<ServingPair> {
  const certPem = await readPemFile(tls.certPath);
  const keyPem = await readPemFile(tls.keyPath);
  return checkServingPair(certPem, keyPem, now, flagNames(tls));
}

function flagNames(tls: ServingTlsFiles): { cert: string; key: string } {
  return { cert: `--tls-cert ${tls.certPath}`, key: `--tls-key ${tls.keyPath}` };
}

/**
 * Re-reads the serving files every `intervalMs` on the file watch (file-watch.ts); a changed pair
 * that passes checkServingPair is handed to `onPair`, one that does not to `onRefused` (the previous
 * pair keeps serving). Files caught between the key and the certificate of a swap simply fail to
 * match and are read again at the next tick; files missing for a moment (a Secret being swapped)
 * are read again at the next tick too.
 */
export function watchServingTls(o: {
  readonly files: ServingTlsFiles;
  readonly current: ServingPair;
  readonly intervalMs: number;
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  readonly onPair: (pair: ServingPair) => void;
  readonly onRefused: (err: unknown) => void;
}): { check(): Promise<void>; close(): void } {
  let settling = '';
  let lastReported = '';
  const watch = createFileWatch({
    look: () => lookAtContents([o.files.certPath, o.files.keyPath]),
    onChange([certPem = '', keyPem = ''], seen): WatchVerdict {
      try {
        const pair = checkServingPair(certPem, keyPem, o.clock.now(), flagNames(o.files));
        o.onPair(pair);
        return 'accepted';
      } catch (err) {
        const code = (err as { code?: string }).code;
        // a mismatch is usually a swap in progress: only report it once the pair has settled
        if (code === 'ERR_KEY_MISMATCH' && settling !== seen) {
          settling = seen;
          return 'retry';
        }
        if (lastReported !== seen) o.onRefused(err);
        lastReported = seen;
        // a certificate not valid yet (this node's clock a little behind the issuer's) may become
        // valid without the files changing: it is checked again at every tick, reported once
        return code === 'ERR_CERT_NOT_YET_VALID' ? 'retry' : 'refused';
      }
    },
    // the pair in use and the last pair refused are both left alone until the files change
    policy: 'both',
    initial: contentFingerprint(o.current.certPem, o.current.keyPem),
    clock: o.clock,
    scheduler: o.scheduler,
    pollIntervalMs: o.intervalMs,
  });
  return {
    async check() {
      await watch.check();
    },
    close() {
      void watch.close();
    },
  };
}

/** The serving certificate as /v1/status shows it. */
export type { ServingTlsStatus } from '../trust-bundles/index.js';

export function servingTlsStatus(pair: ServingPair, serverName: string): ServingTlsStatus {
  return {
    serverName,
    namesServer: certificateNames(pair.certificate, serverName),
    dnsNames: pair.certificate.dnsNames,
    serial: pair.certificate.serialHex,
    notAfter: pair.certificate.notAfter.toISOString(),
    chainPem: pair.chain.map((c) => encodePem('CERTIFICATE', c.der)).join(''),
  };
}

/** Logs, once per pair, what of a serving pair some proxies will refuse: a P-521 key, a missing name. */
export function warnServingPair(
  logger: { warn(o: object, msg: string): void },
  s: ServingTlsStatus,
  pair?: ServingPair,
): void {
  if (pair?.certificate.publicKey.asymmetricKeyDetails?.namedCurve === 'secp521r1')
    logger.warn(
      { event: 'serving_tls_curve', curve: 'P-521' },
      'the serving key is P-521: Linkerd proxies before 2.19 accept only P-256 and P-384 server keys; prefer P-256',
    );
  if (s.namesServer) return;
  logger.warn(
    {
      event: 'serving_tls_name',
      serverName: s.serverName,
      dnsNames: s.dnsNames,
      code: 'ERR_SERVING_CERT_NAME',
    },
    `the serving certificate does not carry ${s.serverName} as a DNS SAN: Linkerd proxies connecting by that name will refuse it (issue it for that name, or set --tls-server-name to the name proxies use)`,
  );
}

export interface ServingTls {
  /** the pair in use (the last one that passed checkServingPair) */
  pair(): ServingPair;
  status(): ServingTlsStatus;
  /** looks at the files now (joins a look in progress) */
  reload(): Promise<void>;
  close(): void;
}

/**
 * Loads and checks the serving pair (throws as checkServingTls), warns when it does not name the
 * service, and keeps it current: a renewed pair (cert-manager) is checked and handed to `onPair`; a
 * refused one is logged and the previous one keeps serving.
 */
export async function openServingTls(o: {
  readonly files: ServingTlsFiles;
  readonly domain: IdentityDomain;
  readonly intervalMs: number;
  readonly clock: Clock;
  /** runs the re-reads (default: Node's timers, unref'd) */
  readonly scheduler?: Scheduler;
  readonly logger: Logger;
  readonly onPair?: (pair: ServingPair) => void;
  /** set to the serving certificate's notAfter (unix seconds) at load and on every reload */
  readonly expiry?: { set(value: number): void };
}): Promise<ServingTls> {
  const serverName = o.files.serverName ?? identityServiceName(o.domain);
  let current = await checkServingTls(o.files, o.clock.now());
  const recordExpiry = (pair: ServingPair): void =>
    o.expiry?.set(Math.floor(pair.certificate.notAfter.getTime() / 1000));
  recordExpiry(current);
  warnServingPair(o.logger, servingTlsStatus(current, serverName), current);
  const watch = watchServingTls({
    files: o.files,
    current,
    intervalMs: o.intervalMs,
    clock: o.clock,
    scheduler: o.scheduler ?? systemScheduler,
    onPair(pair) {
      current = pair;
      recordExpiry(pair);
      o.onPair?.(pair);
      o.logger.info(
        { event: 'serving_tls_reloaded', serial: pair.certificate.serialHex },
        'serving certificate reloaded',
      );
      warnServingPair(o.logger, servingTlsStatus(pair, serverName), pair);
    },
    onRefused(err) {
      o.logger.warn(
        { event: 'serving_tls_refused', code: (err as { code?: string }).code ?? 'ERR_FILE_INVALID' },
        `the new serving certificate was refused; the previous one keeps serving: ${(err as Error).message}`,
      );
    },
  });
  return {
    pair: () => current,
    status: () => servingTlsStatus(current, serverName),
    reload: () => watch.check(),
    close: () => {
      watch.close();
    },
  };
}

/** openServingTls for `lanyard serve`'s config (undefined: plaintext); the files are re-read every poll interval (at least 1 s). */
export function openServingTlsOf(
  config: IssuerConfig,
  o: {
    readonly clock: Clock;
    readonly scheduler?: Scheduler;
    readonly logger: Logger;
    readonly expiry: { set(value: number): void };
    readonly onPair?: (pair: ServingPair) => void;
  },
): Promise<ServingTls | undefined> {
  if (config.tls === undefined) return Promise.resolve(undefined);
  return openServingTls({
    files: config.tls,
    domain: config.domain,
    intervalMs: Math.max(config.pollIntervalMs, 1000),
    clock: o.clock,
    ...(o.scheduler !== undefined ? { scheduler: o.scheduler } : {}),
    logger: o.logger,
    expiry: o.expiry,
    ...(o.onPair !== undefined ? { onPair: o.onPair } : {}),
  });
}
