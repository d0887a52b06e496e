// A pod's view of its volumes, laid out on the local disk the way the kubelet projects Secrets and
// ConfigMaps (timestamped directory + `..data` symlink + per-key symlinks), so the real issuer can
// be started on exactly the files a Deployment mounts, plus the service-account token, CA and namespace
// Kubernetes projects into every pod that does not opt out of automountServiceAccountToken.
import { isAbsolute, join, relative } from 'node:path';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IVolumeMount } from 'kubernetes-models/v1/VolumeMount';
import type { Logger } from 'pino';
import { type Clock } from '../../ca/index.js';
import { createTokenReviewAuthenticator, type Authenticator } from '../../issuer/authn/index.js';
import { resolveKubeConnection, type KubeConnection } from '../../trust-bundles/index.js';
import type { IssuerConfig } from '../../issuer/config.js';
import { writeAtomicVolume } from '../support/k8s-volume.js';
import { volumeOf } from './support.js';

/** Where Kubernetes mounts a pod's own service-account credentials (automountServiceAccountToken). */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** The files of SERVICE_ACCOUNT_DIR: the pod's token, the API server's CA, the pod's namespace. */
export const SERVICE_ACCOUNT_FILES = ['token', 'ca.crt', 'namespace'] as const;

/** What the cluster holds: Secret and ConfigMap data by object name, key → content. */
export interface ClusterData {
  readonly secrets: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly configMaps: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** the pod's automounted service-account files (SERVICE_ACCOUNT_FILES); absent: not written */
  readonly serviceAccount?: Readonly<Record<(typeof SERVICE_ACCOUNT_FILES)[number], string>>;
}

/**
 * Whether Kubernetes mounts the service-account token into the pods: the pod's
 * automountServiceAccountToken wins, then the ServiceAccount's, and both default to true.
 */
export function automountsServiceAccount(d: IDeployment, sa?: IServiceAccount): boolean {
  return (d.spec?.template.spec?.automountServiceAccountToken ?? sa?.automountServiceAccountToken) !== false;
}

/** The files Kubernetes itself puts into the container (no volume in the manifest names them). */
export function automountedPaths(d: IDeployment, container: IContainer, sa?: IServiceAccount): string[] {
  if (!automountsServiceAccount(d, sa)) return [];
  // a volume of the manifest's own at that directory takes its place (the admission plugin adds none)
  if ((container.volumeMounts ?? []).some((m) => m.mountPath === SERVICE_ACCOUNT_DIR)) return [];
  return SERVICE_ACCOUNT_FILES.map((f) => join(SERVICE_ACCOUNT_DIR, f));
}

/** Whether `path` exists in the container: inside a volume mount, or one of the automounted files. */
export function providedPath(
  d: IDeployment,
  container: IContainer,
  path: string,
  sa?: IServiceAccount,
): boolean {
  return mountHolding(container, path) !== undefined || automountedPaths(d, container, sa).includes(path);
}

/** The files a volume presents: all keys, or only `items` under their paths (a missing key fails). */
export function volumeFiles(d: IDeployment, mount: IVolumeMount, data: ClusterData): Record<string, string> {
  const v = volumeOf(d, mount.name);
  let source: Readonly<Record<string, string>> | undefined;
  let items: readonly { key: string; path: string }[] | undefined;
  if (v.secret !== undefined) {
    source = data.secrets[v.secret.secretName ?? ''];
    items = v.secret.items;
    if (source === undefined) throw new Error(`volume ${v.name}: no Secret ${v.secret.secretName ?? ''}`);
  } else if (v.configMap !== undefined) {
    source = data.configMaps[v.configMap.name ?? ''];
    items = v.configMap.items;
    if (source === undefined) throw new Error(`volume ${v.name}: no ConfigMap ${v.configMap.name ?? ''}`);
  } else {
    throw new Error(`volume ${v.name} is neither a Secret nor a ConfigMap`);
  }
  if (items === undefined) return { ...source };
  const files: Record<string, string> = {};
  for (const it of items) {
    const content = source[it.key];
    if (content === undefined) throw new Error(`volume ${v.name}: key ${it.key} is missing`);
    files[it.path] = content;
  }
  return files;
}

/**
 * Writes every volume mount of `container` under `root`, as the kubelet would, and the automounted
 * service-account files when `data.serviceAccount` gives them. subPath is refused.
 */
export function mountVolumes(root: string, d: IDeployment, container: IContainer, data: ClusterData): void {
  for (const m of container.volumeMounts ?? []) {
    if (m.subPath !== undefined || m.subPathExpr !== undefined)
      throw new Error(`volume mount ${m.name} uses subPath: its files would never be updated`);
    writeAtomicVolume(join(root, m.mountPath), volumeFiles(d, m, data));
  }
  if (data.serviceAccount !== undefined && automountedPaths(d, container).length > 0)
    writeAtomicVolume(join(root, SERVICE_ACCOUNT_DIR), { ...data.serviceAccount });
}

