// The flat-network story: two clusters, each with its own issuer under one shared anchor, pods that
// verify each other directly across clusters, and a full anchor rotation under continuous traffic.
// Shared by `npm run demo` (narrated) and test/e2e/flat-network.test.ts (asserted).
import { type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCertificatesPem, systemClock, writeFileAtomic, type CertificateInfo } from '../../ca/index.js';
import {
  IDENTITY_SVC_NAME,
  adminGet,
  issueServingCert,
  proxyOnce,
  servingSerial,
  startPodProxy,
  tlsConnectionCounts,
  type Launcher,
  type PodProxy,
  type ProxySpec,
  type ServingCert,
} from './identity.js';
import {
  agentOnce,
  forgedPodFiles,
  identity,
  opensslHandshake,
  spiffe,
  type Outcome,
} from './mtls-checks.js';
import { onJsonLines, waitFor, waitForOutput } from './process-io.js';
import { createTopology, registerCleanup, type Host, type Topology, type TopologyMode } from './topology.js';

const here = dirname(fileURLToPath(import.meta.url));
const fromSource = import.meta.url.endsWith('.ts');
/** Repository root, from bin/demo (source) or dist/bin/demo (compiled). */
export const REPO = fromSource ? join(here, '..', '..') : join(here, '..', '..', '..');
const NODE_ARGS = fromSource ? ['--import', 'tsx'] : [];
const LANYARD = fromSource ? join(REPO, 'bin', 'lanyard.ts') : join(REPO, 'dist', 'bin', 'lanyard.js');
const AGENT = fromSource ? join(here, 'pod-agent.ts') : join(here, 'pod-agent.js');
const PROXY = fromSource ? join(here, 'pod-identity.ts') : join(here, 'pod-identity.js');

const DEV_TOKEN_ISSUER = 'https://kubernetes.default.svc.cluster.local';
const GRPC_PORT = 8080;
const ADMIN_PORT = 9990;
const MTLS_PORT = 8443;

export { identity, spiffe, type Outcome } from './mtls-checks.js';

export interface HandshakeRecord {
  readonly ok: boolean;
  readonly from: string;
  readonly to: string;
  readonly error?: string;
  readonly peer?: string;
}

export interface StorySummary {
  readonly mode: TopologyMode;
  readonly crossCluster: {
    readonly openssl: Record<string, boolean>;
    readonly node: Record<string, boolean>;
    /** each side saw the other's SPIFFE URI SAN: the client the server's, the server the client's */
    readonly spiffeSeen: boolean;
  };
  /** each refused handshake with the reason the client saw (`code`), not only that it failed */
  readonly negatives: {
    readonly untrustedAnchor: Outcome;
    readonly wrongIdentity: Outcome;
    readonly expired: Outcome;
    /** openssl s_server refusing a client under an untrusted anchor: its X.509 verify error number */
    readonly opensslUntrustedClient: { readonly ok: boolean; readonly serverVerifyError?: number };
  };
  readonly rotation: {
    readonly phases: readonly string[];
    readonly handshakes: number;
    readonly failed: number;
    readonly failures: readonly HandshakeRecord[];
    readonly durationMs: number;
  };
  /** how the pods got their certificates: the proxy-faithful client over TLS, from each cluster's issuer */
  readonly identity: {
    /** per pod: every certificate its proxy got (initial, renewals, after restarts) and every failed Certify */
    readonly pods: Record<
      string,
      {
        readonly certified: number;
        /** the ALPN protocols negotiated, de-duplicated: [false] when every call negotiated none */
        readonly alpn: readonly (string | false | null)[];
        /** the identity service's serving certificates the proxy accepted (serials) */
        readonly servedBy: readonly string[];
        readonly failed: number;
        readonly failures: readonly { kind: string; error: string }[];
        readonly restarts: number;
        /**
         * each renewal within one start of the proxy: ms between the previous answer's refreshAt (70 % of
         * its valid_until) and the renewal call; 0 or a little more when renewals follow refreshAt
         */
        readonly renewalLagMs: readonly number[];
      }
    >;
    /** per issuer: lanyard_tls_connections_total by outcome at the end (no_alpn: a proxy's connection) */
    readonly tlsConnections: Record<string, Record<string, number>>;
    /** a proxy started with the old anchor only, once the serving certificates are under the new one */
    readonly staleProxy: {
      readonly ok: boolean;
      readonly kind?: string;
      readonly code?: string;
      readonly error?: string;
    };
  };
  readonly finalCheckExit: number;
  readonly durationMs: number;
}

