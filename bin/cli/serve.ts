import { Command, Option } from 'commander';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildIssuerConfig,
  createIssuerLogger,
  runIssuer,
  SERVE_DEFAULTS,
  type ServeFlags,
} from '../../issuer/index.js';
import { durationOption, waitForSignal, type CliContext } from './kit.js';

const env = (name: string): string => `LANYARD_${name}`;

/** What `--workers N` forks: the serve command alone (serve-worker.ts, or .js once compiled). */
const WORKER_ENTRY = fileURLToPath(
  new URL(`./serve-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url),
);

/** `lanyard serve`: every flag also read from its LANYARD_… environment variable. */
export function registerServeCommand(program: Command, ctx: CliContext): void {
  const serve = program
    .command('serve')
    .description(
      "run a cluster's issuer: the Linkerd Certify gRPC API plus the admin HTTP endpoints (and, with --istio-listen, Istio's CA API)",
    );
  for (const option of [
    ...serveAddressOptions(),
    ...serveAuthOptions(),
    ...serveIssuanceOptions(),
    ...serveTransportOptions(),
    ...serveIstioOptions(),
  ])
    serve.addOption(option);
  serve.action(async (flags: ServeFlags) => {
    const config = buildIssuerConfig(flags);
    const logger = createIssuerLogger(config);
    // a failed start's error line comes after its log lines: the CLI's ctx.err writes those first
    const run = await runIssuer(config, { logger, clock: ctx.clock, workerEntry: WORKER_ENTRY });
    if (run.role === 'worker') return;
    const workers = run.role === 'primary' ? ` (${run.workers} workers)` : '';
    // the port bound (the workers' shared one in cluster mode), not the configured one: it may be 0
    const istio =
      run.istioAddress === undefined ? '' : `, Istio CA on ${run.istioAddress.host}:${run.istioAddress.port}`;
    ctx.out(
      `lanyard serve: cluster ${config.cluster}, gRPC on ${run.grpcAddress.host}:${run.grpcAddress.port}${workers}${istio}, admin on http://${run.adminAddress.host}:${run.adminAddress.port}`,
    );
    await waitForSignal();
    await run.shutdown();
  });
}

/** Where the credentials are, where to listen, which identities are served. */
function serveAddressOptions(): Option[] {
  return [
    new Option(
      '--issuer-dir <dir>',
      'issuer credential directory (tls.crt/tls.key/ca.crt or crt.pem/key.pem)',
    )
      .env(env('ISSUER_DIR'))
      .makeOptionMandatory(),
    new Option('--trust-anchors <file>', 'trust anchors PEM (default: DIR/ca.crt)').env(env('TRUST_ANCHORS')),
    new Option(
      '--intermediates <file>',
      'PEM certificates served after the issuer certificate (e.g. a cross-signed anchor, when cert-manager writes tls.crt); re-read like the issuer directory, a file that does not validate is refused and the previous credential keeps serving',
    ).env(env('INTERMEDIATES')),
    new Option('--listen <host:port>', 'gRPC listen address')
      .env(env('LISTEN'))
      .default(SERVE_DEFAULTS.listen),
    new Option('--admin-listen <host:port>', 'admin HTTP listen address')
      .env(env('ADMIN_LISTEN'))
      .default(SERVE_DEFAULTS.adminListen),
    new Option('--cluster <name>', 'cluster name for logs, metrics and status')
      .env(env('CLUSTER'))
      .default(SERVE_DEFAULTS.cluster),
    new Option('--trust-domain <domain>', 'trust domain').env(env('TRUST_DOMAIN')).default('cluster.local'),
    new Option('--control-namespace <ns>', 'Linkerd control-plane namespace')
      .env(env('CONTROL_NAMESPACE'))
      .default('linkerd'),
  ];
}

/** How tokens are checked: jwt (JWKS file or URL) or token-review. */
function serveAuthOptions(): Option[] {
  return [
    new Option('--auth <mode>', 'how tokens are checked')
      .choices(['jwt', 'token-review'])
      .env(env('AUTH'))
      .default('jwt'),
    new Option('--jwks-file <file>', 'jwt: JWKS file of the cluster service-account signing keys').env(
      env('JWKS_FILE'),
    ),
    new Option('--jwks-url <url>', 'jwt: JWKS URL of the cluster service-account signing keys').env(
      env('JWKS_URL'),
    ),
    new Option('--jwks-ca-file <file>', 'jwt: CA bundle for an https JWKS URL').env(env('JWKS_CA_FILE')),
    new Option(
      '--jwks-token-file <file>',
      "jwt: bearer token sent with the JWKS URL request, re-read each fetch (the API server's /openid/v1/jwks needs one)",
    ).env(env('JWKS_TOKEN_FILE')),
    durationOption(
      '--jwks-refresh <duration>',
      'jwt: fetch the --jwks-url JWKS again at least this often; a shorter Cache-Control max-age wins, down to 10s (default: 5m)',
    ).env(env('JWKS_REFRESH')),
    durationOption(
      '--jwks-max-age <duration>',
      'jwt: stop trusting --jwks-url keys that could not be refreshed for this long; calls answer UNAVAILABLE until a fetch succeeds (default: 1h)',
    ).env(env('JWKS_MAX_AGE')),
    new Option('--token-issuer <iss>', 'jwt: required "iss" of service-account tokens').env(
      env('TOKEN_ISSUER'),
    ),
    new Option('--token-audience <aud>', 'required token audience')
      .env(env('TOKEN_AUDIENCE'))
      .default(SERVE_DEFAULTS.audience),
    new Option(
      '--kubeconfig <file>',
      'the Kubernetes API of token-review and of the Istio impersonation check (default: in-cluster credentials)',
    ).env(env('KUBECONFIG')),
    new Option(
      '--token-review-cache <duration>',
      "token-review: how long a successful TokenReview is reused (0: ask the API server on every call); a deleted pod's token is accepted for at most this long",
    )
      .env(env('TOKEN_REVIEW_CACHE'))
      .default(SERVE_DEFAULTS.tokenReviewCache),
  ];
}

