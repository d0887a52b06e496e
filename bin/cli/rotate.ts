import { Command, Option } from 'commander';
import { ExitStatus, checkFlags, collect, durationOption, durationText, type CliContext } from './kit.js';
import { parseDuration, parseRfc3339, UsageError } from '../../ca/index.js';
import { DEFAULT_RENEW_SPREAD_MS } from '../../issuer/index.js';
import {
  clusterRotationPlan,
  clusterRotationStatus,
  RotationInputError,
  type RotationInput,
} from '../../trust-bundles/index.js';
import { printRotationStatus, rotationPlanText } from './rotate-text.js';
import { OFFLINE_DEFAULTS, type OfflineAssumptions } from '../../trust-bundles/index.js';

/** `lanyard rotate status|plan` */
export function registerRotateCommands(program: Command, ctx: CliContext): void {
  const rotate = program
    .command('rotate')
    .description('trust-anchor rotation across clusters by cross-signing, with no pod restarts');
  rotate
    .command('status')
    .description(
      'read every cluster (and its pods with --kubeconfig) and report each phase and the next step (exit 1 when trust is broken now, 3 when the next step is not safe yet or its precondition cannot be established)',
    )
    .requiredOption('--cluster <name=target>', 'NAME=ADMIN_URL or NAME=ISSUER_DIR (repeatable)', collect)
    .option(
      '--new-anchor <dir|file|fingerprint>',
      'the anchor being rolled in: its directory, certificate file or fingerprint (default: the anchor the cross certificates name, else the newest)',
    )
    .option('--cross-signed <file>', 'the cross certificate (lanyard anchor cross-sign --out)')
    .option(
      '--kubeconfig <name=file>',
      "NAME=KUBECONFIG: list that cluster's pods to find proxies that trust only the old anchor (repeatable)",
      collect,
    )
    .addOption(offlineLifetimeOption())
    .addOption(offlinePollOption())
    .addOption(offlineSkewOption())
    .addOption(propagationMarginOption())
    .option('--json', 'print JSON', false)
    .action(async (o: StatusFlags) => {
      const offline = offlineAssumptions(o);
      const s = await clusterRotationStatus(o.cluster, ctx.clock, {
        ...(o.newAnchor !== undefined ? { newAnchor: o.newAnchor } : {}),
        ...(o.crossSigned !== undefined ? { crossSigned: o.crossSigned } : {}),
        ...(o.kubeconfig !== undefined ? { kubeconfigs: o.kubeconfig } : {}),
        offline,
      }).catch(inputAsUsage);
      if (o.json) ctx.out(JSON.stringify(s, null, 2));
      else printRotationStatus(ctx, s, offline);
      if (s.problems.length > 0) throw new ExitStatus(1);
      if (!s.next.safe) throw new ExitStatus(3);
    });

  rotate
    .command('plan')
    .description('print the six rotation phases with the exact commands for these clusters')
    .requiredOption('--cluster <name=target>', 'NAME=ADMIN_URL or NAME=ISSUER_DIR (repeatable)', collect)
    .requiredOption('--new-anchor <dir>', 'directory of the new anchor, made with `lanyard anchor create`')
    .option(
      '--cross-signed <file>',
      'the cross certificate file (made by lanyard anchor cross-sign; required)',
    )
    .option('--old-anchor <dir>', 'the old anchor directory, when --cross-signed FILE is still to be made')
    .addOption(
      new Option(
        '--renew-after <time>',
        'optional renewal hint for the switch moment (RFC 3339), printed for phase 1 as serve flags',
      ).argParser(rfc3339Text),
    )
    .addOption(
      new Option(
        '--renew-spread <duration>',
        'the renewal hint window (with --renew-after; default 10m)',
      ).argParser((v: string) => {
        checkFlags(() => parseDuration(v));
        return v;
      }),
    )
    .addOption(offlineLifetimeOption())
    .addOption(offlinePollOption())
    .addOption(offlineSkewOption())
    .option('--json', 'print JSON', false)
    .action((o: PlanFlags) => printPlan(ctx, o));
}