export interface StoryOptions {
  readonly mode?: TopologyMode;
  /** workload certificate lifetime; short, so that phase 3 of the rotation comes within the run */
  readonly leafLifetime?: string;
  /** handshakes per second per direction during the rotation */
  readonly rate?: number;
  readonly say?: (title: string, detail?: string) => void;
  /** called once the topology exists, with a function that tears everything down (for signal handlers) */
  readonly onTopology?: (teardown: () => void, t: Topology, workDir: string) => void;
  /** stop after building the topology and starting the issuers and pods (hygiene tests) */
  readonly holdAfterSetup?: () => Promise<void>;
}

/** Runs the whole story and always tears the topology and its processes down. */
export async function runFlatNetworkStory(o: StoryOptions = {}): Promise<StorySummary> {
  const say = o.say ?? (() => undefined);
  const started = performance.now();
  const work = mkdtempSync(join(tmpdir(), 'lanyard-flatnet-'));
  const removeWork = (): void => {
    rmSync(work, { recursive: true, force: true });
  };
  // Registered before anything else exists: SIGINT/SIGTERM/SIGHUP or the parent going away removes it.
  const unregister = registerCleanup(removeWork);
  let topo: Topology;
  try {
    const forced = process.env.LANYARD_FLATNET_MODE;
    const mode = o.mode ?? (forced === 'loopback' || forced === 'netns' ? forced : undefined);
    topo = createTopology(
      ['east-issuer', 'west-issuer', 'east-pod', 'west-pod'],
      mode !== undefined ? { mode } : {},
    );
  } catch (err) {
    removeWork();
    unregister();
    throw err;
  }
  // idempotent: topo.destroy() and rmSync(force) may run twice (here and from a signal handler)
  const teardown = (): void => {
    topo.destroy();
    removeWork();
    unregister();
  };
  o.onTopology?.(teardown, topo, work);
  try {
    return await story(topo, work, o, say, started);
  } finally {
    teardown();
  }
}

