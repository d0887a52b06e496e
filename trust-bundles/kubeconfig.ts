import { Agent } from 'node:https';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { UsageError, FileError } from '../ca/index.js';
import { readTextFile } from '../ca/store/index.js';

/** Where the kubelet mounts a pod's service-account token and the cluster CA. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** How to reach and authenticate to a Kubernetes API server. */
export interface KubeConnection {
  /** base URL, https only, without a trailing slash; may carry a path prefix */
  readonly server: string;
  /** PEM CA bundle for the API server's certificate; the system roots when absent */
  readonly caPem?: string;
  /** bearer token */
  readonly token?: string;
  /** bearer token re-read from this file (projected tokens rotate); wins over `token` */
  readonly tokenFile?: string;
  /** PEM client certificate and key, always together */
  readonly clientCertPem?: string;
  readonly clientKeyPem?: string;
  /** TLS server name to verify instead of the server URL's host */
  readonly tlsServerName?: string;
}

/** The connection's TLS settings as node:https options (CA, client certificate, server name). */
export function kubeTlsOptions(conn: KubeConnection): {
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
} {
  return {
    ...(conn.caPem !== undefined ? { ca: conn.caPem } : {}),
    ...(conn.clientCertPem !== undefined ? { cert: conn.clientCertPem } : {}),
    ...(conn.clientKeyPem !== undefined ? { key: conn.clientKeyPem } : {}),
    ...(conn.tlsServerName !== undefined ? { servername: conn.tlsServerName } : {}),
  };
}

/** A keep-alive agent holding the connection's TLS settings (CA, client certificate, server name). */
export function apiServerAgent(conn: KubeConnection, maxSockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets, ...kubeTlsOptions(conn) });
}

/**
 * The in-cluster connection: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, trusting
 * DIR/ca.crt and authenticating with DIR/token (re-read as the kubelet rotates it).
 */
export async function inClusterConfig(
  dir: string = SERVICE_ACCOUNT_DIR,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<KubeConnection> {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (host === undefined || host === '' || port === undefined || port === '') {
    throw new UsageError(
      'not running inside a Kubernetes pod (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set); pass --kubeconfig',
    );
  }
  const caPem = await readText(join(dir, 'ca.crt'), 'the in-cluster CA bundle');
  const tokenFile = join(dir, 'token');
  await readText(tokenFile, 'the in-cluster service-account token', KUBE_TOKEN_MAX_BYTES);
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return Object.freeze({ server: `https://${hostPart}:${port}`, caPem, tokenFile });
}

/**
 * Reads a kubeconfig: the current context (or `options.context`) → its cluster's server and CA
 * (certificate-authority or -data) and its user's token (token or tokenFile) and/or client
 * certificate and key (file or -data). Relative paths are taken from the kubeconfig's directory.
 * exec and auth-provider plugins, basic auth, plain-HTTP servers and insecure-skip-tls-verify are
 * refused (ERR_FILE_INVALID) rather than half-supported.
 */
export async function loadKubeConfig(
  path: string,
  options: { readonly context?: string } = {},
): Promise<KubeConnection> {
  const text = await readText(path, 'the kubeconfig');
  const invalid = (what: string): FileError =>
    new FileError('ERR_FILE_INVALID', `kubeconfig ${path}: ${what}`);
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw invalid(`not YAML (${(err as Error).message.split('\n')[0] ?? ''})`);
  }
  if (!isRecord(doc)) throw invalid('not a YAML mapping');
  const contextName = options.context ?? str(doc['current-context']);
  if (contextName === undefined || contextName === '') throw invalid('no current-context is set');
  const context = named(doc.contexts, contextName, 'context');
  if (context === undefined) throw invalid(`context ${JSON.stringify(contextName)} is not defined`);
  const clusterName = str(context.cluster);
  const userName = str(context.user);
  const cluster = clusterName !== undefined ? named(doc.clusters, clusterName, 'cluster') : undefined;
  if (cluster === undefined) throw invalid(`context ${JSON.stringify(contextName)} names no defined cluster`);
  const user = userName !== undefined ? (named(doc.users, userName, 'user') ?? {}) : {};
  const base = dirname(resolve(path));
  const file = (p: string): string => (isAbsolute(p) ? p : join(base, p));

  const server = str(cluster.server);
  if (server === undefined || server === '')
    throw invalid(`cluster ${JSON.stringify(clusterName)} has no server`);
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw invalid(`server ${JSON.stringify(server)} is not a URL`);
  }
  if (url.protocol !== 'https:')
    throw invalid(`server ${server} is not https; tokens are never sent in clear`);
  if (cluster['insecure-skip-tls-verify'] === true) {
    throw invalid(
      'insecure-skip-tls-verify is set; give the cluster CA (certificate-authority[-data]) instead',
    );
  }
  for (const unsupported of ['exec', 'auth-provider', 'username', 'password']) {
    if (user[unsupported] !== undefined) {
      throw invalid(
        `user ${JSON.stringify(userName)} uses "${unsupported}", which Lanyard does not support; use a token or a client certificate`,
      );
    }
  }

  const caPem = await dataOrFile(cluster, 'certificate-authority', file, invalid);
  const clientCertPem = await dataOrFile(user, 'client-certificate', file, invalid);
  const clientKeyPem = await dataOrFile(user, 'client-key', file, invalid);
  if ((clientCertPem === undefined) !== (clientKeyPem === undefined)) {
    throw invalid(
      `user ${JSON.stringify(userName)} needs both client-certificate and client-key, or neither`,
    );
  }
  const token = str(user.token);
  const tokenFileRaw = str(user.tokenFile);
  const tokenFile = tokenFileRaw !== undefined && tokenFileRaw !== '' ? file(tokenFileRaw) : undefined;
  if (tokenFile !== undefined) await readText(tokenFile, 'the kubeconfig user tokenFile');
  if ((token === undefined || token === '') && tokenFile === undefined && clientCertPem === undefined) {
    throw invalid(`user ${JSON.stringify(userName)} has neither a token nor a client certificate`);
  }
  const tlsServerName = str(cluster['tls-server-name']);
  return Object.freeze({
    server: server.replace(/\/+$/, ''),
    ...(caPem !== undefined ? { caPem } : {}),
    ...(token !== undefined && token !== '' ? { token } : {}),
    ...(tokenFile !== undefined ? { tokenFile } : {}),
    ...(clientCertPem !== undefined ? { clientCertPem } : {}),
    ...(clientKeyPem !== undefined ? { clientKeyPem } : {}),
    ...(tlsServerName !== undefined && tlsServerName !== '' ? { tlsServerName } : {}),
  });
}

