import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  createAnchorCertificate,
  createFileKeyStore,
  createIssuerCertificate,
  encodePem,
  writeFileAtomic,
  type Clock,
} from '../ca/index.js';
import { createSigningKeyDir, DEV_TOKEN_ISSUER, SIGNING_KEY_FILES } from './authn/index.js';
import { buildIssuerConfig } from './config.js';
import { startIssuer, type RunningIssuer } from './main.js';

export const DEV_CLUSTERS = ['east', 'west'] as const;

export interface DevCluster {
  readonly name: string;
  readonly issuerDir: string;
  readonly signingKeyDir: string;
  readonly issuer: RunningIssuer;
}

export interface DevEnvironment {
  readonly stateDir: string;
  readonly anchorDir: string;
  readonly created: boolean;
  readonly clusters: readonly DevCluster[];
  shutdown(): Promise<void>;
}

/**
 * `lanyard dev`: on first run creates, under `stateDir`, one anchor and per cluster an issuer and a
 * token-signing key; then serves every cluster's issuer on loopback (gRPC on basePort + i, admin on
 * adminBasePort + i; 0 picks free ports).
 */
export async function startDevEnvironment(o: {
  stateDir: string;
  basePort: number;
  adminBasePort: number;
  clock: Clock;
  logger: Logger;
}): Promise<DevEnvironment> {
  const anchorDir = join(o.stateDir, 'anchor');
  const created = !(await exists(join(anchorDir, 'anchor.crt')));
  if (created) await createState(o.stateDir, o.clock);
  await mkdir(join(o.stateDir, 'workloads'), { recursive: true });
  const clusters: DevCluster[] = [];
  try {
    for (const [i, name] of DEV_CLUSTERS.entries()) {
      const issuerDir = join(o.stateDir, name, 'issuer');
      const signingKeyDir = join(o.stateDir, name, 'sa-signing');
      const config = buildIssuerConfig({
        issuerDir,
        listen: `127.0.0.1:${o.basePort === 0 ? 0 : o.basePort + i}`,
        adminListen: `127.0.0.1:${o.adminBasePort === 0 ? 0 : o.adminBasePort + i}`,
        cluster: name,
        trustDomain: 'cluster.local',
        controlNamespace: 'linkerd',
        auth: 'jwt',
        jwksFile: join(signingKeyDir, SIGNING_KEY_FILES.jwks),
        tokenIssuer: DEV_TOKEN_ISSUER,
        tokenAudience: 'identity.l5d.io',
        leafKeyTypes: 'p256',
        maxInFlight: '1024',
        logLevel: 'info',
      });
      const issuer = await startIssuer(config, { logger: o.logger.child({ cluster: name }), clock: o.clock });
      clusters.push({ name, issuerDir, signingKeyDir, issuer });
    }
  } catch (err) {
    await Promise.all(clusters.map((c) => c.issuer.shutdown(1000)));
    throw err;
  }
  return {
    stateDir: o.stateDir,
    anchorDir,
    created,
    clusters,
    shutdown: async () => {
      await Promise.all(clusters.map((c) => c.issuer.shutdown()));
    },
  };
}

async function createState(stateDir: string, clock: Clock): Promise<void> {
  const keys = createFileKeyStore();
  const anchorDir = join(stateDir, 'anchor');
  await mkdir(anchorDir, { recursive: true, mode: 0o700 });
  const anchorSigner = await keys.create(join(anchorDir, 'anchor.key'), 'p256', { force: true });
  const anchor = await createAnchorCertificate({ signer: anchorSigner, now: clock.now() });
  const anchorPem = encodePem('CERTIFICATE', anchor.der);
  for (const name of DEV_CLUSTERS) {
    const issuerDir = join(stateDir, name, 'issuer');
    await mkdir(issuerDir, { recursive: true, mode: 0o700 });
    const signer = await keys.create(join(issuerDir, 'tls.key'), 'p256', { force: true });
    const cert = await createIssuerCertificate({
      anchor,
      anchorSigner,
      issuerPublicKeyDer: signer.publicKeyDer,
      now: clock.now(),
      cluster: name,
    });
    await writeFileAtomic(join(issuerDir, 'tls.crt'), encodePem('CERTIFICATE', cert.der), {
      overwrite: true,
    });
    await writeFileAtomic(join(issuerDir, 'ca.crt'), anchorPem, { overwrite: true });
    await createSigningKeyDir(join(stateDir, name, 'sa-signing'), { force: true, clock });
  }
  // Written last: its presence marks a complete state directory.
  await writeFileAtomic(join(anchorDir, 'anchor.crt'), anchorPem, { overwrite: true });
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
