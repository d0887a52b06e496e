import { Command, Option } from 'commander';
import { DEFAULTS, fingerprint } from '../../ca/index.js';
import { KEY_ALGORITHMS, parseKeyAlgorithm } from '../../ca/keys/index.js';
import { ANCHOR_FILES, createAnchorFiles, createCrossCertificateFile } from '../../ca/store/index.js';
import { durationOption, type CliContext } from './kit.js';

/** `lanyard anchor create`, `lanyard anchor cross-sign` */
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
  registerCrossSign(anchor, ctx);
}

/** `lanyard anchor cross-sign` */
function registerCrossSign(anchor: Command, ctx: CliContext): void {
  anchor
    .command('cross-sign')
    .description(
      `cross-sign a new anchor with an old one: FILE gets a CA certificate with the subject, key and SKI of SUBJECT_DIR/${ANCHOR_FILES.cert}, issued by the anchor in ANCHOR_DIR, so workloads that trust only the old anchor accept chains of the new one (serve it after the issuer certificate: issuer create --cross-signed)`,
    )
    .requiredOption(
      '--anchor <dir>',
      `the signing (old) anchor: directory holding ${ANCHOR_FILES.cert} and ${ANCHOR_FILES.key}`,
    )
    .requiredOption(
      '--subject <dir>',
      `the anchor to cross-sign (new): directory holding ${ANCHOR_FILES.cert} (its key is not read)`,
    )
    .requiredOption('--out <file>', 'file to write the cross certificate into (PEM)')
    .addOption(
      durationOption(
        '--lifetime <duration>',
        'validity period, capped at the earlier expiry of the two anchors (the default); both anchors must be valid now, and an old anchor with a path length below 2 is refused (ERR_CROSS_PATHLEN)',
      ),
    )
    .option('--force', 'replace an existing --out file', false)
    .option('--json', 'print JSON', false)
    .action(
      async (o: {
        anchor: string;
        subject: string;
        out: string;
        lifetime?: number;
        force: boolean;
        json: boolean;
      }) => {
        const { cert, path } = await createCrossCertificateFile({
          anchorDir: o.anchor,
          subjectDir: o.subject,
          outPath: o.out,
          now: ctx.clock.now(),
          force: o.force,
          ...(o.lifetime !== undefined ? { lifetimeMs: o.lifetime } : {}),
        });
        const summary = {
          path,
          serial: cert.serialHex,
          fingerprint: fingerprint(cert.der),
          subjectKeyId: cert.subjectKeyId?.toString('hex') ?? null,
          authorityKeyId: cert.authorityKeyId?.toString('hex') ?? null,
          notBefore: cert.notBefore.toISOString(),
          notAfter: cert.notAfter.toISOString(),
        };
        if (o.json) {
          ctx.out(JSON.stringify(summary, null, 2));
          return;
        }
        ctx.out(
          `created cross certificate ${path} (the anchor of ${o.subject}, signed by the anchor of ${o.anchor}), valid until ${summary.notAfter}`,
        );
        ctx.out(`fingerprint: ${summary.fingerprint}`);
        ctx.out(
          `serve it after the issuer certificate: lanyard issuer create --anchor ${o.subject} ... --cross-signed ${path}`,
        );
      },
    );
}