/** Leaf lifetime and key types, load limits, timing. */
function serveIssuanceOptions(): Option[] {
  return [
    new Option(
      '--max-in-flight-per-peer <n>',
      'Certify calls in flight from one client address before RESOURCE_EXHAUSTED (default: half of --max-in-flight)',
    ).env(env('MAX_IN_FLIGHT_PER_PEER')),
    durationOption('--leaf-lifetime <duration>', 'workload certificate lifetime', '24h').env(
      env('LEAF_LIFETIME'),
    ),
    durationOption(
      '--clock-skew <duration>',
      'leaf margin at both ends (notBefore − skew, notAfter + skew) and token clock tolerance',
      '20s',
    ).env(env('CLOCK_SKEW')),
    new Option('--leaf-key-types <list>', 'allowed workload key types, comma-separated (p256, p384)')
      .env(env('LEAF_KEY_TYPES'))
      .default('p256'),
    new Option('--max-in-flight <n>', 'Certify calls in flight before RESOURCE_EXHAUSTED')
      .env(env('MAX_IN_FLIGHT'))
      .default(String(SERVE_DEFAULTS.maxInFlight)),
    durationOption('--shutdown-grace <duration>', 'time in-flight calls get to finish on SIGTERM', '10s').env(
      env('SHUTDOWN_GRACE'),
    ),
    new Option(
      '--renew-after <time>',
      'RFC 3339 time: until then, answers set valid_until so that proxies renew at a random point of [TIME, TIME + --renew-spread] (never after notAfter)',
    ).env(env('RENEW_AFTER')),
    // no commander default: given without --renew-after it is a usage error (issuer/config.ts)
    durationOption(
      '--renew-spread <duration>',
      'window over which --renew-after spreads renewals (default: 10m; only with --renew-after)',
    ).env(env('RENEW_SPREAD')),
    durationOption('--poll-interval <duration>', 'how often credential files are re-read', '2s').env(
      env('POLL_INTERVAL'),
    ),
  ];
}

/** TLS on the gRPC port, logging, worker processes and their renewal caches. */
function serveTransportOptions(): Option[] {
  return [
    new Option('--tls-cert <file>', 'serve gRPC over TLS with this certificate chain').env(env('TLS_CERT')),
    new Option('--tls-key <file>', 'private key for --tls-cert').env(env('TLS_KEY')),
    new Option(
      '--tls-server-name <name>',
      'the DNS name clients ask for as SNI and check in the serving certificate (default: linkerd-identity.NS.serviceaccount.identity.NS.TRUST_DOMAIN); a certificate without it is logged as a warning and shown in /v1/status',
    ).env(env('TLS_SERVER_NAME')),
    new Option('--log-level <level>', 'log level')
      .choices(['debug', 'info', 'warn', 'error'])
      .env(env('LOG_LEVEL'))
      .default('info'),
    new Option(
      '--workers <n|auto>',
      'processes serving Certify on the shared gRPC port ("auto": one per core)',
    )
      .env(env('WORKERS'))
      .default('auto'),
    new Option(
      '--renewal-cache-memory <size>',
      'memory each process gives its renewal caches (verified CSRs and tokens; ≈ 630 bytes a pod), in bytes, KiB, MiB or GiB',
    )
      .env(env('RENEWAL_CACHE_MEMORY'))
      .default(SERVE_DEFAULTS.renewalCacheMemory),
  ];
}

/** The Istio CA API (IstioCertificateService/CreateCertificate) on a TLS listener of its own. */
function serveIstioOptions(): Option[] {
  return [
    new Option(
      '--istio-listen <host:port>',
      "serve Istio's CA API (CreateCertificate, for istio-agent and ztunnel) on this TLS address (off by default; needs --tls-cert and --tls-key)",
    ).env(env('ISTIO_LISTEN')),
    new Option(
      '--istio-token-audience <aud>',
      'the audience of the tokens Istio agents send (default: istio-ca; only with --istio-listen)',
    ).env(env('ISTIO_TOKEN_AUDIENCE')),
    new Option(
      '--istio-trusted-node-accounts <list>',
      'NS/SA,...: the accounts that may ask for ImpersonatedIdentity (e.g. istio-system/ztunnel; default: none; only with --istio-listen), each time for a service account with a pod on the node of their own pod, checked against the Kubernetes API (--kubeconfig)',
    ).env(env('ISTIO_TRUSTED_NODE_ACCOUNTS')),
    // no commander default: given without --istio-listen it is a usage error (issuer/config.ts)
    durationOption(
      '--istio-max-ttl <duration>',
      'the longest validity_duration accepted (default: 24h, also the lifetime when none is asked; only with --istio-listen)',
    ).env(env('ISTIO_MAX_TTL')),
  ];
}
