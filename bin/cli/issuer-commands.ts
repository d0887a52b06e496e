import { Command, Option } from 'commander';
import { join } from 'node:path';
import { LanyardError, UsageError, isDns1123Label, parseDuration } from '../../ca/index.js';
import { durationOption, type CliContext } from './kit.js';
import {
  createSigningKeyDir,
  DEV_TOKEN_ISSUER,
  loadSigningKeyDir,
  mintServiceAccountToken,
  type SigningKey,
} from '../token/index.js';
import { startDevEnvironment } from '../dev/index.js';
import { createCertifyClient, describeError, errorCode } from '../agent/index.js';
import { buildIssuerConfig, SERVE_DEFAULTS, type ServeFlags } from '../../issuer/index.js';
import { createIssuerLogger, createLogger } from '../../issuer/index.js';
import { runIssuer } from '../../issuer/index.js';

const env = (name: string): string => `LANYARD_${name}`;

/** `lanyard serve`, `lanyard certify` */
export function registerIssuerCommands(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description("run a cluster's issuer: the Linkerd Certify gRPC API plus the admin HTTP endpoints")
    .addOption(
      new Option(
        '--issuer-dir <dir>',
        'issuer credential directory (tls.crt/tls.key/ca.crt or crt.pem/key.pem)',
      )
        .env(env('ISSUER_DIR'))
        .makeOptionMandatory(),
    )
    .addOption(
      new Option('--trust-anchors <file>', 'trust anchors PEM (default: DIR/ca.crt)').env(
        env('TRUST_ANCHORS'),
      ),
    )
    .addOption(
      new Option('--listen <host:port>', 'gRPC listen address')
        .env(env('LISTEN'))
        .default(SERVE_DEFAULTS.listen),
    )
    .addOption(
      new Option('--admin-listen <host:port>', 'admin HTTP listen address')
        .env(env('ADMIN_LISTEN'))
        .default(SERVE_DEFAULTS.adminListen),
    )
    .addOption(
      new Option('--cluster <name>', 'cluster name for logs, metrics and status')
        .env(env('CLUSTER'))
        .default(SERVE_DEFAULTS.cluster),
    )
    .addOption(
      new Option('--trust-domain <domain>', 'trust domain').env(env('TRUST_DOMAIN')).default('cluster.local'),
    )
    .addOption(
      new Option('--control-namespace <ns>', 'Linkerd control-plane namespace')
        .env(env('CONTROL_NAMESPACE'))
        .default('linkerd'),
    )
    .addOption(
      new Option('--auth <mode>', 'how tokens are checked')
        .choices(['jwt', 'token-review'])
        .env(env('AUTH'))
        .default('jwt'),
    )
    .addOption(
      new Option('--jwks-file <file>', 'jwt: JWKS file of the cluster service-account signing keys').env(
        env('JWKS_FILE'),
      ),
    )
    .addOption(
      new Option('--jwks-url <url>', 'jwt: JWKS URL of the cluster service-account signing keys').env(
        env('JWKS_URL'),
      ),
    )
    .addOption(
      new Option('--jwks-ca-file <file>', 'jwt: CA bundle for an https JWKS URL').env(env('JWKS_CA_FILE')),
    )
    .addOption(
      new Option(
        '--jwks-token-file <file>',
        "jwt: bearer token sent with the JWKS URL request, re-read each fetch (the API server's /openid/v1/jwks needs one)",
      ).env(env('JWKS_TOKEN_FILE')),
    )
    .addOption(
      durationOption(
        '--jwks-refresh <duration>',
        'jwt: fetch the --jwks-url JWKS again at least this often; a shorter Cache-Control max-age wins, down to 10s (default: 5m)',
      ).env(env('JWKS_REFRESH')),
    )
    .addOption(
      durationOption(
        '--jwks-max-age <duration>',
        'jwt: stop trusting --jwks-url keys that could not be refreshed for this long; calls answer UNAVAILABLE until a fetch succeeds (default: 1h)',
      ).env(env('JWKS_MAX_AGE')),
    )
    .addOption(
      new Option('--token-issuer <iss>', 'jwt: required "iss" of service-account tokens').env(
        env('TOKEN_ISSUER'),
      ),
    )
    .addOption(
      new Option('--token-audience <aud>', 'required token audience')
        .env(env('TOKEN_AUDIENCE'))
        .default(SERVE_DEFAULTS.audience),
    )
    .addOption(
      new Option('--kubeconfig <file>', 'token-review: kubeconfig (default: in-cluster credentials)').env(
        env('KUBECONFIG'),
      ),
    )
    .addOption(
      new Option(
        '--token-review-cache <duration>',
        "token-review: how long a successful TokenReview is reused (0: ask the API server on every call); a deleted pod's token is accepted for at most this long",
      )
        .env(env('TOKEN_REVIEW_CACHE'))
        .default(SERVE_DEFAULTS.tokenReviewCache),
    )
    .addOption(
      new Option(
        '--max-in-flight-per-peer <n>',
        'Certify calls in flight from one client address before RESOURCE_EXHAUSTED (default: half of --max-in-flight)',
      ).env(env('MAX_IN_FLIGHT_PER_PEER')),
    )
    .addOption(
      durationOption('--leaf-lifetime <duration>', 'workload certificate lifetime', '24h').env(
        env('LEAF_LIFETIME'),
      ),
    )
    .addOption(
      durationOption('--clock-skew <duration>', 'notBefore back-dating and token clock tolerance', '20s').env(
        env('CLOCK_SKEW'),
      ),
    )
    .addOption(
      new Option('--leaf-key-types <list>', 'allowed workload key types, comma-separated (p256, p384)')
        .env(env('LEAF_KEY_TYPES'))
        .default('p256'),
    )
    .addOption(
      new Option('--max-in-flight <n>', 'Certify calls in flight before RESOURCE_EXHAUSTED')
        .env(env('MAX_IN_FLIGHT'))
        .default(String(SERVE_DEFAULTS.maxInFlight)),
    )
    .addOption(
      durationOption(
        '--shutdown-grace <duration>',
        'time in-flight calls get to finish on SIGTERM',
        '10s',
      ).env(env('SHUTDOWN_GRACE')),
    )
    .addOption(
      durationOption('--poll-interval <duration>', 'how often credential files are re-read', '2s').env(
        env('POLL_INTERVAL'),
      ),
    )
    .addOption(
      new Option('--tls-cert <file>', 'serve gRPC over TLS with this certificate chain').env(env('TLS_CERT')),
    )
    .addOption(new Option('--tls-key <file>', 'private key for --tls-cert').env(env('TLS_KEY')))
    .addOption(
      new Option(
        '--tls-server-name <name>',
        'the DNS name clients ask for as SNI and check in the serving certificate (default: linkerd-identity.NS.serviceaccount.identity.NS.TRUST_DOMAIN); a certificate without it is logged as a warning and shown in /v1/status',
      ).env(env('TLS_SERVER_NAME')),
    )
    .addOption(
      new Option('--log-level <level>', 'log level')
        .choices(['debug', 'info', 'warn', 'error'])
        .env(env('LOG_LEVEL'))
        .default('info'),
    )
    .addOption(
      new Option(
        '--workers <n|auto>',
        'processes serving Certify on the shared gRPC port ("auto": one per core)',
      )
        .env(env('WORKERS'))
        .default('auto'),
    )
    .action(async (flags: ServeFlags) => {
      const config = buildIssuerConfig(flags);
      const run = await runIssuer(config, { logger: createIssuerLogger(config), clock: ctx.clock });
      if (run.role === 'worker') return;
      const workers = run.role === 'primary' ? ` (${run.workers} workers)` : '';
      ctx.out(
        `lanyard serve: cluster ${config.cluster}, gRPC on ${run.grpcAddress.host}:${run.grpcAddress.port}${workers}, admin on http://${run.adminAddress.host}:${run.adminAddress.port}`,
      );
      await waitForSignal();
      await run.shutdown();
    });

  program
    .command('certify')
    .description(
      'get a workload certificate from an issuer, as a proxy does: key, CSR, Certify, verify, write OUT/tls.crt, tls.key, ca.crt',
    )
    .requiredOption('--server <host:port>', "the cluster issuer's gRPC address")
    .requiredOption(
      '--identity <id>',
      'identity to request, e.g. web.default.serviceaccount.identity.linkerd.cluster.local',
    )
    .requiredOption('--token-file <file>', 'service-account token file (re-read before every call)')
    .requiredOption(
      '--out <dir>',
      'directory for tls.crt (leaf then intermediates), tls.key (0600) and ca.crt; created 0700 when missing. An existing tls.key is reused only when it is a regular file of this user that group and others cannot read or write (else ERR_KEY_PERMISSIONS)',
    )
    .requiredOption(
      '--trust-anchors <file>',
      'PEM trust anchors the returned chain must verify against (re-read before every call; authoritative: a --bundle-url only adds to it)',
    )
    .option(
      '--bundle-url <url>',
      "before each renewal, add the anchors of the issuer's bundle (ADMIN/v1/bundle) to --trust-anchors when it shares one with that file (a failed fetch uses the file alone): https (verified with --tls-ca, else --trust-anchors), or http to a loopback address",
    )
    .option(
      '--insecure-bundle-url',
      'also accept a plain-http --bundle-url to a non-loopback address (whoever answers there can add trust anchors; logged as a warning)',
      false,
    )
    .option('--tls-ca <file>', 'CA certificate of a TLS-serving issuer (plaintext when absent)')
    .option(
      '--server-name <name>',
      "with --tls-ca: the DNS name sent as SNI and required as a DNS SAN of the issuer's certificate, as a Linkerd proxy uses LINKERD2_PROXY_IDENTITY_SVC_NAME (default: the host of --server)",
    )
    .option('--once', 'get one certificate and exit (else renew at 70 % of the time to valid_until)', false)
    .addOption(
      new Option(
        '--timeout <duration>',
        'deadline of each Certify call, and of each --bundle-url fetch as a whole',
      ).default('10s'),
    )
    .action(
      async (o: {
        server: string;
        identity: string;
        tokenFile: string;
        out: string;
        trustAnchors: string;
        tlsCa?: string;
        serverName?: string;
        bundleUrl?: string;
        insecureBundleUrl: boolean;
        once: boolean;
        timeout: string;
      }) => {
        const logger = createLogger({
          level: o.once ? 'warn' : 'info',
          base: { service: 'lanyard-certify' },
        });
        const client = await createCertifyClient({
          server: o.server,
          identity: o.identity,
          tokenFile: o.tokenFile,
          outDir: o.out,
          trustAnchorsFile: o.trustAnchors,
          ...(o.tlsCa !== undefined ? { tlsCaFile: o.tlsCa } : {}),
          ...(o.serverName !== undefined ? { serverName: o.serverName } : {}),
          ...(o.bundleUrl !== undefined ? { bundleUrl: o.bundleUrl } : {}),
          insecureBundleUrl: o.insecureBundleUrl,
          clock: ctx.clock,
          logger,
          timeoutMs: parseDuration(o.timeout),
        });
        try {
          if (o.once) {
            const files = await client.certifyOnce().catch((err: unknown) => {
              throw new CertifyFailed(err);
            });
            ctx.out(
              `wrote ${files.certPath}, ${files.keyPath}, ${files.caPath} (serial ${files.serial}, valid until ${files.notAfter.toISOString()})`,
            );
            return;
          }
          const ac = new AbortController();
          void waitForSignal().then(() => {
            ac.abort();
          });
          await client.run(ac.signal);
        } finally {
          client.close();
        }
      },
    );
}

