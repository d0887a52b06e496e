import { Command, Option } from 'commander';
import { UsageError } from '../../ca/index.js';
import { writeFileAtomic } from '../../ca/store/index.js';
import { type CliContext } from './kit.js';
import type { TrustBundle } from '../../trust-bundles/index.js';
import {
  addToBundleFile,
  createBundleFile,
  readBundleFile,
  removeFromBundleFile,
  type BundleChange,
} from '../../trust-bundles/index.js';
import {
  BUNDLE_FORMATS,
  CONFIGMAP_DEFAULTS,
  ISTIO_CONFIGMAP_DEFAULTS,
  serializeBundle,
  type BundleFormat,
  type BundleFormatOptions,
} from '../../trust-bundles/index.js';

/** `lanyard bundle create|add|remove|show|export` */
export function registerBundleCommands(program: Command, ctx: CliContext): void {
  const bundle = program
    .command('bundle')
    .description('trust bundles: the set of anchors every cluster trusts (ca-bundle.crt)');

  bundle
    .command('create')
    .description('write a new bundle from anchor certificates (CA certificates only; duplicates folded)')
    .requiredOption('--out <file>', 'bundle file to write (refused if it exists, unless --force)')
    .option('--force', 'replace an existing bundle file', false)
    .argument('<anchor...>', 'PEM files with anchor certificates (anchor.crt, ca.crt, another bundle)')
    .action(async (anchors: string[], o: { out: string; force: boolean }) => {
      const { after } = await createBundleFile(o.out, anchors, { force: o.force });
      ctx.out(`wrote ${o.out} with ${after.anchors.length} anchor(s)`);
      printAnchors(ctx, after);
    });

  bundle
    .command('add')
    .description('add anchors to a bundle (already present ones are kept once)')
    .argument('<file>', 'bundle file')
    .argument('<anchor...>', 'PEM files with anchor certificates')
    .action(async (file: string, anchors: string[]) => {
      printChange(ctx, await addToBundleFile(file, anchors));
    });

  bundle
    .command('remove')
    .description(
      'remove one anchor from a bundle, named by SHA-256 fingerprint (or a unique prefix) or by its certificate file',
    )
    .argument('<file>', 'bundle file')
    .argument('<anchor>', 'fingerprint, fingerprint prefix, or a PEM file holding the anchor')
    .action(async (file: string, which: string) => {
      printChange(ctx, await removeFromBundleFile(file, which));
    });

  registerBundleOutputCommands(bundle, ctx);
}

/** `lanyard bundle show|export` */
function registerBundleOutputCommands(bundle: Command, ctx: CliContext): void {
  bundle
    .command('show')
    .description('list the anchors of a bundle: fingerprint, subject, validity')
    .argument('<file>', 'bundle file')
    .option('--json', 'print JSON', false)
    .action(async (file: string, o: { json: boolean }) => {
      const b = await readBundleFile(file);
      if (o.json) {
        ctx.out(
          JSON.stringify(
            b.anchors.map((a) => ({
              fingerprint: a.fingerprint,
              subject: a.subject,
              notBefore: a.notBefore.toISOString(),
              notAfter: a.notAfter.toISOString(),
            })),
            null,
            2,
          ),
        );
        return;
      }
      printAnchors(ctx, b);
    });

  bundle
    .command('export')
    .description(
      "print a bundle as PEM (ca-bundle.crt), a SPIFFE trust bundle (JWKS), a Kubernetes ConfigMap or Istio's root ConfigMap (istio-ca-root-cert, key root-cert.pem)",
    )
    .argument('<file>', 'bundle file')
    .addOption(
      new Option('--format <format>', 'output format').choices([...BUNDLE_FORMATS]).makeOptionMandatory(),
    )
    .option('--out <file>', 'write here (atomically) instead of standard output')
    .option(
      '--name <name>',
      `configmap, istio-configmap: metadata.name (default ${CONFIGMAP_DEFAULTS.name}; istio-configmap: ${ISTIO_CONFIGMAP_DEFAULTS.name})`,
    )
    .option(
      '--namespace <ns>',
      `configmap, istio-configmap: metadata.namespace (default ${CONFIGMAP_DEFAULTS.namespace}; istio-configmap: ${ISTIO_CONFIGMAP_DEFAULTS.namespace})`,
    )
    .option(
      '--key <key>',
      `configmap: data key (default ${CONFIGMAP_DEFAULTS.key}; istio-configmap always uses ${ISTIO_CONFIGMAP_DEFAULTS.key})`,
    )
    .option('--sequence <n>', 'spiffe: spiffe_sequence', '1')
    .option('--refresh-hint <seconds>', 'spiffe: spiffe_refresh_hint in seconds', '300')
    .action(
      async (
        file: string,
        o: {
          format: BundleFormat;
          out?: string;
          name?: string;
          namespace?: string;
          key?: string;
          sequence: string;
          refreshHint: string;
        },
      ) => {
        // the file is read before the flags are checked: a missing file is reported first, as always
        const b = await readBundleFile(file);
        const text = serializeBundle(b, o.format, formatOptions(o));
        if (o.out !== undefined) {
          await writeFileAtomic(o.out, text, { overwrite: true });
          ctx.out(`wrote ${o.out} (${o.format})`);
        } else {
          ctx.out(text.replace(/\n$/, ''));
        }
      },
    );
}

/** The export flags as serializeBundle options; `--key` is refused for Istio's fixed `root-cert.pem`. */
function formatOptions(o: {
  format: BundleFormat;
  name?: string;
  namespace?: string;
  key?: string;
  sequence: string;
  refreshHint: string;
}): BundleFormatOptions {
  if (o.format === 'istio-configmap' && o.key !== undefined)
    throw new UsageError(`--key: istio-configmap always uses ${ISTIO_CONFIGMAP_DEFAULTS.key}`);
  return {
    ...(o.name !== undefined ? { name: o.name } : {}),
    ...(o.namespace !== undefined ? { namespace: o.namespace } : {}),
    ...(o.key !== undefined ? { key: o.key } : {}),
    sequence: nonNegativeInt(o.sequence, '--sequence'),
    refreshHintSeconds: nonNegativeInt(o.refreshHint, '--refresh-hint'),
  };
}

function printAnchors(ctx: CliContext, b: TrustBundle): void {
  for (const a of b.anchors) {
    ctx.out(`  ${a.fingerprint}  ${a.subject}  ${a.notBefore.toISOString()} → ${a.notAfter.toISOString()}`);
  }
}

/** `file: 2 → 3 anchor(s)` and the anchors after the change. */
function printChange(ctx: CliContext, c: BundleChange): void {
  ctx.out(`${c.file}: ${c.before?.anchors.length ?? 0} → ${c.after.anchors.length} anchor(s)`);
  printAnchors(ctx, c.after);
}

function nonNegativeInt(s: string, flag: string): number {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`${flag} must be a non-negative integer`);
  return n;
}
