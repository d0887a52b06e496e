import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'pino';
import {
  CredentialError,
  checkValidity,
  parseCertificatesPem,
  readPemFile,
  systemClock,
  type CertificateInfo,
  type Clock,
} from '../ca/index.js';
import { createAdminApp } from './admin.js';
import type { Authenticator } from './authn/index.js';
import { createAuthenticator } from './authn-factory.js';
import { createCertifier } from './certify.js';
import type { HostPort, IssuerConfig } from './config.js';
import { createIssuerCredentialSource, type CredentialSource } from './credentials.js';
import {
  GRPC_SERVER_OPTIONS,
  createAdmissionControl,
  createIdentityHandlers,
  loadIdentityService,
} from './grpc/server.js';
import { createIssuanceLedger, type IssuanceLedger } from './ledger.js';
import { createIssuerMetrics, type IssuerMetrics } from './metrics.js';
import { createStatusReporter, type StatusReporter } from './status.js';

export interface RunningIssuer {
  /** actual addresses (port 0 in the config picks a free port) */
  readonly grpcAddress: HostPort;
  readonly adminAddress: HostPort;
  readonly credentials: CredentialSource;
  readonly status: StatusReporter;
  readonly metrics: IssuerMetrics;
  /** Stops accepting calls, lets in-flight calls finish within the grace period, then closes everything. */
  shutdown(graceMs?: number): Promise<void>;
}

export const HEALTH_SERVICE = 'io.linkerd.proxy.identity.Identity';

/** Composition root of `lanyard serve`: builds the dependencies and starts both servers. No logic of its own. */
export async function startIssuer(
  config: IssuerConfig,
  deps: {
    readonly logger: Logger;
    readonly clock?: Clock;
    readonly authenticator?: Authenticator;
    /** false in a cluster worker: the primary serves the admin endpoints */
    readonly admin?: boolean;
    /** where issuance is recorded (a cluster worker passes one that reports to the primary) */
    readonly ledger?: IssuanceLedger;
  },
): Promise<RunningIssuer> {
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger;
  // An unusable serving pair fails the start instead of failing every handshake later.
  if (config.tls !== undefined) await checkServingTls(config.tls, clock.now());
  const metrics = createIssuerMetrics();
  const health = new HealthImplementation({ '': 'NOT_SERVING', [HEALTH_SERVICE]: 'NOT_SERVING' });
  let draining = false;
  // Filled in once the reporter exists; health reads as NOT_SERVING until then.
  const ref: { status?: StatusReporter } = {};
  function updateHealth(): void {
    const serving = !draining && ref.status?.ready() === true;
    health.setStatus('', serving ? 'SERVING' : 'NOT_SERVING');
    health.setStatus(HEALTH_SERVICE, serving ? 'SERVING' : 'NOT_SERVING');
    metrics.ready.set(serving ? 1 : 0);
  }
  const credentials = await createIssuerCredentialSource({
    config,
    clock,
    logger,
    reloads: metrics.reloads,
    onReload: updateHealth,
  });

  const ledger = deps.ledger ?? createIssuanceLedger();
  const reporter = createStatusReporter({
    cluster: config.cluster,
    domain: config.domain,
    clock,
    credentials,
    ledger,
    leafLifetimeMs: config.leafLifetimeMs,
    clockSkewMs: config.clockSkewMs,
  });
  ref.status = reporter;
  updateHealth();
  const healthTimer = setInterval(updateHealth, 1000);
  healthTimer.unref();

  const authenticator =
    deps.authenticator ??
    (await createAuthenticator(config.auth, {
      clock,
      clockSkewMs: config.clockSkewMs,
      logger: logger.child({ component: 'authn' }),
    }));
  const certify = createCertifier({
    clock,
    credentials,
    authenticator,
    policy: {
      lifetimeMs: config.leafLifetimeMs,
      clockSkewMs: config.clockSkewMs,
      allowedKeyTypes: config.leafKeyTypes,
    },
    domain: config.domain,
    ledger,
  });

  const admission = createAdmissionControl({ maxInFlight: config.maxInFlight, logger, metrics });
  const server = new grpc.Server({ ...GRPC_SERVER_OPTIONS, interceptors: [admission.interceptor] });
  server.addService(
    loadIdentityService(),
    createIdentityHandlers({
      certify,
      logger,
      metrics,
      wallClock: systemClock,
    }),
  );
  health.addToServer(server);
  // Serving TLS: the certificate and key files are re-read every poll interval, so a renewed
  // serving certificate (cert-manager) is picked up without a restart.
  const refreshIntervalMs = Math.max(config.pollIntervalMs, 1000);
  const tlsProvider =
    config.tls === undefined
      ? undefined
      : new grpc.experimental.FileWatcherCertificateProvider({
          certificateFile: config.tls.certPath,
          privateKeyFile: config.tls.keyPath,
          refreshIntervalMs,
        });
  const serverCreds =
    tlsProvider === undefined
      ? grpc.ServerCredentials.createInsecure()
      : grpc.experimental.createCertificateProviderServerCredentials(tlsProvider, null, false);
  let grpcPort: number;
  try {
    grpcPort = await new Promise<number>((resolve, reject) => {
      server.bindAsync(
        `${formatHost(config.listen.host)}:${config.listen.port}`,
        serverCreds,
        (err, port) => {
          if (err) reject(err);
          else resolve(port);
        },
      );
    });
    // grpc-js reads the files asynchronously after the bind and drops connections until it has: the
    // issuer counts as started only once a handshake can succeed.
    if (tlsProvider !== undefined && config.tls !== undefined)
      await servingTlsLoaded(
        tlsProvider,
        config.tls,
        Math.max(SERVING_TLS_LOAD_TIMEOUT_MS, 2 * refreshIntervalMs),
      );
  } catch (err) {
    server.forceShutdown();
    clearInterval(healthTimer);
    await credentials.close();
    await authenticator.close?.();
    throw err;
  }

  const admin =
    deps.admin === false
      ? undefined
      : createAdminApp({ credentials, metrics, status: reporter, draining: () => draining });
  await admin?.listen({ host: config.adminListen.host, port: config.adminListen.port });
  const adminPort = admin === undefined ? 0 : (admin.server.address() as { port: number }).port;
  logger.info(
    {
      event: 'started',
      grpc: `${config.listen.host}:${grpcPort}`,
      admin: `${config.adminListen.host}:${adminPort}`,
      auth: authenticator.name,
      ready: reporter.ready(),
    },
    'issuer started',
  );

  let shutdownPromise: Promise<void> | undefined;
  async function doShutdown(graceMs: number): Promise<void> {
    draining = true;
    updateHealth();
    clearInterval(healthTimer);
    logger.info({ event: 'draining', graceMs }, 'draining: no new calls, finishing those in flight');
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        logger.warn({ event: 'grace_expired' }, 'grace period over; cancelling the remaining calls');
        // grpc-js's forceShutdown() only destroys connections it tracks for channelz (disabled
        // here), so the calls still in progress are ended one by one first
        admission.cancelAll();
        server.forceShutdown();
        resolve();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    await admin?.close();
    await credentials.close();
    await authenticator.close?.();
    logger.info({ event: 'stopped' }, 'issuer stopped');
  }

  return {
    grpcAddress: { host: config.listen.host, port: grpcPort },
    adminAddress: { host: config.adminListen.host, port: adminPort },
    credentials,
    status: reporter,
    metrics,
    shutdown(graceMs = config.shutdownGraceMs) {
      shutdownPromise ??= doShutdown(graceMs);
      return shutdownPromise;
    },
  };
}

