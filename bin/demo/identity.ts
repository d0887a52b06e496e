// The identity side of the flat-network story, as a Linkerd mesh has it: each cluster's issuer serves
// Certify over TLS (`lanyard serve --tls-cert/--tls-key`) with a serving certificate for the identity
// service's own name, and each pod's proxy (pod-identity.ts, the proxy-faithful client) gets its
// certificate there as an unmodified Linkerd proxy does: TLS 1.3, no ALPN, SNI = that name, checked
// against the trust anchors the proxy read when it started.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createFileKeyStore } from '../../ca/keys/index.js';
import { createLeafTemplate, encodePem, parseCertificatesPem, type CertificateInfo } from '../../ca/index.js';
import { exited, onJsonLines } from './process-io.js';
import type { Host, Topology } from './topology.js';

/** LINKERD2_PROXY_IDENTITY_SVC_NAME: the identity service's own identity (control namespace linkerd). */
export const IDENTITY_SVC_NAME = 'linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local';
const IDENTITY_SVC_SPIFFE = 'spiffe://cluster.local/ns/linkerd/sa/linkerd-identity';
const SERVING_LIFETIME_MS = 24 * 3_600_000;

/** A serial in one form whoever printed it (Node: upper case, no leading zeros): lower-case hex, no leading zeros. */
export const normSerial = (hex: string): string => hex.toLowerCase().replace(/^0+(?=.)/, '');

export interface ServingCert {
  readonly certPath: string;
  readonly keyPath: string;
  /** normSerial form */
  readonly serial: string;
}

/**
 * The identity service's serving pair, as Linkerd's own identity service has one: a mesh leaf for
 * IDENTITY_SVC_NAME (new ECDSA P-256 key; serverAuth and clientAuth) signed by the cluster's issuer in
 * `issuerDir`, so it chains to the anchor that issuer is under. `outDir`/tls.crt holds the leaf then
 * every certificate of the issuer's tls.crt (the issuer, then what it serves above it: a cross
 * certificate, so that proxies trusting only the old anchor accept it too); key and chain are replaced
 * together (the running issuer reloads them). What
 * `lanyard leaf issue --namespace linkerd --service-account linkerd-identity` would sign.
 */
export async function issueServingCert(issuerDir: string, outDir: string, now: Date): Promise<ServingCert> {
  const certPath = join(outDir, 'tls.crt');
  const keyPath = join(outDir, 'tls.key');
  const key = await createFileKeyStore().stage(keyPath, 'p256', { force: true });
  const { cert: issuer, template, chainPem } = await loadIssuer(issuerDir);
  const leaf = template.sign({
    spki: key.signer.publicKeyDer,
    dnsName: IDENTITY_SVC_NAME,
    uri: IDENTITY_SVC_SPIFFE,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(Math.min(now.getTime() + SERVING_LIFETIME_MS, issuer.notAfter.getTime())),
  });
  mkdirSync(outDir, { recursive: true });
  // the key (0600) and its chain as one change
  await key.commit([
    {
      path: certPath,
      data: encodePem('CERTIFICATE', leaf.der) + chainPem,
      overwrite: true,
    },
  ]);
  const serial = parseCertificatesPem(encodePem('CERTIFICATE', leaf.der), 'serving')[0]?.serialHex ?? '';
  return { certPath, keyPath, serial: normSerial(serial) };
}

/** How to start a node program on a host of the topology (tsx from source, plain node from dist). */
export interface Launcher {
  readonly topo: Topology;
  readonly nodeArgs: readonly string[];
  /** bin/demo/pod-identity.ts or dist/bin/demo/pod-identity.js */
  readonly script: string;
  readonly cwd: string;
}

/** A pod's proxy settings (the LINKERD2_PROXY_IDENTITY_* environment of a meshed pod). */
export interface ProxySpec {
  readonly host: Host;
  /** host:port of its cluster's identity service */
  readonly addr: string;
  /** the trust anchors file it reads once at start (the mounted trust-roots bundle) */
  readonly trustAnchorsFile: string;
  readonly identity: string;
  readonly tokenFile: string;
}

/** One certificate a pod's proxy got, as pod-identity reported it. */
export interface Certified {
  /** which start of the proxy got it: 0 the first, n after the n-th (unexpected) start */
  readonly run: number;
  /** when the call was made (ISO) */
  readonly requestedAt: string;
  /** when the answer was in the pod's files (ISO) */
  readonly answeredAt: string;
  /** the ALPN protocol negotiated with the identity service: false = none, as a proxy offers none */
  readonly alpn: string | false | null;
  readonly serial: string;
  /** the identity service's serving certificate (serial, normSerial form) */
  readonly servedBy: string;
  readonly validUntil: string;
  readonly refreshAt: string;
  /** the leaf, then the intermediates as answered (DER) */
  readonly chainDer: readonly Buffer[];
}

export interface CertifyFailure {
  readonly kind: string;
  readonly grpcStatus?: number;
  /** the TLS or Node code behind a transport failure (e.g. UNABLE_TO_GET_ISSUER_CERT_LOCALLY) */
  readonly code?: string;
  readonly error: string;
}

export interface PodProxy {
  readonly certified: readonly Certified[];
  readonly failures: readonly CertifyFailure[];
  /** the proxy processes that announced themselves (pids): one unless it was started again */
  readonly pids: readonly number[];
  /** how many times its process exited before stop() was called */
  readonly unexpectedExits: number;
  stop(): Promise<void>;
}

