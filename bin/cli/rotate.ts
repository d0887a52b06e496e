import { Command, Option } from 'commander';
import { ExitStatus, collect, durationOption, type CliContext } from './kit.js';
import { formatDuration } from '../../ca/index.js';
import { clusterRotationPlan, clusterRotationStatus } from '../../trust-bundles/index.js';
import type { PlanPhase, RotationPlan } from '../../trust-bundles/index.js';
import {
  OFFLINE_DEFAULTS,
  type OfflineAssumptions,
  type OldLeafBasis,
  type RotationStatus,
} from '../../trust-bundles/index.js';

/** `lanyard rotate status|plan` */
export function registerRotateCommands(program: Command, ctx: CliContext): void {
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
      const offline = offlineAssumptions(o);
      const s = await clusterRotationStatus(o.cluster, ctx.clock, {
        ...(o.newAnchor !== undefined ? { newAnchor: o.newAnchor } : {}),
        offline,
      });
      if (o.json) ctx.out(JSON.stringify(s, null, 2));
      else printRotationStatus(ctx, s, offline);
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
      const plan = await clusterRotationPlan(o.cluster, {
        newAnchorDir: o.newAnchor,
        offline: offlineAssumptions(o),
      });
      for (const line of rotationPlanText(plan)) ctx.out(line);
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

const PHASE_TITLE: Record<PlanPhase['action'], string> = {
  'add-new-anchor': 'add the new anchor to every bundle (adding never breaks a handshake).',
  'reissue-issuers': 're-issue every issuer under the new anchor (the issuers reload it without a restart).',
  'remove-old-anchors':
    'wait until no leaf signed under the old anchor can be valid (rotate status prints the time), then remove it.',
};

/** The plan as the lines `rotate plan` prints. */
export function rotationPlanText(plan: RotationPlan): string[] {
  const lines = [
    `Rotating to ${plan.newAnchor.subject} (${plan.newAnchor.fingerprint}). After each phase run:`,
    `  ${plan.statusCommand}`,
    'and go on only when it says the next step is safe.',
  ];
  plan.phases.forEach((phase, i) => {
    lines.push('', `Phase ${phase.phase}: ${PHASE_TITLE[phase.action]}`, ...waitText(phase));
    for (const step of phase.steps) {
      if (phase.action === 'add-new-anchor' && step.kind === 'admin')
        lines.push(
          `  # ${step.cluster}: fetch the bundle, add the anchor, apply the ConfigMap the issuer and the proxies mount`,
        );
      lines.push(...step.commands.map((c) => `  ${c}`));
    }
    const next = plan.phases[i + 1];
    if (next?.waitsFor.kind === 'new-anchor-everywhere' && next.waitsFor.restartProxies)
      lines.push(
        `  Proxies that read trust anchors only at start must be restarted (rolling) before phase ${next.phase}.`,
      );
  });
  lines.push('', `Finally: ${plan.finalCommand}`);
  return lines;
}

/** Phase 3 for directory clusters: how the time to wait for is found, under which assumptions. */
function waitText(phase: PlanPhase): string[] {
  if (phase.waitsFor.kind !== 'old-leaves-expired' || phase.waitsFor.offline === null) return [];
  const w = phase.waitsFor.offline;
  return [
    `  For ${w.clusters.join(', ')} (directories keep no issuance record) the time is when the issuer files last changed`,
    `  + ${formatDuration(w.pollIntervalMs)} poll + ${formatDuration(w.maxLeafLifetimeMs)} max leaf lifetime + 2 × ${formatDuration(w.clockSkewMs)} skew: about ${formatDuration(w.windowMs)} after phase 2.`,
    '  If an issuer runs with a longer --leaf-lifetime or --poll-interval, pass them to rotate status (--max-leaf-lifetime, --poll-interval).',
  ];
}
