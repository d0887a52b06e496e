import { Command, Option } from 'commander';
import { LanyardError, parseDuration } from '../../ca/index.js';
import { createLogger } from '../../issuer/index.js';
import { createCertifyClient, describeError, errorCode } from '../agent/index.js';
import { waitForSignal, type CliContext } from './kit.js';

interface CertifyFlags {
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
}

/** `lanyard certify`: the workload agent (bin/agent), once or renewing until a signal. */
export function registerCertifyCommand(program: Command, ctx: CliContext): void {
  const certify = program
    .command('certify')
    .description(
      'get a workload certificate from an issuer, as a proxy does: key, CSR, Certify, verify, write OUT/tls.crt, tls.key, ca.crt',
    );
  addCertifyOptions(certify);
  certify.action((o: CertifyFlags) => certifyAction(o, ctx));
}

function addCertifyOptions(certify: Command): void {
  certify
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
    );
}

async function certifyAction(o: CertifyFlags, ctx: CliContext): Promise<void> {
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
}

/** A Certify failure reported with its gRPC status name, e.g. "PERMISSION_DENIED: …". */
export class CertifyFailed extends LanyardError<'ERR_CERTIFY_FAILED'> {
  constructor(readonly original: unknown) {
    super('ERR_CERTIFY_FAILED', `${errorCode(original)}: ${describeError(original)}`);
  }
}
