// A pod of a rendered Deployment, running: its volumes laid out under a temp dir as the kubelet
// mounts them (pod.ts), `lanyard serve` started on them with the container's own arguments and
// LANYARD_* environment (parsed by the real command tree), token-review through the in-cluster
// credentials, and every listener on a loopback address that stands for the pod IP, with the ports
// the manifest gives (so a client dials what it would dial in the cluster).
import { randomInt } from 'node:crypto';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { systemClock } from '../../ca/index.js';
import type { Authenticator } from '../../issuer/authn/index.js';
import type { IssuerConfig } from '../../issuer/config.js';
import { createIssuerLogger } from '../../issuer/logger.js';
import { startIssuer, type RunningIssuer } from '../../issuer/main.js';
import type { TokenReviewStandIn } from '../support/token-review-stand-in.js';
import {
  configInPod,
  inClusterConnection,
  inClusterTokenReview,
  mountVolumes,
  type ClusterData,
} from './pod.js';
import { lanyardContainer, parseServe } from './support.js';

/**
 * An address of 127/8 on which every one of `ports` is free (the pod's IP, with the manifest's
 * ports), or undefined when none is (something holds them on all addresses).
 */
export async function podAddress(ports: readonly number[]): Promise<string | undefined> {
  const free = (host: string, port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const s = createServer();
      s.once('error', () => {
        resolve(false);
      });
      s.listen(port, host, () => {
        s.close(() => {
          resolve(true);
        });
      });
    });
  for (let i = 0; i < 20; i++) {
    const ip = `127.${100 + randomInt(100)}.${randomInt(256)}.${1 + randomInt(254)}`;
    if ((await Promise.all(ports.map((p) => free(ip, p)))).every(Boolean)) return ip;
  }
  return undefined;
}

export interface Pod {
  readonly running: RunningIssuer;
  readonly ip: string;
  /** the ports bound: the manifest's, unless `manifestPorts` is false (they were taken: any free ones) */
  readonly grpcPort: number;
  /** the Istio CA listener's port (--istio-listen), when the container turns it on */
  readonly istioPort?: number;
  readonly manifestPorts: boolean;
  readonly root: string;
  readonly config: IssuerConfig;
  readonly logLines: string[];
  readonly admin: string;
}

/**
 * Mounts the Deployment's volumes under `root` (the Secrets and ConfigMaps the cluster holds,
 * the automounted service-account files for `api`) and starts `lanyard serve` on them with the
 * container's own arguments and environment, listening on a pod address with the manifest's ports.
 */
export async function startPod(o: {
  readonly deployment: IDeployment;
  readonly root: string;
  readonly secrets: ClusterData['secrets'];
  readonly configMaps: ClusterData['configMaps'];
  readonly api: TokenReviewStandIn;
}): Promise<Pod> {
  const container = lanyardContainer(o.deployment);
  const { config } = parseServe(container);
  const namespace = o.deployment.metadata?.namespace ?? '';
  mountVolumes(o.root, o.deployment, container, {
    secrets: o.secrets,
    configMaps: o.configMaps,
    serviceAccount: { token: o.api.callerToken, 'ca.crt': o.api.caPem, namespace },
  });
  const istio = config.istio;
  const found = await podAddress([
    config.listen.port,
    config.adminListen.port,
    ...(istio !== undefined ? [istio.listen.port] : []),
  ]);
  const ip = found ?? '127.0.0.1';
  const inPod: IssuerConfig = Object.freeze({
    ...configInPod(o.root, config),
    listen: { host: ip, port: found !== undefined ? config.listen.port : 0 },
    adminListen: { host: ip, port: found !== undefined ? config.adminListen.port : 0 },
    ...(istio !== undefined
      ? { istio: { ...istio, listen: { host: ip, port: found !== undefined ? istio.listen.port : 0 } } }
      : {}),
  });
  const logLines: string[] = [];
  const logger = createIssuerLogger(
    inPod,
    new Writable({
      write(chunk: Buffer, _e, cb) {
        logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        cb();
      },
    }),
  );
  const authenticator = await inClusterTokenReview(o.root, config, o.api.url, {
    clock: systemClock,
    logger: logger.child({ component: 'authn' }),
  });
  // Everything made from here on is closed with the authenticator if the pod fails to start.
  let istioAuthenticator: Authenticator | undefined;
  try {
    // --istio-listen: a second one for the Istio token audience, as lanyard serve builds it
    istioAuthenticator =
      istio !== undefined
        ? await inClusterTokenReview(
            o.root,
            { ...config, auth: { ...config.auth, audience: istio.tokenAudience } },
            o.api.url,
            { clock: systemClock, logger: logger.child({ component: 'authn', api: 'istio' }) },
          )
        : undefined;
    // --istio-trusted-node-accounts: the node check reads the Pod API in-cluster, as in the pod
    const istioKubeConnection =
      istio !== undefined && istio.trustedNodeAccounts.length > 0
        ? await inClusterConnection(o.root, o.api.url)
        : undefined;
    const running = await startIssuer(inPod, {
      logger,
      clock: systemClock,
      authenticator,
      ...(istioAuthenticator !== undefined ? { istioAuthenticator } : {}),
      ...(istioKubeConnection !== undefined ? { istioKubeConnection } : {}),
    });
    return {
      running,
      ip,
      grpcPort: running.grpcAddress.port,
      ...(running.istioAddress !== undefined ? { istioPort: running.istioAddress.port } : {}),
      manifestPorts: found !== undefined,
      root: o.root,
      config,
      logLines,
      admin: `http://${ip}:${running.adminAddress.port}`,
    };
  } catch (err) {
    await authenticator.close?.();
    await istioAuthenticator?.close?.();
    throw err;
  }
}

export const events = (pod: Pod, event: string): Record<string, unknown>[] =>
  pod.logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === event);