export function registerDevCommands(program: Command, ctx: CliContext): void {
  program
    .command('token')
    .description(
      'mint a Kubernetes-style projected service-account token with a local signing key (DIR/signing.key; its public JWKS is DIR/jwks.json)',
    )
    .requiredOption(
      '--signing-key-dir <dir>',
      'directory with signing.key and jwks.json (created with a new key if it has none)',
    )
    .requiredOption('--namespace <ns>', 'namespace of the service account')
    .requiredOption('--service-account <sa>', 'service account name')
    .option('--audience <aud>', 'token audience', 'identity.l5d.io')
    .option('--issuer <iss>', 'token issuer ("iss")', DEV_TOKEN_ISSUER)
    .addOption(durationOption('--ttl <duration>', 'token lifetime', '1h'))
    .action(
      async (o: {
        signingKeyDir: string;
        namespace: string;
        serviceAccount: string;
        audience: string;
        issuer: string;
        ttl?: number;
      }) => {
        if (!isDns1123Label(o.namespace) || !isDns1123Label(o.serviceAccount)) {
          throw new UsageError(
            '--namespace and --service-account must be DNS-1123 labels (lower-case letters, digits and -)',
          );
        }
        let key: SigningKey;
        try {
          key = await loadSigningKeyDir(o.signingKeyDir);
        } catch (err) {
          if ((err as { code?: string }).code !== 'ERR_FILE_NOT_FOUND') throw err;
          key = await createSigningKeyDir(o.signingKeyDir, { clock: ctx.clock });
          ctx.err(`created a new signing key in ${o.signingKeyDir}; its public JWKS is ${key.jwksPath}`);
        }
        const token = await mintServiceAccountToken({
          key: key.key,
          kid: key.kid,
          issuer: o.issuer,
          audience: o.audience,
          namespace: o.namespace,
          serviceAccount: o.serviceAccount,
          ttlMs: o.ttl ?? 3_600_000,
          now: ctx.clock.now(),
        });
        ctx.out(token);
      },
    );

  program
    .command('dev')
    .description(
      'local demo: one shared anchor and two clusters (east, west), each with an issuer and a token-signing key, served on loopback until interrupted',
    )
    .option(
      '--state-dir <dir>',
      'where the anchor, issuers and signing keys live (created on first run, reused after)',
      '.lanyard',
    )
    .option('--base-port <port>', 'gRPC port of east; west uses the next one', '8080')
    .option('--admin-base-port <port>', 'admin port of east; west uses the next one', '9990')
    .addOption(
      new Option('--log-level <level>', 'issuer log level (logs go to standard error)')
        .choices(['debug', 'info', 'warn', 'error'])
        .default('warn'),
    )
    .action(async (o: { stateDir: string; basePort: string; adminBasePort: string; logLevel: string }) => {
      const env = await startDevEnvironment({
        stateDir: o.stateDir,
        basePort: port(o.basePort, '--base-port'),
        adminBasePort: port(o.adminBasePort, '--admin-base-port'),
        clock: ctx.clock,
        logger: createLogger({ level: o.logLevel, base: { service: 'lanyard-dev' } }),
      });
      ctx.out(
        `${env.created ? 'created' : 'reusing'} ${o.stateDir}: one trust anchor (${join(env.anchorDir, 'anchor.crt')}), clusters ${env.clusters.map((c) => c.name).join(' and ')}`,
      );
      for (const c of env.clusters) {
        ctx.out(
          `  ${c.name}: gRPC 127.0.0.1:${c.issuer.grpcAddress.port}, admin http://127.0.0.1:${c.issuer.adminAddress.port} (/ready, /metrics, /v1/status, /v1/bundle)`,
        );
      }
      ctx.out('');
      ctx.out('Get a certificate from each cluster (in another terminal, from this directory):');
      for (const c of env.clusters) {
        const id = `web.default.serviceaccount.identity.linkerd.cluster.local`;
        const out = join(o.stateDir, 'workloads', `${c.name}-web`);
        ctx.out('');
        ctx.out(
          `  npx lanyard token --signing-key-dir ${c.signingKeyDir} --namespace default --service-account web > ${out}.token`,
        );
        ctx.out(
          `  npx lanyard certify --server 127.0.0.1:${c.issuer.grpcAddress.port} --identity ${id} --token-file ${out}.token --trust-anchors ${join(env.anchorDir, 'anchor.crt')} --out ${out} --once`,
        );
        ctx.out(`  npx lanyard inspect ${join(out, 'tls.crt')}`);
      }
      ctx.out('');
      ctx.out('Press Ctrl-C to stop.');
      await waitForSignal();
      await env.shutdown();
    });
}

function port(s: string, flag: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0 || n > 65534) throw new UsageError(`${flag} must be a port number`);
  return n;
}

/** A Certify failure reported with its gRPC status name, e.g. "PERMISSION_DENIED: …". */
export class CertifyFailed extends LanyardError<'ERR_CERTIFY_FAILED'> {
  constructor(readonly original: unknown) {
    super('ERR_CERTIFY_FAILED', `${errorCode(original)}: ${describeError(original)}`);
  }
}

export function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