function args(spec: ProxySpec): string[] {
  return [
    '--addr',
    spec.addr,
    '--service-name',
    IDENTITY_SVC_NAME,
    '--trust-anchors',
    spec.trustAnchorsFile,
    '--identity',
    spec.identity,
    '--token-file',
    spec.tokenFile,
  ];
}

function certifiedOf(line: Record<string, unknown>, run: number): Certified {
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  return {
    run,
    requestedAt: str(line.requestedAt),
    answeredAt: str(line.answeredAt),
    alpn: typeof line.alpn === 'string' || line.alpn === false ? line.alpn : null,
    serial: normSerial(str(line.serial)),
    servedBy: normSerial(str(line.servedBy)),
    validUntil: str(line.validUntil),
    refreshAt: str(line.refreshAt),
    chainDer: Array.isArray(line.chain)
      ? line.chain.map((b: unknown) => Buffer.from(typeof b === 'string' ? b : '', 'base64'))
      : [],
  };
}

function failureOf(line: Record<string, unknown>): CertifyFailure {
  return {
    kind: typeof line.kind === 'string' ? line.kind : '?',
    ...(typeof line.grpcStatus === 'number' ? { grpcStatus: line.grpcStatus } : {}),
    ...(typeof line.code === 'string' ? { code: line.code } : {}),
    error: typeof line.error === 'string' ? line.error : '',
  };
}

/**
 * Starts a pod's proxy (identity side): it certifies at once, writes into `dir` and keeps renewing.
 * It is started once: nothing here starts it again (a pod is never restarted in the story), and an
 * exit before stop() is counted.
 */
export function startPodProxy(launch: Launcher, spec: ProxySpec, dir: string): PodProxy {
  const certified: Certified[] = [];
  const failures: CertifyFailure[] = [];
  const pids: number[] = [];
  let stopping = false;
  let unexpectedExits = 0;
  const child = launch.topo.spawnOn(
    spec.host,
    process.execPath,
    [...launch.nodeArgs, launch.script, ...args(spec), '--dir', dir],
    { cwd: launch.cwd },
  );
  onJsonLines(child, (line) => {
    if (line.event === 'started' && typeof line.pid === 'number') pids.push(line.pid);
    if (line.event === 'certified') certified.push(certifiedOf(line, Math.max(0, pids.length - 1)));
    if (line.event === 'certify-failed') failures.push(failureOf(line));
  });
  child.once('exit', () => {
    if (!stopping) unexpectedExits++;
  });
  return {
    certified,
    failures,
    pids,
    get unexpectedExits() {
      return unexpectedExits;
    },
    async stop() {
      stopping = true;
      child.kill('SIGTERM');
      await exited(child);
    },
  };
}

/** The outcome of one Certify by a proxy started with `spec` (nothing written). */
export function proxyOnce(
  launch: Launcher,
  spec: ProxySpec,
): { ok: boolean; certified?: Certified; failure?: CertifyFailure } {
  const r = launch.topo.runOn(
    spec.host,
    process.execPath,
    [...launch.nodeArgs, launch.script, ...args(spec), '--once'],
    {
      timeoutMs: 30_000,
    },
  );
  const line = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)[0];
  if (line?.event === 'certified') return { ok: true, certified: certifiedOf(line, 0) };
  if (line?.event === 'certify-failed') return { ok: false, failure: failureOf(line) };
  return { ok: false, failure: { kind: 'no-result', error: r.stderr.trim() || 'no result' } };
}

/** GET `url` from `host` (the admin ports live inside the namespaces): the body, '' on failure. */
export function adminGet(topo: Topology, host: Host, url: string): string {
  const script =
    'fetch(process.argv[1]).then((r) => r.text()).then((t) => process.stdout.write(t), () => process.exit(1))';
  const r = topo.runOn(host, process.execPath, ['-e', script, url], { timeoutMs: 15_000 });
  return r.code === 0 ? r.stdout : '';
}

/** lanyard_tls_connections_total by outcome, from a /metrics text. */
export function tlsConnectionCounts(metrics: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const m of metrics.matchAll(
    /^lanyard_tls_connections_total\{outcome="([a-z0-9_]+)",listener="grpc"\} (\d+)/gm,
  ))
    counts[m[1] as string] = Number(m[2]);
  return counts;
}

/** The serving certificate's serial from /v1/status (normSerial form), or undefined. */
export function servingSerial(statusJson: string): string | undefined {
  try {
    const s = JSON.parse(statusJson) as { servingTls?: { serial?: string } | null };
    const serial = s.servingTls?.serial;
    return serial === undefined ? undefined : normSerial(serial);
  } catch {
    return undefined;
  }
}

/** The issuer in `issuerDir` (tls.crt, tls.key): its certificate and its fast-path leaf template. */
export async function loadIssuer(issuerDir: string): Promise<{
  cert: CertificateInfo;
  template: ReturnType<typeof createLeafTemplate>;
  /** every certificate of tls.crt (the issuer, then any cross certificate), PEM */
  chainPem: string;
}> {
  const chain = parseCertificatesPem(readFileSync(join(issuerDir, 'tls.crt'), 'utf8'), 'tls.crt');
  const issuer = chain[0] as CertificateInfo;
  const issuerKey = await createFileKeyStore().load(join(issuerDir, 'tls.key'));
  return {
    cert: issuer,
    template: createLeafTemplate(issuer, issuerKey),
    chainPem: chain.map((c) => encodePem('CERTIFICATE', c.der)).join(''),
  };
}
