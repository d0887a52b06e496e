import { Command, Option } from 'commander';
import { join } from 'node:path';
import { UsageError } from '../../ca/index.js';
import { createLogger, parseHostPort } from '../../issuer/index.js';
import { DASHBOARD_DEFAULTS, startDashboard, type RunningDashboard } from '../dashboard/index.js';
import { startDevEnvironment } from '../dev/index.js';
import { waitForSignal, type CliContext } from './kit.js';

/** `lanyard dev`: the local two-cluster plane (bin/dev), served until a signal. */
export function registerDevCommand(program: Command, ctx: CliContext): void {
  program
    .command('dev')
    .description(
      'local demo: one shared anchor and two clusters (east, west), each with an issuer and a token-signing key, served on loopback until interrupted',
    )
    .option(
      '--state-dir <dir>',
      'where the anchor, issuers and signing keys live (created on first run, reused after)',
      '.lanyard',
    )
    .option('--base-port <port>', 'gRPC port of east; west uses the next one', '8080')
    .option('--admin-base-port <port>', 'admin port of east; west uses the next one', '9990')
    .option(
      '--dashboard-listen <host:port>',
      'where the dashboard of east and west is served',
      DASHBOARD_DEFAULTS.listen,
    )
    .addOption(
      new Option('--log-level <level>', 'issuer log level (logs go to standard error)')
        .choices(['debug', 'info', 'warn', 'error'])
        .default('warn'),
    )
    .action(
      async (o: {
        stateDir: string;
        basePort: string;
        adminBasePort: string;
        dashboardListen: string;
        logLevel: string;
      }) => {
        const dashboardAt = parseHostPort(o.dashboardListen, '--dashboard-listen');
        const env = await startDevEnvironment({
          stateDir: o.stateDir,
          basePort: port(o.basePort, '--base-port'),
          adminBasePort: port(o.adminBasePort, '--admin-base-port'),
          clock: ctx.clock,
          logger: createLogger({ level: o.logLevel, base: { service: 'lanyard-dev' } }),
        });
        let dashboard: RunningDashboard;
        try {
          dashboard = await startDashboard({
            clusters: env.clusters.map((c) => ({
              name: c.name,
              target: `http://127.0.0.1:${c.issuer.adminAddress.port}`,
            })),
            ...dashboardAt,
            refreshMs: DASHBOARD_DEFAULTS.refreshMs,
            timeoutMs: DASHBOARD_DEFAULTS.timeoutMs,
            clock: ctx.clock,
          });
        } catch (err) {
          await env.shutdown();
          throw err;
        }
        printDevGuide(ctx, env, o.stateDir, dashboard.url);
        await waitForSignal();
        await dashboard.close();
        await env.shutdown();
      },
    );
}

type DevEnvironment = Awaited<ReturnType<typeof startDevEnvironment>>;

/** What runs where, and the commands that get a certificate from each cluster. */
function printDevGuide(ctx: CliContext, env: DevEnvironment, stateDir: string, dashboardUrl: string): void {
  ctx.out(
    `${env.created ? 'created' : 'reusing'} ${stateDir}: one trust anchor (${join(env.anchorDir, 'anchor.crt')}), clusters ${env.clusters.map((c) => c.name).join(' and ')}`,
  );
  for (const c of env.clusters) {
    ctx.out(
      `  ${c.name}: gRPC 127.0.0.1:${c.issuer.grpcAddress.port}, admin http://127.0.0.1:${c.issuer.adminAddress.port} (/ready, /metrics, /v1/status, /v1/bundle)`,
    );
  }
  ctx.out(`  dashboard: ${dashboardUrl} (the mesh's trust at a glance; JSON at ${dashboardUrl}v1/mesh)`);
  ctx.out('');
  ctx.out('Get a certificate from each cluster (in another terminal, from this directory):');
  for (const c of env.clusters) {
    const id = `web.default.serviceaccount.identity.linkerd.cluster.local`;
    const out = join(stateDir, 'workloads', `${c.name}-web`);
    ctx.out('');
    ctx.out(
      `  npx lanyard token --signing-key-dir ${c.signingKeyDir} --namespace default --service-account web > ${out}.token`,
    );
    ctx.out(
      `  npx lanyard certify --server 127.0.0.1:${c.issuer.grpcAddress.port} --identity ${id} --token-file ${out}.token --trust-anchors ${join(env.anchorDir, 'anchor.crt')} --out ${out} --once`,
    );
    ctx.out(`  npx lanyard inspect ${join(out, 'tls.crt')}`);
  }
  ctx.out('');
  ctx.out('Press Ctrl-C to stop.');
}

function port(s: string, flag: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0 || n > 65534) throw new UsageError(`${flag} must be a port number`);
  return n;
}
