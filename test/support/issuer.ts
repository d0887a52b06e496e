import { Writable } from 'node:stream';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { systemClock, type Clock, type LeafKeyType, type Scheduler } from '../../ca/index.js';
import type { Authenticator } from '../../issuer/authn/index.js';
import { buildIssuerConfig, type IssuerConfig } from '../../issuer/config.js';
import {
  loadIdentityService,
  type CertifyRequestMessage,
  type CertifyResponseMessage,
} from '../../issuer/grpc/server.js';
import { createIssuerLogger } from '../../issuer/logger.js';
import { startIssuer, type RunningIssuer } from '../../issuer/main.js';
import { tempDir } from './temp-dir.js';
import type { TestPki } from './pki.js';

export interface TestIssuer {
  readonly issuer: RunningIssuer;
  readonly dir: string;
  readonly target: string;
  readonly adminUrl: string;
  /** every log line the issuer wrote, raw JSON text */
  readonly logLines: string[];
  certify(
    req: Partial<CertifyRequestMessage>,
    options?: { deadlineMs?: number },
  ): Promise<CertifyResponseMessage>;
  close(): Promise<void>;
}

/** Writes an issuer directory (kubernetes.io/tls layout) for `cluster` of `pki`. */
export function writeIssuerDir(dir: string, pki: TestPki, cluster = 'east'): void {
  const issuer = pki.issuers[cluster];
  if (issuer === undefined) throw new Error(`no issuer ${cluster} in this PKI`);
  writeFileSync(join(dir, 'tls.crt'), issuer.certPem);
  writeFileSync(join(dir, 'tls.key'), issuer.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'ca.crt'), pki.anchorsPem);
}

export function testConfig(
  dir: string,
  overrides: Partial<{
    maxInFlight: number;
    maxInFlightPerPeer: number;
    leafKeyTypes: LeafKeyType[];
    pollIntervalMs: number;
    /** --intermediates */
    intermediates: string;
    /** --renew-after (RFC 3339) and --renew-spread */
    renewAfter: string;
    renewSpreadMs: number;
  }> = {},
): IssuerConfig {
  const base = buildIssuerConfig({
    issuerDir: dir,
    listen: '127.0.0.1:0',
    adminListen: '127.0.0.1:0',
    cluster: 'east',
    trustDomain: 'cluster.local',
    controlNamespace: 'linkerd',
    auth: 'jwt',
    jwksFile: '/dev/null',
    tokenIssuer: 'test',
    tokenAudience: 'identity.l5d.io',
    leafKeyTypes: (overrides.leafKeyTypes ?? ['p256']).join(','),
    maxInFlight: String(overrides.maxInFlight ?? 64),
    // every test client is 127.0.0.1: the per-peer share is tested on its own
    maxInFlightPerPeer: String(overrides.maxInFlightPerPeer ?? overrides.maxInFlight ?? 64),
    pollInterval: overrides.pollIntervalMs ?? 200,
    logLevel: 'info',
    ...(overrides.intermediates !== undefined ? { intermediates: overrides.intermediates } : {}),
    ...(overrides.renewAfter !== undefined ? { renewAfter: overrides.renewAfter } : {}),
    ...(overrides.renewSpreadMs !== undefined ? { renewSpread: overrides.renewSpreadMs } : {}),
  });
  return base;
}

