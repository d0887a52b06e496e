import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import {
  ExitStatus,
  UsageError,
  collect,
  durationOption,
  formatDuration,
  parseCertificatesPem,
  readPemFile,
  writeFileAtomic,
  type CertificateInfo,
  type CliContext,
  FileError,
} from '../ca/index.js';
import { createTrustBundle, parseTrustBundle, type TrustBundle } from './bundle.js';
import { CHECK_DEFAULTS, checkMesh } from './check.js';
import {
  OFFLINE_DEFAULTS,
  offlineWindowMs,
  rotationStatus,
  type OfflineAssumptions,
  type OldLeafBasis,
  type RotationStatus,
} from './rotation.js';
import { loadCluster, parseClusterTargets, type ClusterSnapshot } from './sources.js';
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
        throw new FileError(
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
    throw new FileError('ERR_FILE_INVALID', `${which} must hold exactly one certificate to name an anchor`);
  return createTrustBundle(certs).anchors[0]?.fingerprint ?? which;
}

async function writeBundle(file: string, b: TrustBundle, overwrite: boolean): Promise<void> {
  try {
    await writeFileAtomic(file, b.toPem(), { overwrite });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_KEY_EXISTS') {
      throw new FileError(
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

/** `lanyard check`, `lanyard rotate plan|status` */
export function registerTrustCommands(program: Command, ctx: CliContext): void {
  program
    .command('check')
    .description(
      "check the whole mesh's trust: anchors and issuers within validity, each issuer chaining to its own bundle and to an anchor in every cluster's bundle. Exit 0 all well, 1 expired/invalid/untrusted, 3 expiring within the window",
    )
    .requiredOption(
      '--cluster <name=target>',
      'NAME=ADMIN_URL (http://host:9990) or NAME=ISSUER_DIR (repeatable)',
      collect,
    )
    .addOption(
      durationOption(
        '--warn <duration>',
        'warn when an issuer expires within this (anchors: within 60 days or this, whichever is longer)',
        '7d',
      ),
    )
    .option('--json', 'print JSON', false)
    .action(async (o: { cluster: string[]; warn?: number; json: boolean }) => {
      const clusters = await Promise.all(parseClusterTargets(o.cluster).map((t) => loadCluster(t)));
      const issuerWarnMs = o.warn ?? CHECK_DEFAULTS.issuerWarnMs;
      const report = checkMesh(clusters, ctx.clock.now(), {
        issuerWarnMs,
        anchorWarnMs: Math.max(CHECK_DEFAULTS.anchorWarnMs, issuerWarnMs),
      });
      if (o.json) ctx.out(JSON.stringify(report, null, 2));
      else {
        for (const f of report.findings)
          ctx.out(
            `${f.severity === 'ok' ? 'ok  ' : f.severity === 'warning' ? 'WARN' : 'FAIL'}  ${f.cluster ?? 'mesh'}: ${f.message}`,
          );
        ctx.out(
          report.exitCode === 0
            ? 'all well'
            : report.exitCode === 3
              ? 'something expires within the warning window'
              : 'trust is broken somewhere (see FAIL lines)',
        );
      }
      if (report.exitCode !== 0) throw new ExitStatus(report.exitCode);
    });

  const rotate = program.command('rotate').description('zero-downtime trust-anchor rotation across clusters');
  rotate
    .command('status')
    .description(
      'read every cluster and report the rotation phase and whether the next step is safe (exit 1 when trust is broken now, or an anchor left a bundle while leaves under it may be valid)',
    )
    .requiredOption('--cluster <name=target>', 'NAME=ADMIN_URL or NAME=ISSUER_DIR (repeatable)', collect)
    .option('--new-anchor <fingerprint>', 'the anchor being rolled in (default: the newest anchor found)')
    .addOption(offlineLifetimeOption())
    .addOption(offlinePollOption())
    .addOption(offlineSkewOption())
    .option('--json', 'print JSON', false)
    .action(async (o: { cluster: string[]; newAnchor?: string; json: boolean } & OfflineFlags) => {
      const clusters = await Promise.all(parseClusterTargets(o.cluster).map((t) => loadCluster(t)));
      const s = rotationStatus(clusters, ctx.clock.now(), {
        ...(o.newAnchor !== undefined ? { newAnchor: o.newAnchor } : {}),
        offline: offlineAssumptions(o),
      });
      if (o.json) ctx.out(JSON.stringify(s, null, 2));
      else printRotationStatus(ctx, s, offlineAssumptions(o));
      if (s.problems.length > 0) throw new ExitStatus(1);
    });

  rotate
    .command('plan')
    .description('print the rotation phases with the exact commands for these clusters')
    .requiredOption('--cluster <name=target>', 'NAME=ADMIN_URL or NAME=ISSUER_DIR (repeatable)', collect)
    .requiredOption(
      '--new-anchor <dir>',
      'directory of the new anchor (anchor.crt, anchor.key), made with `lanyard anchor create`',
    )
    .addOption(offlineLifetimeOption())
    .addOption(offlinePollOption())
    .addOption(offlineSkewOption())
    .action(async (o: { cluster: string[]; newAnchor: string } & OfflineFlags) => {
      const targets = parseClusterTargets(o.cluster);
      const clusters = await Promise.all(targets.map((t) => loadCluster(t)));
      const newAnchorPath = join(o.newAnchor, 'anchor.crt');
      const anchor = parseTrustBundle(await readPemFile(newAnchorPath), newAnchorPath).anchors[0];
      if (anchor === undefined) throw new FileError('ERR_FILE_INVALID', `${newAnchorPath} holds no anchor`);
      for (const line of rotationPlan(clusters, {
        newAnchorDir: o.newAnchor,
        newAnchor: anchor,
        offline: offlineAssumptions(o),
      }))
        ctx.out(line);
    });
}

interface OfflineFlags {
  maxLeafLifetime: number;
  pollInterval: number;
  clockSkew: number;
}

function offlineLifetimeOption(): Option {
  return durationOption(
    '--max-leaf-lifetime <duration>',
    'ISSUER_DIR clusters: the longest --leaf-lifetime any of their issuers uses (bounds when old leaves expire)',
    durationText(OFFLINE_DEFAULTS.maxLeafLifetimeMs),
  );
}
function offlinePollOption(): Option {
  return durationOption(
    '--poll-interval <duration>',
    "ISSUER_DIR clusters: the issuers' --poll-interval (how soon they pick up new files)",
    durationText(OFFLINE_DEFAULTS.pollIntervalMs),
  );
}
function offlineSkewOption(): Option {
  return durationOption(
    '--clock-skew <duration>',
    "ISSUER_DIR clusters: the issuers' --clock-skew",
    durationText(OFFLINE_DEFAULTS.clockSkewMs),
  );
}

/**
 * A default as a flag value: in the largest of h, m, s, ms that divides it ("24h", "20s"). Not
 * formatDuration, whose "1d 0h" does not parse back as a flag.
 */
function durationText(ms: number): string {
  const unit = (
    [
      ['h', 3_600_000],
      ['m', 60_000],
      ['s', 1000],
    ] as const
  ).find(([, n]) => ms % n === 0);
  return unit === undefined ? `${ms}ms` : `${ms / unit[1]}${unit[0]}`;
}

function offlineAssumptions(o: OfflineFlags): OfflineAssumptions {
  return { maxLeafLifetimeMs: o.maxLeafLifetime, pollIntervalMs: o.pollInterval, clockSkewMs: o.clockSkew };
}

/** The flags that reproduce non-default offline assumptions on another command line. */
function offlineFlags(a: OfflineAssumptions): string {
  const parts: string[] = [];
  if (a.maxLeafLifetimeMs !== OFFLINE_DEFAULTS.maxLeafLifetimeMs)
    parts.push(`--max-leaf-lifetime ${a.maxLeafLifetimeMs}ms`);
  if (a.pollIntervalMs !== OFFLINE_DEFAULTS.pollIntervalMs)
    parts.push(`--poll-interval ${a.pollIntervalMs}ms`);
  if (a.clockSkewMs !== OFFLINE_DEFAULTS.clockSkewMs) parts.push(`--clock-skew ${a.clockSkewMs}ms`);
  return parts.map((p) => ` ${p}`).join('');
}

const BASIS_TEXT: Record<OldLeafBasis, (a: OfflineAssumptions) => string> = {
  'issuance-record': () => "the issuer's record of the leaves it signed, + clock skew",
  'credential-loaded': () =>
    'when the issuer loaded its current credential + its leaf lifetime + 2 × clock skew (no leaf under another anchor recorded)',
  'issuer-files-changed': (a) =>
    `when the issuer files last changed + poll interval ${formatDuration(a.pollIntervalMs)} + max leaf lifetime ${formatDuration(a.maxLeafLifetimeMs)} + 2 × clock skew ${formatDuration(a.clockSkewMs)} (a directory keeps no issuance record)`,
};

function printRotationStatus(ctx: CliContext, s: RotationStatus, offline: OfflineAssumptions): void {
  const steady = s.phase === 'steady';
  ctx.out(`phase: ${steady ? 'steady (no rotation in progress, or rotation complete)' : `${s.phase} of 3`}`);
  if (s.newAnchor !== null)
    ctx.out(`${steady ? 'anchor' : 'new anchor'}: ${s.newAnchor.subject} ${s.newAnchor.fingerprint}`);
  for (const a of s.oldAnchors) ctx.out(`old anchor: ${a.subject} ${a.fingerprint}`);
  for (const r of s.earlyRemovals)
    ctx.out(
      `removed anchor: ${r.anchorFingerprint} (missing from ${r.clusters.join(', ')}; safe to remove after ${r.safeAfter ?? 'an unknown time'})`,
    );
  for (const c of s.clusters) {
    const bundle = steady
      ? `bundle ${c.bundleHasNew ? 'has' : 'LACKS'} the anchor`
      : `bundle ${c.bundleHasNew ? 'has' : 'LACKS'} the new anchor${c.oldAnchorsInBundle.length > 0 ? ' and still holds the old' : ''}`;
    const issuer = steady
      ? `issuer ${c.issuerUnderNew ? 'under it' : 'under another anchor'}`
      : `issuer under ${c.issuerUnderNew ? 'the new anchor' : 'an old anchor'}`;
    const bound =
      c.oldLeavesValidUntil !== null && c.oldLeavesBasis !== null
        ? `; leaves it signed under other anchors valid until ${c.oldLeavesValidUntil} (from ${BASIS_TEXT[c.oldLeavesBasis](offline)})`
        : '';
    ctx.out(`  ${c.name}: ${bundle}; ${issuer}${bound}`);
  }
  for (const p of s.problems) ctx.out(`UNSAFE: ${p}`);
  ctx.out(
    `next: ${s.next.action}${s.next.clusters.length > 0 ? ` (${s.next.clusters.join(', ')})` : ''} — ${s.next.safe ? 'safe' : 'NOT SAFE'}: ${s.next.reason}`,
  );
}

/** The phases as commands for these clusters (directory sources get file commands, admin sources Kubernetes ones). */
export function rotationPlan(
  clusters: readonly ClusterSnapshot[],
  o: {
    newAnchorDir: string;
    newAnchor: { fingerprint: string; subject: string };
    offline?: OfflineAssumptions;
  },
): string[] {
  const offline = o.offline ?? OFFLINE_DEFAULTS;
  const targets = clusters.map((c) => `--cluster ${c.name}=${c.source}`).join(' ');
  const status = `${targets}${clusters.some((c) => c.kind === 'dir') ? offlineFlags(offline) : ''}`;
  const lines: string[] = [];
  lines.push(`Rotating to ${o.newAnchor.subject} (${o.newAnchor.fingerprint}). After each phase run:`);
  lines.push(`  lanyard rotate status ${status}`);
  lines.push('and go on only when it says the next step is safe.');
  lines.push('');
  lines.push('Phase 1: add the new anchor to every bundle (adding never breaks a handshake).');
  for (const c of clusters) {
    if (c.kind === 'dir')
      lines.push(
        `  lanyard bundle add ${c.bundlePath ?? join(c.source, 'ca.crt')} ${join(o.newAnchorDir, 'anchor.crt')}`,
      );
    else {
      lines.push(
        `  # ${c.name}: fetch the bundle, add the anchor, apply the ConfigMap the issuer and the proxies mount`,
      );
      lines.push(`  curl -fsS ${c.source}/v1/bundle > ${c.name}-bundle.crt`);
      lines.push(`  lanyard bundle add ${c.name}-bundle.crt ${join(o.newAnchorDir, 'anchor.crt')}`);
      lines.push(
        `  lanyard bundle export ${c.name}-bundle.crt --format configmap | kubectl --context ${c.name} apply -f -`,
      );
    }
  }
  lines.push('  Proxies that read trust anchors only at start must be restarted (rolling) before phase 2.');
  lines.push('');
  lines.push(
    'Phase 2: re-issue every issuer under the new anchor (the issuers reload it without a restart).',
  );
  for (const c of clusters) {
    lines.push(
      `  lanyard issuer create --anchor ${o.newAnchorDir} --cluster ${c.name} --out ${c.name}-issuer-next`,
    );
    if (c.kind === 'dir') {
      // Key and certificate are copied, never ca.crt: the bundle must keep the old anchor until phase 3.
      lines.push(`  cp ${c.name}-issuer-next/tls.key ${c.name}-issuer-next/tls.crt ${c.source}/`);
    } else {
      lines.push(
        `  kubectl --context ${c.name} -n linkerd create secret tls linkerd-identity-issuer --cert=${c.name}-issuer-next/tls.crt --key=${c.name}-issuer-next/tls.key --dry-run=client -o yaml | kubectl --context ${c.name} apply -f -`,
      );
    }
  }
  lines.push('');
  lines.push(
    'Phase 3: wait until no leaf signed under the old anchor can be valid (rotate status prints the time), then remove it.',
  );
  const dirs = clusters.filter((c) => c.kind === 'dir').map((c) => c.name);
  if (dirs.length > 0) {
    lines.push(
      `  For ${dirs.join(', ')} (directories keep no issuance record) the time is when the issuer files last changed`,
    );
    lines.push(
      `  + ${formatDuration(offline.pollIntervalMs)} poll + ${formatDuration(offline.maxLeafLifetimeMs)} max leaf lifetime + 2 × ${formatDuration(offline.clockSkewMs)} skew: about ${formatDuration(offlineWindowMs(offline))} after phase 2.`,
    );
    lines.push(
      '  If an issuer runs with a longer --leaf-lifetime or --poll-interval, pass them to rotate status (--max-leaf-lifetime, --poll-interval).',
    );
  }
  for (const c of clusters) {
    for (const a of c.bundle.anchors.filter((x) => x.fingerprint !== o.newAnchor.fingerprint)) {
      if (c.kind === 'dir')
        lines.push(`  lanyard bundle remove ${c.bundlePath ?? join(c.source, 'ca.crt')} ${a.fingerprint}`);
      else {
        lines.push(`  lanyard bundle remove ${c.name}-bundle.crt ${a.fingerprint}`);
        lines.push(
          `  lanyard bundle export ${c.name}-bundle.crt --format configmap | kubectl --context ${c.name} apply -f -`,
        );
      }
    }
  }
  lines.push('');
  lines.push(`Finally: lanyard check ${targets}`);
  return lines;
}
