// The pods of the mesh. Each pod is a proxy's identity side (pod-identity.ts, the proxy-faithful
// client: it asks its own cluster's identity service only, reads its trust anchors once at start and
// renews at 70 % of valid_until) and its mTLS side (pod-agent.ts: it serves the pod's certificate and,
// once traffic is on, makes one handshake a second to every running pod of the other cluster, as listed
// in that cluster's roster file). Pods are started and, in the last phase, stopped; never restarted.
import { type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parseCertificatesPem, systemClock, type CertificateInfo } from '../../ca/index.js';
import { IDENTITY_SVC_NAME, startPodProxy, type PodProxy } from './identity.js';
import { identity, spiffe } from './mtls-checks.js';
import { exited, onJsonLines, waitFor, waitForOutput, WAIT_TIMEOUT_MS } from './process-io.js';
import {
  AGENT,
  CLUSTERS,
  MTLS_PORT,
  NODE_ARGS,
  REPO,
  type Cluster,
  type StoryContext,
} from './story-context.js';
import type { HandshakeRecord } from './story-summary.js';

/** When a pod was started: before the rotation (trusting {A}), after phase 3 ({A,B}), after phase 5 ({B}). */
export type Generation = 'A' | 'AB' | 'B';
const GENERATIONS: readonly Generation[] = ['A', 'AB', 'B'];

export interface MeshPod {
  /** `<cluster>-<generation>`, e.g. east-AB */
  readonly name: string;
  readonly cluster: Cluster;
  readonly gen: Generation;
  /** the common names of the anchors its proxy read at start (its LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS) */
  readonly trusts: readonly string[];
  /** those anchors, PEM, as its pod spec holds them */
  readonly anchorsPem: string;
  /** host:port of its mTLS listener */
  readonly addr: string;
  readonly dir: string;
  readonly proxy: PodProxy;
  /** its agent's process exited before it was stopped */
  readonly agentExitedEarly: () => boolean;
  /**
   * the latest roster generation its agent said it uses (-1 before the first): every handshake of
   * a round that used an older roster has finished and been reported
   */
  readonly rosterGeneration: () => number;
  stop(): Promise<void>;
}

export interface Mesh {
  readonly pods: readonly MeshPod[];
  /** every handshake made between pods, both directions, in the order reported */
  readonly records: readonly HandshakeRecord[];
  /** codes of the clients each cluster's listeners refused, in order (pod-agent's "refused" events) */
  readonly refusals: Record<Cluster, string[]>;
  /** starts a pod of generation `gen` in cluster `c` (it reads the cluster's bundle now) */
  start(c: Cluster, gen: Generation): Promise<MeshPod>;
  /** the pods in the rosters (those the other cluster's pods make handshakes to) */
  readonly inMesh: () => readonly MeshPod[];
  /** from now on every running pod makes handshakes to every running pod of the other cluster */
  startTraffic(): void;
  /**
   * takes a pod out of the rosters, waits until every running agent of the other cluster has said it
   * uses the new roster (so no round still makes handshakes to the pod), then stops it
   */
  retire(pod: MeshPod): Promise<void>;
  /** stops every pod still running */
  stopAll(): Promise<void>;
}

const podDir = (gen: Generation): string => (gen === 'A' ? 'pod' : `pod-${gen.toLowerCase()}`);
const other = (c: Cluster): Cluster => (c === 'east' ? 'west' : 'east');

interface Roster {
  readonly name: string;
  readonly addr: string;
  readonly identity: string;
  readonly spiffe: string;
}

function startAgent(
  ctx: StoryContext,
  pod: { c: Cluster; dir: string; addr: string },
  rate: number,
): ChildProcess {
  const peer = ctx.pods[other(pod.c)];
  return ctx.topo.spawnOn(
    ctx.pods[pod.c].host,
    process.execPath,
    [
      ...[...NODE_ARGS, AGENT],
      ...['--dir', pod.dir, '--listen', pod.addr],
      ...['--client-identity', identity(peer.sa), '--client-spiffe', spiffe(peer.sa)],
      ...['--peers-file', ctx.path(other(pod.c), 'roster.json'), '--rate', String(rate)],
    ],
    { cwd: REPO },
  );
}

const subjects = (pem: string): string[] =>
  parseCertificatesPem(pem, 'trust anchors').map((a) => a.subjectCommonName ?? '?');