/** The volume mount that holds `path`, if any. */
export function mountHolding(container: IContainer, path: string): IVolumeMount | undefined {
  return (container.volumeMounts ?? []).find((m) => {
    const r = relative(m.mountPath, path);
    return r !== '' && !r.startsWith('..') && !isAbsolute(r);
  });
}

/** Every file or directory `lanyard serve` reads with this configuration. */
export function pathsRead(config: IssuerConfig): string[] {
  const a = config.auth;
  return [
    config.issuerDir,
    ...(config.trustAnchorsPath !== undefined ? [config.trustAnchorsPath] : []),
    ...(config.tls !== undefined ? [config.tls.certPath, config.tls.keyPath] : []),
    ...(a.kind === 'jwt' && a.jwksFile !== undefined ? [a.jwksFile] : []),
    ...(a.kind === 'jwt' && a.jwksCaFile !== undefined ? [a.jwksCaFile] : []),
    ...(a.kind === 'jwt' && a.jwksTokenFile !== undefined ? [a.jwksTokenFile] : []),
    ...(a.kind === 'token-review' && a.kubeconfig !== undefined ? [a.kubeconfig] : []),
  ];
}

/** The API server as pods address it (the `kubernetes` Service in `default`). */
export const IN_CLUSTER_API_SERVER = 'https://kubernetes.default.svc';

/**
 * `config` with every path moved under `root` and every listener on loopback, free ports. With
 * `apiServer` (an https origin), a --jwks-url on IN_CLUSTER_API_SERVER is sent there instead.
 */
export function configInPod(
  root: string,
  config: IssuerConfig,
  options: { apiServer?: string } = {},
): IssuerConfig {
  const at = (p: string): string => join(root, p);
  const url = config.auth.kind === 'jwt' ? config.auth.jwksUrl : undefined;
  const inCluster = url !== undefined && new URL(url).origin === IN_CLUSTER_API_SERVER;
  const auth =
    config.auth.kind === 'jwt'
      ? {
          ...config.auth,
          ...(config.auth.jwksFile !== undefined ? { jwksFile: at(config.auth.jwksFile) } : {}),
          ...(config.auth.jwksCaFile !== undefined ? { jwksCaFile: at(config.auth.jwksCaFile) } : {}),
          ...(config.auth.jwksTokenFile !== undefined
            ? { jwksTokenFile: at(config.auth.jwksTokenFile) }
            : {}),
          ...(inCluster && options.apiServer !== undefined
            ? { jwksUrl: new URL(new URL(url).pathname, options.apiServer).href }
            : {}),
        }
      : config.auth;
  return Object.freeze({
    ...config,
    issuerDir: at(config.issuerDir),
    ...(config.trustAnchorsPath !== undefined ? { trustAnchorsPath: at(config.trustAnchorsPath) } : {}),
    ...(config.tls !== undefined
      ? { tls: { ...config.tls, certPath: at(config.tls.certPath), keyPath: at(config.tls.keyPath) } }
      : {}),
    auth,
    listen: { host: '127.0.0.1', port: 0 },
    adminListen: { host: '127.0.0.1', port: 0 },
    ...(config.istio !== undefined
      ? { istio: { ...config.istio, listen: { host: '127.0.0.1', port: 0 } } }
      : {}),
  });
}

/**
 * The authenticator `lanyard serve --auth token-review` (no --kubeconfig) builds in a pod: in-cluster
 * credentials from the automounted files under `root` (mountVolumes with `data.serviceAccount`), the
 * API server at `apiServer` (an https origin: what KUBERNETES_SERVICE_HOST/_PORT, which Kubernetes
 * sets in every container, would point at).
 */
/** The pod's in-cluster Kubernetes API connection: its mounted service account, the API server's address. */
export function inClusterConnection(root: string, apiServer: string): Promise<KubeConnection> {
  const url = new URL(apiServer);
  return resolveKubeConnection({
    inClusterDir: join(root, SERVICE_ACCOUNT_DIR),
    env: { KUBERNETES_SERVICE_HOST: url.hostname, KUBERNETES_SERVICE_PORT: url.port || '443' },
  });
}

export async function inClusterTokenReview(
  root: string,
  config: IssuerConfig,
  apiServer: string,
  deps: { readonly clock: Clock; readonly logger: Logger },
): Promise<Authenticator> {
  if (config.auth.kind !== 'token-review') throw new Error(`--auth is ${config.auth.kind}, not token-review`);
  if (config.auth.kubeconfig !== undefined) throw new Error('--kubeconfig is set: not the in-cluster path');
  const connection = await inClusterConnection(root, apiServer);
  return createTokenReviewAuthenticator({
    connection,
    clock: deps.clock,
    audience: config.auth.audience,
    cacheTtlMs: config.auth.cacheTtlMs,
    clockSkewMs: config.clockSkewMs,
    logger: deps.logger,
  });
}
