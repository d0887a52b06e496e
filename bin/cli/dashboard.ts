import type { Command } from 'commander';
import { UsageError } from '../../ca/index.js';
import { parseHostPort } from '../../issuer/index.js';
import { parseClusterTargets, type ClusterTarget } from '../../trust-bundles/index.js';
import { DASHBOARD_DEFAULTS, startDashboard } from '../dashboard/index.js';
import { collect, durationOption, durationText, waitForSignal, type CliContext } from './kit.js';

/** `lanyard dashboard`: the mesh's trust on one page (and GET /v1/mesh), served until a signal. */
export function registerDashboardCommand(program: Command, ctx: CliContext): void {
  program
    .command('dashboard')
    .description(
      "serve a page showing the mesh's trust at a glance: an expiry timeline, the trust matrix, the rotation phase and each cluster's state, read from the clusters' admin endpoints (GET only; JSON at /v1/mesh)",
    )
    .requiredOption('--cluster <name=url>', 'NAME=ADMIN_URL (http://host:9990) (repeatable)', collect)
    .option('--listen <host:port>', 'where the page is served', DASHBOARD_DEFAULTS.listen)
    .addOption(
      durationOption(
        '--refresh <duration>',
        'how often the page reloads itself (the clusters are read twice as often)',
        durationText(DASHBOARD_DEFAULTS.refreshMs),
      ),
    )
    .addOption(
      durationOption(
        '--timeout <duration>',
        'deadline of each request to a cluster (a slow cluster is shown broken, the others are not held up)',
        durationText(DASHBOARD_DEFAULTS.timeoutMs),
      ),
    )
    .addOption(
      durationOption(
        '--warn <duration>',
        'mark an issuer expiring within this (anchors: within 60 days or this, whichever is longer)',
        '7d',
      ),
    )
    .action(
      async (o: { cluster: string[]; listen: string; refresh: number; timeout: number; warn: number }) => {
        const clusters = dashboardTargets(o.cluster);
        const { host, port } = parseHostPort(o.listen, '--listen');
        if (o.refresh < 1000) throw new UsageError('--refresh must be at least 1s');
        const dashboard = await startDashboard({
          clusters,
          host,
          port,
          refreshMs: o.refresh,
          timeoutMs: o.timeout,
          clock: ctx.clock,
          view: { issuerWarnMs: o.warn },
        });
        ctx.out(
          `dashboard ${dashboard.url} (clusters ${clusters.map((c) => c.name).join(', ')}); Ctrl-C to stop`,
        );
        await waitForSignal();
        await dashboard.close();
      },
    );
}

/** `--cluster NAME=ADMIN_URL` values: admin URLs only (the page reads live issuers). */
export function dashboardTargets(values: readonly string[]): ClusterTarget[] {
  return parseClusterTargets(values).map((t) => {
    let url: URL | undefined;
    try {
      url = new URL(t.target);
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:'))
      throw new UsageError(
        `--cluster ${t.name}: the dashboard reads admin URLs (http://host:9990), not directories`,
      );
    return t;
  });
}
