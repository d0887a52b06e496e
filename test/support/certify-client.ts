import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { systemClock } from '../../ca/index.js';
import type { CertifyClientOptions } from '../../bin/agent/agent.js';

/** The identity of the workload `web` in namespace `default`, as a Linkerd proxy names it. */
export const WEB_IDENTITY = 'web.default.serviceaccount.identity.linkerd.cluster.local';

/**
 * The options of a certify client for the workload `web` whose files are in `dir` as a pod holds
 * them: DIR/token, DIR/anchors.pem, and its output in DIR/out; on the system clock, logging nothing.
 * Spread them and add or replace what a test needs.
 */
export function clientOptions(dir: string, server: string): CertifyClientOptions {
  return {
    server,
    identity: WEB_IDENTITY,
    tokenFile: join(dir, 'token'),
    outDir: join(dir, 'out'),
    trustAnchorsFile: join(dir, 'anchors.pem'),
    clock: systemClock,
    logger: pino({ level: 'silent' }),
  };
}

/** Writes DIR/token and DIR/anchors.pem (see clientOptions). */
export function writeClientFiles(dir: string, anchorsPem: string, token = 'sa:default:web\n'): void {
  writeFileSync(join(dir, 'token'), token);
  writeFileSync(join(dir, 'anchors.pem'), anchorsPem);
}

/** The `lanyard certify` arguments that name the files of clientOptions(dir, server). */
export function certifyArgs(dir: string, server: string, out = join(dir, 'out')): string[] {
  return [
    'certify',
    '--server',
    server,
    '--identity',
    WEB_IDENTITY,
    '--token-file',
    join(dir, 'token'),
    '--trust-anchors',
    join(dir, 'anchors.pem'),
    '--out',
    out,
  ];
}
