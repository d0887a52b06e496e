import { Command } from 'commander';
import { isDns1123Label, UsageError } from '../../ca/index.js';
import { DEV_TOKEN_ISSUER, loadOrCreateSigningKeyDir, mintServiceAccountToken } from '../token/index.js';
import { durationOption, type CliContext } from './kit.js';

/** `lanyard token`: a dev service-account token (bin/token), signed with a local key. */
export function registerTokenCommand(program: Command, ctx: CliContext): void {
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
        const { key, created } = await loadOrCreateSigningKeyDir(o.signingKeyDir, { clock: ctx.clock });
        if (created)
          ctx.err(`created a new signing key in ${o.signingKeyDir}; its public JWKS is ${key.jwksPath}`);
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
}
