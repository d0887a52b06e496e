import type { Command } from 'commander';
import { ExitStatus, collect, durationOption, type CliContext } from './kit.js';
import type { CheckReport } from '../../trust-bundles/index.js';
import { checkClusters } from '../../trust-bundles/index.js';

/** `lanyard check` */
export function registerCheckCommand(program: Command, ctx: CliContext): void {
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
      const report = await checkClusters(o.cluster, ctx.clock, {
        ...(o.warn !== undefined ? { issuerWarnMs: o.warn } : {}),
      });
      if (o.json) ctx.out(JSON.stringify(report, null, 2));
      else for (const line of checkReportText(report)) ctx.out(line);
      if (report.exitCode !== 0) throw new ExitStatus(report.exitCode);
    });
}

/** The report as the lines `check` prints: one per finding, then the verdict. */
export function checkReportText(report: CheckReport): string[] {
  const mark = { ok: 'ok  ', warning: 'WARN', error: 'FAIL' } as const;
  return [
    ...report.findings.map((f) => `${mark[f.severity]}  ${f.cluster ?? 'mesh'}: ${f.message}`),
    report.exitCode === 0
      ? 'all well'
      : report.exitCode === 3
        ? 'something expires within the warning window'
        : 'trust is broken somewhere (see FAIL lines)',
  ];
}
