// A pod's view of its volumes, laid out on the local disk the way the kubelet projects Secrets and
// ConfigMaps (timestamped directory + `..data` symlink + per-key symlinks), so the real issuer can
// be started on exactly the files a Deployment mounts.
import { isAbsolute, join, relative } from 'node:path';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IVolumeMount } from 'kubernetes-models/v1/VolumeMount';
import type { IssuerConfig } from '../../issuer/config.js';
import { writeAtomicVolume } from '../support/k8s-volume.js';
import { volumeOf } from './support.js';

/** What the cluster holds: Secret and ConfigMap data by object name, key → content. */
export interface ClusterData {
  readonly secrets: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly configMaps: Readonly<Record<string, Readonly<Record<string, string>>>>;
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

/** Writes every volume mount of `container` under `root`, as the kubelet would. subPath is refused. */
export function mountVolumes(root: string, d: IDeployment, container: IContainer, data: ClusterData): void {
  for (const m of container.volumeMounts ?? []) {
    if (m.subPath !== undefined || m.subPathExpr !== undefined)
      throw new Error(`volume mount ${m.name} uses subPath: its files would never be updated`);
    writeAtomicVolume(join(root, m.mountPath), volumeFiles(d, m, data));
  }
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
    ...(a.kind === 'token-review' && a.kubeconfig !== undefined ? [a.kubeconfig] : []),
  ];
}

/** `config` with every path moved under `root` and both listeners on loopback, free ports. */
export function configInPod(root: string, config: IssuerConfig): IssuerConfig {
  const at = (p: string): string => join(root, p);
  const auth =
    config.auth.kind === 'jwt'
      ? {
          ...config.auth,
          ...(config.auth.jwksFile !== undefined ? { jwksFile: at(config.auth.jwksFile) } : {}),
          ...(config.auth.jwksCaFile !== undefined ? { jwksCaFile: at(config.auth.jwksCaFile) } : {}),
        }
      : config.auth;
  return Object.freeze({
    ...config,
    issuerDir: at(config.issuerDir),
    ...(config.trustAnchorsPath !== undefined ? { trustAnchorsPath: at(config.trustAnchorsPath) } : {}),
    ...(config.tls !== undefined
      ? { tls: { certPath: at(config.tls.certPath), keyPath: at(config.tls.keyPath) } }
      : {}),
    auth,
    listen: { host: '127.0.0.1', port: 0 },
    adminListen: { host: '127.0.0.1', port: 0 },
  });
}