/** `rotate plan`: the plan for these flags, as text or --json. */
async function printPlan(ctx: CliContext, o: PlanFlags): Promise<void> {
  // as serve: a spread without the time it spreads would be silently ignored
  if (o.renewSpread !== undefined && o.renewAfter === undefined)
    throw new UsageError('--renew-spread needs --renew-after');
  const plan = await clusterRotationPlan(o.cluster, ctx.clock, {
    newAnchorDir: o.newAnchor,
    ...(o.crossSigned !== undefined ? { crossSigned: o.crossSigned } : {}),
    ...(o.oldAnchor !== undefined ? { oldAnchorDir: o.oldAnchor } : {}),
    ...(o.renewAfter !== undefined
      ? { renewAfter: o.renewAfter, renewSpread: o.renewSpread ?? durationText(DEFAULT_RENEW_SPREAD_MS) }
      : {}),
    offline: offlineAssumptions(o),
  }).catch(inputAsUsage);
  if (o.json) ctx.out(JSON.stringify(plan, null, 2));
  else for (const line of rotationPlanText(plan)) ctx.out(line);
}

interface StatusFlags extends OfflineFlags {
  propagationMargin: number;
  cluster: string[];
  newAnchor?: string;
  crossSigned?: string;
  kubeconfig?: string[];
  json: boolean;
}

interface PlanFlags extends OfflineFlags {
  cluster: string[];
  newAnchor: string;
  crossSigned?: string;
  oldAnchor?: string;
  renewAfter?: string;
  renewSpread?: string;
  json: boolean;
}

const INPUT_FLAG: Record<RotationInput, string> = {
  'new-anchor': '--new-anchor',
  'cross-signed': '--cross-signed',
  'old-anchor': '--old-anchor',
  kubeconfig: '--kubeconfig',
};

/**
 * An RFC 3339 date-time with a zone, kept as written (it is printed as a serve flag): read by the
 * parser serve --renew-after uses, so every time printed is one serve accepts.
 */
function rfc3339Text(v: string): string {
  if (parseRfc3339(v) === undefined)
    throw new UsageError(`--renew-after "${v}" is not an RFC 3339 time (e.g. 2026-07-01T12:00:00Z)`);
  return v;
}

/** A missing or unusable rotation input is a usage error (exit 2) that keeps its code. */
function inputAsUsage(err: unknown): never {
  if (err instanceof RotationInputError)
    throw new UsageError(`${INPUT_FLAG[err.input]}: ${err.message}`, { cause: err });
  throw err;
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
function propagationMarginOption(): Option {
  // 0 is meaningful here (one replica per cluster, each given to --cluster): durations elsewhere are positive
  return new Option(
    '--propagation-margin <duration>',
    'ADMIN_URL clusters: added to the old-leaf bound read from one replica, for replicas that picked up the switched issuer Secret later (0s when every replica is given to --cluster)',
  )
    .argParser((v: string) => (/^0+(ms|s|m|h|d)?$/.test(v) ? 0 : parseDuration(v)))
    .default(OFFLINE_DEFAULTS.propagationMarginMs, durationText(OFFLINE_DEFAULTS.propagationMarginMs));
}
function offlineSkewOption(): Option {
  return durationOption(
    '--clock-skew <duration>',
    "ISSUER_DIR clusters: the issuers' --clock-skew",
    durationText(OFFLINE_DEFAULTS.clockSkewMs),
  );
}

function offlineAssumptions(o: OfflineFlags & { propagationMargin?: number }): OfflineAssumptions {
  return {
    maxLeafLifetimeMs: o.maxLeafLifetime,
    pollIntervalMs: o.pollInterval,
    clockSkewMs: o.clockSkew,
    propagationMarginMs: o.propagationMargin ?? OFFLINE_DEFAULTS.propagationMarginMs,
  };
}
