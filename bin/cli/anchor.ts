import { Command, Option } from 'commander';
import { DEFAULTS } from '../../ca/index.js';
import { KEY_ALGORITHMS, parseKeyAlgorithm } from '../../ca/keys/index.js';
import { ANCHOR_FILES, createAnchorFiles } from '../../ca/store/index.js';
import { durationOption, type CliContext } from './kit.js';

/** `lanyard anchor create` */
export function registerAnchorCommands(program: Command, ctx: CliContext): void {
  const anchor = program
    .command('anchor')
    .description('manage the trust anchor (root CA) shared by every cluster');
  anchor
    .command('create')
    .description(
      `create a self-signed trust anchor: DIR/${ANCHOR_FILES.cert} and DIR/${ANCHOR_FILES.key} (mode 0600)`,
    )
    .requiredOption('--out <dir>', 'directory to write the anchor into (created if missing)')
    .option('--common-name <cn>', 'subject common name', DEFAULTS.anchorCommonName)
    .addOption(new Option('--key-type <type>', 'key type').choices([...KEY_ALGORITHMS]).default('p256'))
    .addOption(durationOption('--lifetime <duration>', 'validity period', '87600h'))
    .option('--force', 'replace an existing anchor key and certificate', false)
    .action(
      async (o: { out: string; commonName: string; keyType: string; lifetime: number; force: boolean }) => {
        const { cert, certPath, keyPath } = await createAnchorFiles(o.out, {
          now: ctx.clock.now(),
          keyType: parseKeyAlgorithm(o.keyType),
          commonName: o.commonName,
          lifetimeMs: o.lifetime,
          force: o.force,
        });
        ctx.out(
          `created trust anchor ${certPath} (${o.keyType}, valid until ${cert.notAfter.toISOString()})`,
        );
        ctx.out(`key: ${keyPath} (keep it offline; it signs every cluster's issuer)`);
      },
    );
}