/** An issuer on loopback with a temporary issuer directory and an injected authenticator. */
export async function startTestIssuer(options: {
  pki?: TestPki;
  cluster?: string;
  authenticator: Authenticator;
  clock?: Clock;
  /** runs the issuer's file re-reads (a FakeClock: they run as the test moves time) */
  scheduler?: Scheduler;
  maxInFlight?: number;
  maxInFlightPerPeer?: number;
  /** the server's cap on any call's duration */
  maxCallMs?: number;
  leafKeyTypes?: LeafKeyType[];
  /** write nothing into the issuer directory */
  emptyDir?: boolean;
  /** use this issuer directory as it is (the caller owns it) */
  dir?: string;
  pollIntervalMs?: number;
  /** --intermediates FILE */
  intermediates?: string;
  /** --renew-after (RFC 3339), --renew-spread */
  renewAfter?: string;
  renewSpreadMs?: number;
  /** the random source of renewal hints (default Math.random) */
  random?: () => number;
}): Promise<TestIssuer> {
  const owned = options.dir === undefined ? tempDir('lanyard-issuer-') : undefined;
  const dir = options.dir ?? (owned as { dir: string }).dir;
  const cleanup = (): void => owned?.cleanup();
  if (owned !== undefined && options.emptyDir !== true && options.pki !== undefined)
    writeIssuerDir(dir, options.pki, options.cluster ?? 'east');
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l.length > 0),
      );
      cb();
    },
  });
  const config = testConfig(dir, {
    ...(options.maxInFlight !== undefined ? { maxInFlight: options.maxInFlight } : {}),
    ...(options.maxInFlightPerPeer !== undefined ? { maxInFlightPerPeer: options.maxInFlightPerPeer } : {}),
    ...(options.leafKeyTypes !== undefined ? { leafKeyTypes: options.leafKeyTypes } : {}),
    ...(options.pollIntervalMs !== undefined ? { pollIntervalMs: options.pollIntervalMs } : {}),
    ...(options.intermediates !== undefined ? { intermediates: options.intermediates } : {}),
    ...(options.renewAfter !== undefined ? { renewAfter: options.renewAfter } : {}),
    ...(options.renewSpreadMs !== undefined ? { renewSpreadMs: options.renewSpreadMs } : {}),
  });
  const logger = createIssuerLogger(config, sink);
  const issuer = await startIssuer(config, {
    logger,
    clock: options.clock ?? systemClock,
    ...(options.scheduler !== undefined ? { scheduler: options.scheduler } : {}),
    authenticator: options.authenticator,
    ...(options.maxCallMs !== undefined ? { maxCallMs: options.maxCallMs } : {}),
    ...(options.random !== undefined ? { random: options.random } : {}),
  });
  const target = `127.0.0.1:${issuer.grpcAddress.port}`;
  const client = createIdentityClient(target);
  return {
    issuer,
    dir,
    target,
    adminUrl: `http://127.0.0.1:${issuer.adminAddress.port}`,
    logLines,
    certify: (req, o = {}) => client.certify(req, o),
    async close() {
      client.close();
      await issuer.shutdown(1000);
      cleanup();
    },
  };
}

export interface IdentityClient {
  certify(
    req: Partial<CertifyRequestMessage>,
    options?: { deadlineMs?: number },
  ): Promise<CertifyResponseMessage>;
  close(): void;
}

/** A plain grpc-js client of the Identity service over loopback. */
export function createIdentityClient(
  target: string,
  credentials = grpc.credentials.createInsecure(),
  channelOptions: grpc.ChannelOptions = {},
): IdentityClient {
  const Client = grpc.makeGenericClientConstructor(loadIdentityService(), 'Identity');
  const client = new Client(target, credentials, channelOptions) as unknown as grpc.Client & {
    Certify(
      req: CertifyRequestMessage,
      md: grpc.Metadata,
      opts: grpc.CallOptions,
      cb: (err: grpc.ServiceError | null, res?: CertifyResponseMessage) => void,
    ): void;
  };
  return {
    certify(req, o = {}) {
      const full: CertifyRequestMessage = {
        identity: req.identity ?? '',
        token: req.token ?? Buffer.alloc(0),
        certificate_signing_request: req.certificate_signing_request ?? Buffer.alloc(0),
      };
      const deadline = new Date(systemClock.now().getTime() + (o.deadlineMs ?? 10_000));
      return new Promise((resolve, reject) => {
        client.Certify(full, new grpc.Metadata(), { deadline }, (err, res) => {
          if (err !== null || res === undefined) reject(err ?? new Error('empty response'));
          else resolve(res);
        });
      });
    },
    close: () => {
      client.close();
    },
  };
}

/** The gRPC status code of a rejected call, or 'OK'. */
export async function grpcCodeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    const code = (err as { code?: number }).code;
    return code === undefined ? `not a gRPC error: ${String(err)}` : (grpc.status[code] ?? String(code));
  }
}