/** `--kubeconfig FILE` when given, else the in-cluster connection. */
export function resolveKubeConnection(o: {
  readonly kubeconfig?: string;
  readonly context?: string;
  readonly inClusterDir?: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
}): Promise<KubeConnection> {
  if (o.kubeconfig !== undefined) {
    return loadKubeConfig(o.kubeconfig, o.context !== undefined ? { context: o.context } : {});
  }
  return inClusterConfig(o.inClusterDir, o.env);
}

type Rec = Record<string, unknown>;

function isRecord(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** `list` is [{ name, <key>: {...} }]; the inner mapping of the entry called `name`. */
function named(list: unknown, name: string, key: string): Rec | undefined {
  if (!Array.isArray(list)) return undefined;
  for (const entry of list) {
    if (isRecord(entry) && entry.name === name) {
      const inner = entry[key];
      return isRecord(inner) ? inner : {};
    }
  }
  return undefined;
}

async function dataOrFile(
  m: Rec,
  field: string,
  file: (p: string) => string,
  invalid: (what: string) => FileError,
): Promise<string | undefined> {
  const data = str(m[`${field}-data`]);
  if (data !== undefined && data !== '') {
    const pem = Buffer.from(data, 'base64').toString('utf8');
    if (!pem.includes('-----BEGIN ')) throw invalid(`${field}-data is not base64-encoded PEM`);
    return pem;
  }
  const p = str(m[field]);
  if (p === undefined || p === '') return undefined;
  return readText(file(p), `${field} of the kubeconfig`);
}

/** Largest kubeconfig, CA, client certificate or key file read (bytes); larger ones are ERR_FILE_INVALID. */
export const KUBE_FILE_MAX_BYTES = 1024 * 1024;
/** Largest token file read (bytes): service-account tokens are a few kB. */
export const KUBE_TOKEN_MAX_BYTES = 64 * 1024;

/** A bounded read (readTextFile): ERR_FILE_NOT_FOUND when unreadable, ERR_FILE_INVALID when too large. */
export async function readText(path: string, what: string, maxBytes = KUBE_FILE_MAX_BYTES): Promise<string> {
  try {
    return await readTextFile(path, maxBytes);
  } catch (err) {
    if (err instanceof FileError)
      throw new FileError(err.code, `cannot read ${what}: ${err.message}`, { cause: err });
    throw err;
  }
}