/** How long startIssuer waits for grpc-js to load the serving certificate (at least two refresh intervals). */
const SERVING_TLS_LOAD_TIMEOUT_MS = 10_000;

/**
 * Reads --tls-cert/--tls-key once and checks that they make a usable serving pair at `now`: the
 * certificate file is strict PEM holding only certificates, the key is an unencrypted PEM private
 * key (PKCS#8, SEC1 or PKCS#1, as Node's TLS takes it) matching the first certificate, and that
 * certificate is valid at `now`. Throws a CredentialError (ERR_FILE_NOT_FOUND, ERR_PEM_*,
 * ERR_CERT_MALFORMED, ERR_FILE_INVALID, ERR_KEY_MISMATCH, ERR_CERT_EXPIRED, ERR_CERT_NOT_YET_VALID).
 */
export async function checkServingTls(
  tls: { readonly certPath: string; readonly keyPath: string },
  now: Date,
): Promise<CertificateInfo> {
  const certPem = await readPemFile(tls.certPath);
  const keyPem = await readPemFile(tls.keyPath);
  const chain = parseCertificatesPem(certPem, `--tls-cert ${tls.certPath}`);
  const cert = chain[0] as CertificateInfo;
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyPem, format: 'pem' });
  } catch (err) {
    throw new CredentialError(
      'ERR_FILE_INVALID',
      `--tls-key ${tls.keyPath} is not an unencrypted PEM private key (PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)`,
      { cause: err },
    );
  }
  if (!createPublicKey(key).equals(cert.publicKey)) {
    throw new CredentialError(
      'ERR_KEY_MISMATCH',
      `--tls-key ${tls.keyPath} does not match the first certificate in --tls-cert ${tls.certPath}`,
    );
  }
  checkValidity(cert, now, `serving certificate (--tls-cert ${tls.certPath})`);
  try {
    createSecureContext({ cert: certPem, key: keyPem });
  } catch (err) {
    throw new CredentialError(
      'ERR_FILE_INVALID',
      `--tls-cert ${tls.certPath} and --tls-key ${tls.keyPath} are refused by Node's TLS: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return cert;
}

/**
 * Resolves once `provider` has delivered a certificate and key that make a TLS context. The server's
 * own listener was added at bind time, before this one, so by then it has installed them.
 */
function servingTlsLoaded(
  provider: grpc.experimental.CertificateProvider,
  tls: { readonly certPath: string; readonly keyPath: string },
  timeoutMs: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const listener = (update: grpc.experimental.IdentityCertificateUpdate | null): void => {
      // null: a file could not be read; grpc-js tries again every refresh interval
      if (update === null) return;
      try {
        createSecureContext({ cert: update.certificate, key: update.privateKey });
      } catch {
        return;
      }
      done();
      resolve();
    };
    const timer = setTimeout(() => {
      done();
      reject(
        new CredentialError(
          'ERR_FILE_INVALID',
          `the gRPC server did not load --tls-cert ${tls.certPath} and --tls-key ${tls.keyPath} within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      provider.removeIdentityCertificateListener(listener);
    };
    provider.addIdentityCertificateListener(listener);
  });
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
