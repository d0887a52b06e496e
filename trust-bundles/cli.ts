import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import {
  CredentialError,
  UsageError,
  parseCertificatesPem,
  readPemFile,
  writeFileAtomic,
  type CertificateInfo,
  type CliContext,
} from '../ca/index.js';
import { createTrustBundle, parseTrustBundle, type TrustBundle } from './bundle.js';
import {
  BUNDLE_FORMATS,
  CONFIGMAP_DEFAULTS,
  toConfigMap,
  toSpiffeBundle,
  type BundleFormat,
} from './formats.js';

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
      const b = createTrustBundle(await readAnchors(anchors));
      await writeBundle(o.out, b, o.force);
      ctx.out(`wrote ${o.out} with ${b.anchors.length} anchor(s)`);
      printAnchors(ctx, b);
    });

  bundle
    .command('add')
    .description('add anchors to a bundle (already present ones are kept once)')
    .argument('<file>', 'bundle file')
    .argument('<anchor...>', 'PEM files with anchor certificates')
    .action(async (file: string, anchors: string[]) => {
      const b = await readBundleFile(file);
      const next = b.add(await readAnchors(anchors));
      await writeBundle(file, next, true);
      ctx.out(`${file}: ${b.anchors.length} → ${next.anchors.length} anchor(s)`);
      printAnchors(ctx, next);
    });

  bundle
    .command('remove')
    .description(
      'remove one anchor from a bundle, named by SHA-256 fingerprint (or a unique prefix) or by its certificate file',
    )
    .argument('<file>', 'bundle file')
    .argument('<anchor>', 'fingerprint, fingerprint prefix, or a PEM file holding the anchor')
    .action(async (file: string, which: string) => {
      const b = await readBundleFile(file);
      const fp = await fingerprintArgument(which);
      const next = b.remove(fp);
      if (next.anchors.length === 0) {
        throw new CredentialError(
          'ERR_FILE_INVALID',
          `removing ${which} would leave ${file} empty; nothing changed`,
        );
      }
      await writeBundle(file, next, true);
      ctx.out(`${file}: ${b.anchors.length} → ${next.anchors.length} anchor(s)`);
      printAnchors(ctx, next);
    });

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
      'print a bundle as PEM (ca-bundle.crt), a SPIFFE trust bundle (JWKS) or a Kubernetes ConfigMap',
    )
    .argument('<file>', 'bundle file')
    .addOption(
      new Option('--format <format>', 'output format').choices([...BUNDLE_FORMATS]).makeOptionMandatory(),
    )
    .option('--out <file>', 'write here (atomically) instead of standard output')
    .option('--name <name>', 'configmap: metadata.name', CONFIGMAP_DEFAULTS.name)
    .option('--namespace <ns>', 'configmap: metadata.namespace', CONFIGMAP_DEFAULTS.namespace)
    .option('--key <key>', 'configmap: data key', CONFIGMAP_DEFAULTS.key)
    .option('--sequence <n>', 'spiffe: spiffe_sequence', '1')
    .option('--refresh-hint <seconds>', 'spiffe: spiffe_refresh_hint in seconds', '300')
    .action(
      async (
        file: string,
        o: {
          format: BundleFormat;
          out?: string;
          name: string;
          namespace: string;
          key: string;
          sequence: string;
          refreshHint: string;
        },
      ) => {
        const b = await readBundleFile(file);
        const text = renderBundle(b, o.format, {
          name: o.name,
          namespace: o.namespace,
          key: o.key,
          sequence: nonNegativeInt(o.sequence, '--sequence'),
          refreshHintSeconds: nonNegativeInt(o.refreshHint, '--refresh-hint'),
        });
        if (o.out !== undefined) {
          await writeFileAtomic(o.out, text, { overwrite: true });
          ctx.out(`wrote ${o.out} (${o.format})`);
        } else {
          ctx.out(text.replace(/\n$/, ''));
        }
      },
    );
}

export function renderBundle(
  b: TrustBundle,
  format: BundleFormat,
  o: { name?: string; namespace?: string; key?: string; sequence?: number; refreshHintSeconds?: number } = {},
): string {
  switch (format) {
    case 'pem':
      return b.toPem();
    case 'spiffe':
      return `${JSON.stringify(toSpiffeBundle(b, { sequence: o.sequence ?? 1, refreshHintSeconds: o.refreshHintSeconds ?? 300 }), null, 2)}\n`;
    case 'configmap':
      return toConfigMap(b, {
        ...(o.name !== undefined ? { name: o.name } : {}),
        ...(o.namespace !== undefined ? { namespace: o.namespace } : {}),
        ...(o.key !== undefined ? { key: o.key } : {}),
      });
  }
}

export async function readBundleFile(file: string): Promise<TrustBundle> {
  return parseTrustBundle(await readPemFile(file), file);
}

async function readAnchors(files: readonly string[]): Promise<CertificateInfo[]> {
  const out: CertificateInfo[] = [];
  for (const f of files)
    out.push(...parseTrustBundle(await readPemFile(f), f).anchors.map((a) => a.certificate));
  return out;
}

async function fingerprintArgument(which: string): Promise<string> {
  const asFile = await readFile(which, 'utf8').then(
    (t) => t,
    () => undefined,
  );
  if (asFile === undefined) return which;
  const certs = parseCertificatesPem(asFile, which);
  if (certs.length !== 1)
    throw new CredentialError(
      'ERR_FILE_INVALID',
      `${which} must hold exactly one certificate to name an anchor`,
    );
  return createTrustBundle(certs).anchors[0]?.fingerprint ?? which;
}

async function writeBundle(file: string, b: TrustBundle, overwrite: boolean): Promise<void> {
  try {
    await writeFileAtomic(file, b.toPem(), { overwrite });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_KEY_EXISTS') {
      throw new CredentialError(
        'ERR_FILE_INVALID',
        `${file} already exists; use "lanyard bundle add" or pass --force`,
      );
    }
    throw err;
  }
}

function printAnchors(ctx: CliContext, b: TrustBundle): void {
  for (const a of b.anchors) {
    ctx.out(`  ${a.fingerprint}  ${a.subject}  ${a.notBefore.toISOString()} → ${a.notAfter.toISOString()}`);
  }
}

function nonNegativeInt(s: string, flag: string): number {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`${flag} must be a non-negative integer`);
  return n;
}
