// What every step of the flat-network story works with: the topology and its hosts, the two clusters'
// pods, the work directory, the programs it starts (lanyard, the pod agent, the pod proxy) and `say`.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Launcher, ProxySpec } from './identity.js';
import { identity } from './mtls-checks.js';
import type { Host, Topology } from './topology.js';

const here = dirname(fileURLToPath(import.meta.url));
const fromSource = import.meta.url.endsWith('.ts');
/** Repository root, from bin/demo (source) or dist/bin/demo (compiled). */
export const REPO = fromSource ? join(here, '..', '..') : join(here, '..', '..', '..');
export const NODE_ARGS = fromSource ? ['--import', 'tsx'] : [];
export const LANYARD = fromSource ? join(REPO, 'bin', 'lanyard.ts') : join(REPO, 'dist', 'bin', 'lanyard.js');
export const AGENT = fromSource ? join(here, 'pod-agent.ts') : join(here, 'pod-agent.js');
export const KUBE = fromSource ? join(here, 'kube-stand-in.ts') : join(here, 'kube-stand-in.js');
const PROXY = fromSource ? join(here, 'pod-identity.ts') : join(here, 'pod-identity.js');

export const DEV_TOKEN_ISSUER = 'https://kubernetes.default.svc.cluster.local';
export const GRPC_PORT = 8080;
export const ADMIN_PORT = 9990;
/** the mTLS port of a cluster's first pod (generation A); later generations share its host, next ports */
export const MTLS_PORT = 8443;

export const HOST_NAMES = ['east-issuer', 'west-issuer', 'east-pod', 'west-pod'] as const;
export type HostName = (typeof HOST_NAMES)[number];
export const CLUSTERS = ['east', 'west'] as const;
export type Cluster = (typeof CLUSTERS)[number];

export type Say = (title: string, detail?: string) => void;

/** A cluster's pod: its service account, the host it runs on, and its cluster's issuer host. */
export interface Pod {
  readonly sa: string;
  readonly host: Host;
  readonly issuer: Host;
}

export interface LanyardRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface StoryContext {
  readonly topo: Topology;
  readonly hosts: Readonly<Record<HostName, Host>>;
  readonly pods: Readonly<Record<Cluster, Pod>>;
  readonly say: Say;
  /** a path under the story's work directory */
  readonly path: (...segments: string[]) => string;
  /** runs `lanyard args` on a host (the east pod's by default) */
  readonly lanyard: (args: readonly string[], on?: Host) => LanyardRun;
  /** the same, throwing unless it exits 0; its stdout */
  readonly must: (args: readonly string[], on?: Host) => string;
  /** starts pod-identity.ts (the proxy-faithful client) */
  readonly launch: Launcher;
  /** starts pod-agent.ts (the pod's mTLS side) */
  readonly agentLaunch: Launcher;
  /** a proxy of cluster `c`'s pod asking its own cluster's identity service */
  readonly proxySpec: (c: Cluster, trustAnchorsFile: string) => ProxySpec;
  /** the admin endpoint of cluster `c`'s issuer */
  readonly adminUrl: (c: Cluster) => string;
}

export function createStoryContext(options: { topo: Topology; work: string; say: Say }): StoryContext {
  const { topo, work, say } = options;
  const hosts = topo.hosts as Record<HostName, Host>;
  const pods: Record<Cluster, Pod> = {
    east: { sa: 'web', host: hosts['east-pod'], issuer: hosts['east-issuer'] },
    west: { sa: 'db', host: hosts['west-pod'], issuer: hosts['west-issuer'] },
  };
  const path = (...s: string[]): string => join(work, ...s);
  const lanyard = (args: readonly string[], on: Host = hosts['east-pod']): LanyardRun =>
    topo.runOn(on, process.execPath, [...NODE_ARGS, LANYARD, ...args]);
  const launch: Launcher = { topo, nodeArgs: NODE_ARGS, script: PROXY, cwd: REPO };
  return {
    topo,
    hosts,
    pods,
    say,
    path,
    lanyard,
    must: (args, on) => {
      const r = lanyard(args, on);
      if (r.code !== 0) throw new Error(`lanyard ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
      return r.stdout;
    },
    launch,
    agentLaunch: { ...launch, script: AGENT },
    proxySpec: (c, trustAnchorsFile) => ({
      host: pods[c].host,
      addr: `${pods[c].issuer.address}:${GRPC_PORT}`,
      trustAnchorsFile,
      identity: identity(pods[c].sa),
      tokenFile: path(c, 'pod', 'token'),
    }),
    adminUrl: (c) => `http://${pods[c].issuer.address}:${ADMIN_PORT}`,
  };
}