async function story(
  topo: Topology,
  work: string,
  o: StoryOptions,
  say: (t: string, d?: string) => void,
  started: number,
): Promise<StorySummary> {
  const H = topo.hosts as Record<'east-issuer' | 'west-issuer' | 'east-pod' | 'west-pod', Host>;
  say(
    `Topology: ${topo.mode === 'netns' ? 'network namespaces on one bridge (a flat L2 network)' : 'distinct loopback addresses (namespaces unavailable here)'}`,
    Object.values(H)
      .map((h) => `${h.name} ${h.address}${h.netns !== undefined ? ` (netns ${h.netns})` : ''}`)
      .join('\n'),
  );

  const lanyard = (
    args: readonly string[],
    on: Host = H['east-pod'],
  ): { code: number; stdout: string; stderr: string } =>
    topo.runOn(on, process.execPath, [...NODE_ARGS, LANYARD, ...args]);
  const must = (args: readonly string[], on?: Host): string => {
    const r = lanyard(args, on);
    if (r.code !== 0) throw new Error(`lanyard ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return r.stdout;
  };

  // --- PKI: one anchor, one issuer per cluster, one token-signing key per cluster.
  const p = (...s: string[]): string => join(work, ...s);
  must(['anchor', 'create', '--out', p('anchor-a'), '--common-name', 'root-a.linkerd.cluster.local']);
  for (const c of ['east', 'west']) {
    must(['issuer', 'create', '--anchor', p('anchor-a'), '--cluster', c, '--out', p(c, 'issuer')]);
  }
  const pods = {
    east: { sa: 'web', host: H['east-pod'], issuer: H['east-issuer'] },
    west: { sa: 'db', host: H['west-pod'], issuer: H['west-issuer'] },
  } as const;
  for (const [c, pod] of Object.entries(pods)) {
    mkdirSync(p(c, 'pod'), { recursive: true });
    writeFileSync(
      p(c, 'pod', 'token'),
      must([
        'token',
        '--signing-key-dir',
        p(c, 'sa-signing'),
        '--namespace',
        'default',
        '--service-account',
        pod.sa,
        '--ttl',
        '2h',
      ]).trim(), // a projected service-account token file: the token, no newline
    );
  }
  // Each identity service's serving certificate: a mesh leaf for its own name from its cluster's issuer.
  const serving: Record<'east' | 'west', ServingCert> = {
    east: await issueServingCert(p('east', 'issuer'), p('east', 'serving'), systemClock.now()),
    west: await issueServingCert(p('west', 'issuer'), p('west', 'serving'), systemClock.now()),
  };
  say(
    'Created one trust anchor, an issuer per cluster and a service-account signing key per cluster',
    [
      `anchor ${p('anchor-a', 'anchor.crt')}`,
      `each identity service's serving certificate: ${IDENTITY_SVC_NAME} (ECDSA P-256, serverAuth), signed by its cluster's issuer`,
    ].join('\n'),
  );

  // --- Issuers, each in its own host.
  const leafLifetime = o.leafLifetime ?? '15s';
  const serves: Record<string, ChildProcess> = {};
  for (const c of ['east', 'west'] as const) {
    const host = pods[c].issuer;
    const child = topo.spawnOn(
      host,
      process.execPath,
      [
        ...NODE_ARGS,
        LANYARD,
        'serve',
        '--issuer-dir',
        p(c, 'issuer'),
        '--listen',
        `${host.address}:${GRPC_PORT}`,
        // Certify over TLS, as Linkerd's identity service serves it (no ALPN needed)
        '--tls-cert',
        serving[c].certPath,
        '--tls-key',
        serving[c].keyPath,
        '--admin-listen',
        `${host.address}:${ADMIN_PORT}`,
        '--cluster',
        c,
        '--jwks-file',
        p(c, 'sa-signing', 'jwks.json'),
        '--token-issuer',
        DEV_TOKEN_ISSUER,
        '--leaf-lifetime',
        leafLifetime,
        '--clock-skew',
        '1s',
        '--poll-interval',
        '200ms',
        '--log-level',
        'warn',
        // one process per issuer: the four hosts share this machine's cores
        '--workers',
        '1',
      ],
      { cwd: REPO },
    );
    serves[c] = child;
    await waitForOutput(child, /gRPC on/, `${c} issuer to start`);
  }
  say(
    'Started both issuers, each on its own host, serving Certify over TLS as the identity service',
    `east ${H['east-issuer'].address}:${GRPC_PORT}, west ${H['west-issuer'].address}:${GRPC_PORT}, each as ${IDENTITY_SVC_NAME}`,
  );

  // --- Pods: each pod's proxy asks its own cluster's identity service only, as an unmodified Linkerd
  // proxy does (TLS 1.3, no ALPN, SNI = the service name), and keeps renewing; plus the mTLS agent.
  const launch: Launcher = { topo, nodeArgs: NODE_ARGS, script: PROXY, cwd: REPO };
  const agentLaunch: Launcher = { ...launch, script: AGENT };
  const proxySpec = (c: 'east' | 'west', trustAnchorsFile: string): ProxySpec => ({
    host: pods[c].host,
    addr: `${pods[c].issuer.address}:${GRPC_PORT}`,
    trustAnchorsFile,
    identity: identity(pods[c].sa),
    tokenFile: p(c, 'pod', 'token'),
  });
  // A proxy reads its trust anchors once, at start: the cluster's bundle (its issuer's ca.crt, as the
  // mounted trust-roots ConfigMap) as it is when the pod starts.
  const proxies: Record<'east' | 'west', PodProxy> = {
    east: startPodProxy(launch, proxySpec('east', p('east', 'issuer', 'ca.crt')), p('east', 'pod')),
    west: startPodProxy(launch, proxySpec('west', p('west', 'issuer', 'ca.crt')), p('west', 'pod')),
  };
  for (const c of ['east', 'west'] as const)
    await waitFor(
      () => existsSync(p(c, 'pod', 'tls.crt')) && existsSync(p(c, 'pod', 'ca.crt')),
      `${c} pod's certificate`,
    ).catch((err: unknown) => {
      throw new Error(
        `${(err as Error).message}; last failure: ${proxies[c].failures.at(-1)?.error ?? 'none'}`,
      );
    });
  const agents: ChildProcess[] = [];
  // codes of the clients each pod's listener refused, in order (pod-agent's "refused" events)
  const refusals: Record<string, string[]> = { east: [], west: [] };
  for (const [c, pod] of Object.entries(pods)) {
    const peer = c === 'east' ? pods.west : pods.east;
    const agent = topo.spawnOn(
      pod.host,
      process.execPath,
      [
        ...NODE_ARGS,
        AGENT,
        '--dir',
        p(c, 'pod'),
        '--listen',
        `${pod.host.address}:${MTLS_PORT}`,
        '--client-identity',
        identity(peer.sa),
        '--client-spiffe',
        spiffe(peer.sa),
      ],
      { cwd: REPO },
    );
    agents.push(agent);
    onJsonLines(agent, (line) => {
      if (line.event === 'refused') refusals[c]?.push(typeof line.code === 'string' ? line.code : '?');
    });
    await waitForOutput(agent, /"listening"/, `${c} pod's mTLS listener`);
  }
  for (const c of ['east', 'west'] as const) {
    const leaf = parseCertificatesPem(
      readFileSync(p(c, 'pod', 'tls.crt'), 'utf8'),
      'tls.crt',
    )[0] as CertificateInfo;
    const got = proxies[c].certified[0];
    say(
      `${c} pod holds ${leaf.dnsNames.join(', ')}`,
      [
        `${leaf.uris.join(', ')}, issued by ${c}'s issuer, valid until ${leaf.notAfter.toISOString()}`,
        `got as a Linkerd proxy gets it: TLS 1.3, ALPN ${got?.alpn === false ? 'none' : String(got?.alpn)}, SNI ${IDENTITY_SVC_NAME}, serving certificate checked against the anchors it started with; next Certify at ${got?.refreshAt ?? '?'} (70 % of valid_until)`,
      ].join('\n'),
    );
  }
  if (o.holdAfterSetup !== undefined) await o.holdAfterSetup();

  // --- Direct cross-cluster mTLS, both directions, openssl and Node.
  const opensslResult: Record<string, boolean> = {};
  const nodeResult: Record<string, boolean> = {};
  let spiffeSeen = true;
  for (const [from, to] of [
    ['west', 'east'],
    ['east', 'west'],
  ] as const) {
    const r = await opensslHandshake(
      topo,
      { host: pods[to].host, dir: p(to, 'pod'), expect: identity(pods[from].sa) },
      { host: pods[from].host, dir: p(from, 'pod'), expect: identity(pods[to].sa) },
    );
    opensslResult[`${from}->${to}`] = r.ok;
    if (!r.ok && process.env.LANYARD_DEMO_DEBUG !== undefined) process.stderr.write(r.output);
    if (!(r.serverCert?.uris.includes(spiffe(pods[to].sa)) ?? false)) spiffeSeen = false;
    if (!(r.clientCert?.uris.includes(spiffe(pods[from].sa)) ?? false)) spiffeSeen = false;
    say(
      `openssl: ${from} pod → ${to} pod over TLS 1.3: ${r.ok ? 'verified both ways' : 'FAILED'}`,
      `${from} saw ${r.serverCert?.dnsNames.join(', ') ?? '?'} / ${r.serverCert?.uris.join(', ') ?? '?'}; ${to} saw ${r.clientCert?.dnsNames.join(', ') ?? '?'} / ${r.clientCert?.uris.join(', ') ?? '?'}`,
    );
    const n = agentOnce(
      agentLaunch,
      pods[from].host,
      p(from, 'pod'),
      `${pods[to].host.address}:${MTLS_PORT}`,
      identity(pods[to].sa),
      spiffe(pods[to].sa),
    );
    nodeResult[`${from}->${to}`] = n.ok;
    say(
      `node tls: ${from} pod → ${to} pod: ${n.ok ? 'verified both ways' : `FAILED (${n.error ?? ''})`}`,
      n.peer,
    );
  }

  // --- Negative cases.
  say('Negative cases');
  /** A handshake the east pod should refuse, with the code east's listener gave for refusing it. */
  const refusedByEast = async (attempt: () => Outcome): Promise<Outcome> => {
    const before = refusals.east?.length ?? 0;
    const o = attempt();
    await waitFor(() => (refusals.east?.length ?? 0) > before, 'east to report the refusal', 3000).catch(
      () => undefined,
    );
    const serverCode = refusals.east?.[before];
    return { ...o, ...(serverCode !== undefined ? { serverCode } : {}) };
  };
  const rogueDir = p('rogue');
  must(['anchor', 'create', '--out', p('anchor-rogue')]);
  must(['issuer', 'create', '--anchor', p('anchor-rogue'), '--cluster', 'rogue', '--out', p('rogue-issuer')]);
  await forgedPodFiles(
    rogueDir,
    p('rogue-issuer'),
    { dnsName: identity(pods.west.sa), uri: spiffe(pods.west.sa) },
    p(pods.west.sa === 'db' ? 'west' : 'east', 'pod', 'ca.crt'),
    'valid',
  );
  const untrusted = await refusedByEast(() =>
    agentOnce(
      agentLaunch,
      H['west-pod'],
      rogueDir,
      `${H['east-pod'].address}:${MTLS_PORT}`,
      identity('web'),
      spiffe('web'),
    ),
  );
  say(
    `a pod whose issuer chains to an anchor east does not trust: ${untrusted.ok ? 'ACCEPTED (wrong)' : `refused by east (${untrusted.serverCode ?? '?'})`}`,
    untrusted.error,
  );
  const wrongId = agentOnce(
    agentLaunch,
    H['west-pod'],
    p('west', 'pod'),
    `${H['east-pod'].address}:${MTLS_PORT}`,
    identity('admin'),
    spiffe('admin'),
  );
  say(
    `west pod expecting east to be "admin" while east is "web": ${wrongId.ok ? 'ACCEPTED (wrong)' : `refused (${wrongId.code ?? '?'})`}`,
    wrongId.error,
  );
  const expiredDir = p('expired');
  await forgedPodFiles(
    expiredDir,
    p('west', 'issuer'),
    { dnsName: identity('db'), uri: spiffe('db') },
    p('west', 'pod', 'ca.crt'),
    'expired',
  );
  const expired = await refusedByEast(() =>
    agentOnce(
      agentLaunch,
      H['west-pod'],
      expiredDir,
      `${H['east-pod'].address}:${MTLS_PORT}`,
      identity('web'),
      spiffe('web'),
    ),
  );
  say(
    `an expired leaf from west's own issuer: ${expired.ok ? 'ACCEPTED (wrong)' : `refused by east (${expired.serverCode ?? '?'})`}`,
    expired.error,
  );
  const sslUntrusted = await opensslHandshake(
    topo,
    { host: H['east-pod'], dir: p('east', 'pod'), expect: identity('db') },
    { host: H['west-pod'], dir: rogueDir, expect: identity('web') },
  );
  say(
    `openssl s_server given the same untrusted client: ${sslUntrusted.ok ? 'ACCEPTED (wrong)' : `refused (verify error ${String(sslUntrusted.serverVerifyError ?? '?')})`}`,
  );

  // --- Rotation under traffic.
  say('Anchor rotation under traffic: both pods keep making new handshakes to each other');
  const rate = o.rate ?? 5;
  const records: HandshakeRecord[] = [];
  const loops = (['east', 'west'] as const).map((from) => {
    const to = from === 'east' ? 'west' : 'east';
    const child = topo.spawnOn(
      pods[from].host,
      process.execPath,
      [
        ...NODE_ARGS,
        AGENT,
        '--dir',
        p(from, 'pod'),
        '--mode',
        'loop',
        '--rate',
        String(rate),
        '--peer',
        `${pods[to].host.address}:${MTLS_PORT}`,
        '--peer-identity',
        identity(pods[to].sa),
        '--peer-spiffe',
        spiffe(pods[to].sa),
      ],
      { cwd: REPO },
    );
    onJsonLines(child, (line) => {
      if (line.event === 'handshake') {
        records.push({
          ok: line.ok === true,
          from,
          to,
          ...(typeof line.error === 'string' ? { error: line.error } : {}),
          ...(typeof line.peer === 'string' ? { peer: line.peer } : {}),
        });
      }
    });
    return child;
  });
  const rotationStart = performance.now();
  await waitFor(() => records.length >= 2 * rate, 'traffic to flow');
  const clusters = [
    '--cluster',
    `east=http://${H['east-issuer'].address}:${ADMIN_PORT}`,
    '--cluster',
    `west=http://${H['west-issuer'].address}:${ADMIN_PORT}`,
  ];
  const phases: string[] = [];
  const status = (): {
    phase: string | number;
    next: { action: string; safe: boolean; waitUntil?: string };
  } => {
    const r = lanyard(['rotate', 'status', ...clusters, '--json']);
    const s = JSON.parse(r.stdout) as {
      phase: string | number;
      next: { action: string; safe: boolean; waitUntil?: string };
    };
    return s;
  };
  const note = (label: string): void => {
    const s = status();
    phases.push(
      `${label}: phase ${String(s.phase)}, next ${s.next.action} (${s.next.safe ? 'safe' : 'not safe'})`,
    );
    say(
      `rotate status → phase ${String(s.phase)}; next: ${s.next.action}, ${s.next.safe ? 'safe' : 'NOT safe yet'}${s.next.waitUntil !== undefined ? ` (wait until ${s.next.waitUntil})` : ''}`,
      `${records.length} handshakes so far, ${records.filter((r) => !r.ok).length} failed`,
    );
  };
  note('before');
  must(['anchor', 'create', '--out', p('anchor-b'), '--common-name', 'root-b.linkerd.cluster.local']);
  for (const c of ['east', 'west'])
    must(['bundle', 'add', p(c, 'issuer', 'ca.crt'), p('anchor-b', 'anchor.crt')]);
  say("Phase 1: added the new anchor to both clusters' bundles (the issuers reload them live)");
  await waitFor(() => status().phase === 1, 'both issuers to serve the new bundle');
  note('bundles updated');
  const anchorB = parseCertificatesPem(
    readFileSync(p('anchor-b', 'anchor.crt'), 'utf8'),
    'anchor-b',
  )[0] as CertificateInfo;
  const trusts = (c: string, a: CertificateInfo): boolean =>
    parseCertificatesPem(readFileSync(p(c, 'pod', 'ca.crt'), 'utf8'), 'ca.crt').some((x) =>
      x.der.equals(a.der),
    );
  // A proxy reads its trust anchors only at start: to trust the new anchor it must be restarted
  // (kubectl rollout restart). Only the identity side restarts here; the mTLS agent keeps serving and
  // picks up the new key, certificate and ca.crt.
  for (const c of ['east', 'west'] as const) await proxies[c].restart();
  await waitFor(
    () => trusts('east', anchorB) && trusts('west', anchorB),
    'both pods to trust the new anchor after their restart',
    60_000,
  );
  say(
    "Restarted both pods' proxies (kubectl rollout restart): a proxy reads its trust anchors only at start; from the bundle they now trust old and new",
    'without this restart they would refuse, in phase 2, the serving certificate and the leaves signed under the new anchor',
  );
  for (const c of ['east', 'west'] as const) {
    must(['issuer', 'create', '--anchor', p('anchor-b'), '--cluster', c, '--out', p(c, 'issuer-next')]);
    // Key and certificate replace the old pair; ca.crt (the bundle, still holding the old anchor) stays.
    await writeFileAtomic(p(c, 'issuer', 'tls.key'), readFileSync(p(c, 'issuer-next', 'tls.key')), {
      mode: 0o600,
      overwrite: true,
    });
    await writeFileAtomic(p(c, 'issuer', 'tls.crt'), readFileSync(p(c, 'issuer-next', 'tls.crt')), {
      overwrite: true,
    });
    // The identity service's serving certificate moves under the new anchor too: every running proxy
    // trusts it now, and the proxies restarted after phase 3 will trust nothing else.
    serving[c] = await issueServingCert(p(c, 'issuer-next'), p(c, 'serving'), systemClock.now());
  }
  say(
    "Phase 2: re-issued both issuers and their identity services' serving certificates under the new anchor (hot reload, no restart)",
  );
  await waitFor(
    () => status().phase === 2 || status().phase === 3,
    'both issuers to sign under the new anchor',
  );
  note('issuers re-issued');
  const adminUrl = (c: 'east' | 'west'): string => `http://${pods[c].issuer.address}:${ADMIN_PORT}`;
  await waitFor(
    () =>
      (['east', 'west'] as const).every(
        (c) => servingSerial(adminGet(topo, pods[c].host, `${adminUrl(c)}/v1/status`)) === serving[c].serial,
      ),
    'both issuers to serve the new serving certificate',
  );
  const stale = proxyOnce(launch, proxySpec('east', p('anchor-a', 'anchor.crt')));
  say(
    `a proxy started with the old anchor only, now: ${stale.ok ? 'ACCEPTED (wrong)' : `refused (${stale.failure?.code ?? stale.failure?.kind ?? '?'})`}`,
    stale.failure?.error,
  );
  await waitFor(
    () => {
      const s = status();
      return s.next.action === 'remove-old-anchors' && s.next.safe;
    },
    'rotate status to call removing the old anchor safe',
    120_000,
  );
  note('old leaves expired');
  const anchorA = parseCertificatesPem(
    readFileSync(p('anchor-a', 'anchor.crt'), 'utf8'),
    'anchor-a',
  )[0] as CertificateInfo;
  for (const c of ['east', 'west'])
    must(['bundle', 'remove', p(c, 'issuer', 'ca.crt'), p('anchor-a', 'anchor.crt')]);
  say('Phase 3: removed the old anchor from both bundles, as rotate status said it was safe');
  await waitFor(() => status().phase === 'steady', 'the issuers to serve the final bundle');
  note('old anchor removed');
  for (const c of ['east', 'west'] as const) await proxies[c].restart();
  await waitFor(
    () => !trusts('east', anchorA) && !trusts('west', anchorA),
    'both pods to drop the old anchor after their restart',
    60_000,
  );
  say("Restarted both pods' proxies again: they read the final bundle and trust the new anchor only");
  const settle = records.length;
  await waitFor(() => records.length >= settle + 2 * rate, 'traffic after the rotation');
  for (const l of loops) l.kill('SIGTERM');
  await Promise.all(
    loops.map(
      (l) =>
        new Promise((r) => {
          if (l.exitCode !== null) r(null);
          else l.once('exit', r);
        }),
    ),
  );
  const rotationMs = performance.now() - rotationStart;
  const failures = records.filter((r) => !r.ok);
  say(
    `Rotation done: ${records.length} cross-cluster handshakes, ${failures.length} failed, in ${(rotationMs / 1000).toFixed(1)} s`,
  );

  const check = lanyard(['check', ...clusters]);
  say(`lanyard check → exit ${check.code}`, check.stdout.trim().split('\n').slice(-1)[0]);
  await Promise.all(Object.values(proxies).map((x) => x.stop()));
  const tlsConnections: Record<string, Record<string, number>> = {};
  for (const c of ['east', 'west'] as const)
    tlsConnections[c] = tlsConnectionCounts(adminGet(topo, pods[c].host, `${adminUrl(c)}/metrics`));
  const podIdentity = Object.fromEntries(
    (['east', 'west'] as const).map((c) => {
      const x = proxies[c];
      return [
        c,
        {
          certified: x.certified.length,
          alpn: [...new Set(x.certified.map((e) => e.alpn))],
          servedBy: [...new Set(x.certified.map((e) => e.servedBy))],
          failed: x.failures.length,
          failures: x.failures.slice(0, 10).map((f) => ({ kind: f.kind, error: f.error })),
          restarts: x.restarts,
          renewalLagMs: x.certified.flatMap((e, i) => {
            const prev = x.certified[i - 1];
            return prev !== undefined && prev.run === e.run
              ? [Date.parse(e.requestedAt) - Date.parse(prev.refreshAt)]
              : [];
          }),
        },
      ];
    }),
  );
  say(
    "How the pods got their certificates: the proxy-faithful client over TLS 1.3, no ALPN, from their own cluster's identity service",
    (['east', 'west'] as const)
      .map(
        (c) =>
          `${c}: ${podIdentity[c]?.certified ?? 0} certificates (${podIdentity[c]?.restarts ?? 0} proxy restarts), ALPN ${JSON.stringify(podIdentity[c]?.alpn)}, ${podIdentity[c]?.failed ?? 0} Certify failed; ${c} issuer's TLS connections by outcome ${JSON.stringify(tlsConnections[c])}`,
      )
      .join('\n'),
  );
  for (const a of agents) a.kill('SIGTERM');
  for (const s of Object.values(serves)) s.kill('SIGTERM');

  return {
    mode: topo.mode,
    crossCluster: { openssl: opensslResult, node: nodeResult, spiffeSeen },
    negatives: {
      untrustedAnchor: untrusted,
      wrongIdentity: wrongId,
      expired,
      opensslUntrustedClient: {
        ok: sslUntrusted.ok,
        ...(sslUntrusted.serverVerifyError !== undefined
          ? { serverVerifyError: sslUntrusted.serverVerifyError }
          : {}),
      },
    },
    rotation: {
      phases,
      handshakes: records.length,
      failed: failures.length,
      failures: failures.slice(0, 20),
      durationMs: rotationMs,
    },
    identity: {
      pods: podIdentity,
      tlsConnections,
      staleProxy: {
        ok: stale.ok,
        ...(stale.failure !== undefined ? { kind: stale.failure.kind, error: stale.failure.error } : {}),
        ...(stale.failure?.code !== undefined ? { code: stale.failure.code } : {}),
      },
    },
    finalCheckExit: check.code,
    durationMs: performance.now() - started,
  };
}