/** Starts one pod: its proxy (reading the cluster's bundle now), then, once it holds a certificate, its mTLS side. */
async function startMeshPod(
  ctx: StoryContext,
  o: { c: Cluster; gen: Generation; rate: number; records: HandshakeRecord[]; refusals: string[] },
): Promise<MeshPod> {
  const { c, gen, records } = o;
  const name = `${c}-${gen}`;
  const dir = ctx.path(c, podDir(gen));
  mkdirSync(dir, { recursive: true });
  // LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS as the pod spec has it: the cluster's bundle when the pod
  // is created (the mounted trust-roots bundle, here its issuer's ca.crt), read once by the proxy.
  const anchorsFile = ctx.path(c, `${podDir(gen)}-trust-anchors.pem`);
  copyFileSync(ctx.path(c, 'issuer', 'ca.crt'), anchorsFile);
  const proxy = startPodProxy(ctx.launch, ctx.proxySpec(c, anchorsFile), dir);
  await waitFor(
    () => existsSync(`${dir}/tls.crt`) && existsSync(`${dir}/ca.crt`),
    `${name}'s certificate`,
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; last failure: ${proxy.failures.at(-1)?.error ?? 'none'}`);
  });
  const addr = `${ctx.pods[c].host.address}:${MTLS_PORT + GENERATIONS.indexOf(gen)}`;
  const agent = startAgent(ctx, { c, dir, addr }, o.rate);
  let stopping = false;
  let early = false;
  let rosterGeneration = -1;
  agent.once('exit', () => {
    if (!stopping) early = true;
  });
  onJsonLines(agent, (line) => {
    if (line.event === 'roster' && typeof line.generation === 'number') rosterGeneration = line.generation;
    if (line.event === 'refused') o.refusals.push(typeof line.code === 'string' ? line.code : '?');
    if (line.event !== 'handshake') return;
    records.push({
      ok: line.ok === true,
      from: name,
      to: typeof line.to === 'string' ? line.to : '?',
      at: typeof line.at === 'string' ? Date.parse(line.at) : systemClock.now().getTime(),
      ...(typeof line.error === 'string' ? { error: line.error } : {}),
      ...(typeof line.peer === 'string' ? { peer: line.peer } : {}),
      ...(Array.isArray(line.path) ? { path: line.path.map(String) } : {}),
    });
  });
  await waitForOutput(agent, /"listening"/, `${name}'s mTLS listener`);
  return {
    name,
    cluster: c,
    gen,
    trusts: subjects(readFileSync(anchorsFile, 'utf8')),
    anchorsPem: readFileSync(anchorsFile, 'utf8'),
    addr,
    dir,
    proxy,
    agentExitedEarly: () => early,
    rosterGeneration: () => rosterGeneration,
    async stop() {
      stopping = true;
      agent.kill('SIGTERM');
      await Promise.all([exited(agent), proxy.stop()]);
    },
  };
}

/**
 * The mesh: no pod in it until started. `onPodsChange` hears the running pods whenever one starts or
 * stops (the Kubernetes API stand-in lists them).
 */
export function createMesh(
  ctx: StoryContext,
  rate: number,
  onPodsChange: (running: readonly MeshPod[]) => void = () => undefined,
): Mesh {
  const pods: MeshPod[] = [];
  const records: HandshakeRecord[] = [];
  const refusals: Record<Cluster, string[]> = { east: [], west: [] };
  const rostered = new Set<MeshPod>();
  const stopped = new Set<MeshPod>();
  let trafficOn = false;
  let generation = 0;
  /** writes both clusters' rosters as a new generation; returns it */
  const writeRosters = (): number => {
    generation++;
    for (const c of CLUSTERS) {
      const list: Roster[] = [...rostered]
        .filter((x) => x.cluster === c)
        .map((x) => ({
          name: x.name,
          addr: x.addr,
          identity: identity(ctx.pods[c].sa),
          spiffe: spiffe(ctx.pods[c].sa),
        }));
      const file = ctx.path(c, 'roster.json');
      writeFileSync(`${file}.tmp`, JSON.stringify({ generation, peers: list }));
      renameSync(`${file}.tmp`, file);
    }
    return generation;
  };
  /** the agents that read cluster `c`'s roster: the running pods of the other cluster */
  const readersOf = (c: Cluster): MeshPod[] =>
    pods.filter((x) => x.cluster !== c && !stopped.has(x) && !x.agentExitedEarly());
  writeRosters();
  const start = async (c: Cluster, gen: Generation): Promise<MeshPod> => {
    const pod = await startMeshPod(ctx, { c, gen, rate, records, refusals: refusals[c] });
    pods.push(pod);
    onPodsChange(pods.filter((x) => !stopped.has(x)));
    if (trafficOn) {
      rostered.add(pod);
      writeRosters();
    }
    return pod;
  };
  return {
    pods,
    records,
    refusals,
    start,
    inMesh: () => [...rostered],
    startTraffic() {
      trafficOn = true;
      for (const x of pods) rostered.add(x);
      writeRosters();
    },
    async retire(pod) {
      rostered.delete(pod);
      const gen = writeRosters();
      // a round that read the previous roster may still be making its handshakes to the pod: wait until
      // each reader has started a round with this roster (its earlier rounds are then reported)
      const behind = (): string[] =>
        readersOf(pod.cluster)
          .filter((x) => x.rosterGeneration() < gen)
          .map((x) => `${x.name} (at ${x.rosterGeneration()})`);
      await waitFor(
        () => behind().length === 0,
        `every agent to use roster generation ${gen} without ${pod.name}`,
        WAIT_TIMEOUT_MS, // a round and its handshakes' own timeout, on a loaded host
      ).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}: still behind ${behind().join(', ')}`);
      });
      stopped.add(pod);
      await pod.stop();
      onPodsChange(pods.filter((x) => !stopped.has(x)));
    },
    async stopAll() {
      const running = pods.filter((x) => !stopped.has(x));
      for (const x of running) stopped.add(x);
      await Promise.all(running.map((x) => x.stop()));
    },
  };
}

/** Says which certificate a pod holds and how its proxy got it. */
export function sayPodCertificate(ctx: StoryContext, pod: MeshPod): void {
  const leaf = parseCertificatesPem(
    readFileSync(`${pod.dir}/tls.crt`, 'utf8'),
    'tls.crt',
  )[0] as CertificateInfo;
  const got = pod.proxy.certified[0];
  ctx.say(
    `${pod.name} pod holds ${leaf.dnsNames.join(', ')}`,
    [
      `${leaf.uris.join(', ')}, issued by ${pod.cluster}'s issuer, valid until ${leaf.notAfter.toISOString()}; its proxy trusts ${pod.trusts.join(' + ')} (read once, at start); mTLS on ${pod.addr}`,
      `got as a Linkerd proxy gets it: TLS 1.3, ALPN ${got?.alpn === false ? 'none' : String(got?.alpn)}, SNI ${IDENTITY_SVC_NAME}, serving certificate checked against the anchors it started with; next Certify at ${got?.refreshAt ?? '?'} (70 % of valid_until)`,
    ].join('\n'),
  );
}
