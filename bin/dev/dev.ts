import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  ANCHOR_FILES,
  createAnchorFiles,
  createIssuerFiles,
  loadAnchorDir,
  readPemFile,
  writeFileAtomic,
} from '../../ca/store/index.js';
import {
  checkValidity,
  createIssuerCredential,
  isLanyardError,
  type CertificateInfo,
  type Clock,
  FileError,
  restateError,
} from '../../ca/index.js';
import { createFileKeyStore, type Signer } from '../../ca/keys/index.js';
import {
  createSigningKeyDir,
  DEV_TOKEN_ISSUER,
  loadSigningKeyDir,
  SIGNING_KEY_FILES,
} from '../token/index.js';
import { buildIssuerConfig } from '../../issuer/index.js';
import { startIssuer, type RunningIssuer } from '../../issuer/index.js';

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
  /** this run wrote into the state directory (a first run, or one finishing an interrupted run) */
  readonly created: boolean;
  readonly clusters: readonly DevCluster[];
  shutdown(): Promise<void>;
}

/**
 * `lanyard dev`: under `stateDir`, creates what is missing of one anchor and per cluster an issuer and
 * a token-signing key, and checks what is there (prepareState); then serves every cluster's issuer on
 * loopback (gRPC on basePort + i, admin on adminBasePort + i; 0 picks free ports).
 */
export async function startDevEnvironment(o: {
  stateDir: string;
  basePort: number;
  adminBasePort: number;
  clock: Clock;
  logger: Logger;
}): Promise<DevEnvironment> {
  const anchorDir = join(o.stateDir, 'anchor');
  const created = await prepareState(o.stateDir, o.clock);
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

/**
 * Makes the state directory complete and usable: each key is written together with its certificate
 * (writeFilesAtomic), so a run stopped part-way leaves whole pairs, and the next run creates the rest.
 * What is there is checked first (pairs match, the issuers chain to the anchor and are valid now); a
 * half pair or an unusable file fails with its code, naming the file and the state directory to
 * delete. Returns whether anything was written.
 */
async function prepareState(stateDir: string, clock: Clock): Promise<boolean> {
  const { anchor, created: anchorCreated } = await ensureAnchor(stateDir, clock);
  let created = anchorCreated;
  for (const name of DEV_CLUSTERS) {
    if (await ensureIssuer(stateDir, name, anchor, clock)) created = true;
    if (await ensureSigningKey(stateDir, name, clock)) created = true;
  }
  return created;
}

interface DevAnchor {
  readonly signer: Signer;
  readonly cert: CertificateInfo;
  readonly certPem: string;
}

async function ensureAnchor(
  stateDir: string,
  clock: Clock,
): Promise<{ anchor: DevAnchor; created: boolean }> {
  const dir = join(stateDir, 'anchor');
  const certPath = join(dir, ANCHOR_FILES.cert);
  const keyPath = join(dir, ANCHOR_FILES.key);
  const pair = await pairState(stateDir, certPath, keyPath);
  if (pair === 'present') {
    const anchor = await loadAnchorDir(dir).catch(unusable(stateDir, dir));
    try {
      checkValidity(anchor.cert, clock.now(), 'the anchor');
    } catch (err) {
      unusable(stateDir, certPath)(err);
    }
    return { anchor, created: false };
  }
  // A new anchor: issuers made under an earlier one would not chain to it.
  for (const name of DEV_CLUSTERS) {
    const issuerDir = join(stateDir, name, 'issuer');
    for (const f of ['tls.crt', 'tls.key']) {
      if (await exists(join(issuerDir, f))) {
        throw new FileError(
          'ERR_FILE_NOT_FOUND',
          `${join(issuerDir, f)} exists but the anchor it was made under (${certPath}) does not; delete ${stateDir} to start again`,
        );
      }
    }
  }
  const { signer, cert, certPem } = await createAnchorFiles(dir, { now: clock.now(), dirMode: 0o700 });
  return { anchor: { signer, cert, certPem }, created: true };
}

async function ensureIssuer(
  stateDir: string,
  name: string,
  anchor: DevAnchor,
  clock: Clock,
): Promise<boolean> {
  const dir = join(stateDir, name, 'issuer');
  const certPath = join(dir, 'tls.crt');
  const keyPath = join(dir, 'tls.key');
  const caPath = join(dir, 'ca.crt');
  const pair = await pairState(stateDir, certPath, keyPath);
  if (pair === 'present') {
    try {
      createIssuerCredential({
        certificatePem: await readPemFile(certPath),
        signer: await createFileKeyStore().load(keyPath),
        // the anchor of this state directory, whatever ca.crt says
        anchorsPem: anchor.certPem,
        now: clock.now(),
      });
    } catch (err) {
      unusable(stateDir, dir)(err);
    }
    // ca.crt is a copy of the anchor: put back when missing or different
    const ca = await readFile(caPath, 'utf8').catch(() => undefined);
    if (ca === anchor.certPem) return false;
    await writeFileAtomic(caPath, anchor.certPem, { overwrite: true });
    return true;
  }
  await createIssuerFiles(dir, anchor, { now: clock.now(), cluster: name, dirMode: 0o700 });
  return true;
}

/**
 * The token-signing key: created when signing.key is missing (a jwks.json without it describes no
 * usable key and is replaced); a jwks.json missing beside an existing key is written from the key.
 */
async function ensureSigningKey(stateDir: string, name: string, clock: Clock): Promise<boolean> {
  const dir = join(stateDir, name, 'sa-signing');
  const keyPath = join(dir, SIGNING_KEY_FILES.key);
  const jwksPath = join(dir, SIGNING_KEY_FILES.jwks);
  if (!(await exists(keyPath))) {
    await createSigningKeyDir(dir, { force: true, clock });
    return true;
  }
  const key = await loadSigningKeyDir(dir).catch(unusable(stateDir, dir));
  if (await exists(jwksPath)) return false;
  await writeFileAtomic(jwksPath, `${JSON.stringify(key.jwks, null, 2)}\n`, { mode: 0o644 });
  return true;
}

/** Both files of a key pair, or neither; one without the other is an error naming both. */
async function pairState(stateDir: string, certPath: string, keyPath: string): Promise<'present' | 'absent'> {
  const [cert, key] = await Promise.all([exists(certPath), exists(keyPath)]);
  if (cert && key) return 'present';
  if (!cert && !key) return 'absent';
  const [there, missing] = cert ? [certPath, keyPath] : [keyPath, certPath];
  throw new FileError(
    'ERR_FILE_NOT_FOUND',
    `${there} exists but ${missing} does not (a run stopped part-way, or a file removed); delete ${stateDir} to start again`,
  );
}

/** Rethrows a LanyardError with its code, naming what in the state directory is unusable and how to start again. */
function unusable(stateDir: string, what: string): (err: unknown) => never {
  return (err) => {
    if (isLanyardError(err)) {
      throw restateError(
        err,
        `${what} in the dev state directory is unusable: ${err.message}; delete ${stateDir} to start again`,
      );
    }
    throw err;
  };
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
