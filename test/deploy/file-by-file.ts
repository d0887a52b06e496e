// The overlays put together from their files when this machine has no kustomize renderer, so that a
// test which runs what an overlay deploys still runs. It understands only what deploy/ uses:
// `resources` (files and kustomization directories), `components`, `patches` (strategic merge, by
// file or inline, aimed by kind and name), `namespace`, `labels` (pairs, metadata only) and `images`
// (newName/newTag). Anything else in a kustomization throws. Where a renderer exists, tests compare
// this with its output for the fields they use (linkerd-overlay.test.ts), so the two cannot drift
// apart unseen.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { findRenderer, isK8sObject, isRecord, parseYamlDocs, readDocs, type K8sObject } from './support.js';

/** Kinds without a namespace (those deploy/ holds). */
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'ClusterIssuer', 'Bundle']);
/** Strategic-merge keys of the lists deploy/ patches (from the Kubernetes API's patchMergeKey). */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  env: 'name',
  volumeMounts: 'mountPath',
  volumes: 'name',
  ports: 'containerPort',
};
const UNDERSTOOD = new Set([
  'apiVersion',
  'kind',
  'namespace',
  'resources',
  'components',
  'patches',
  'labels',
  'images',
]);

/** Strategic merge of `patch` into `base` (both plain JSON); `field` names the list being merged. */
export function strategicMerge(base: unknown, patch: unknown, field = ''): unknown {
  if (patch === null) return undefined;
  if (isRecord(base) && isRecord(patch)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(patch)) {
      const merged = strategicMerge(out[k], v, k);
      if (merged === undefined) Reflect.deleteProperty(out, k);
      else out[k] = merged;
    }
    return out;
  }
  const key = MERGE_KEYS[field];
  if (Array.isArray(base) && Array.isArray(patch) && key !== undefined) {
    const out: unknown[] = [...(base as unknown[])];
    for (const item of patch as unknown[]) {
      const at = out.findIndex((b) => isRecord(b) && isRecord(item) && b[key] === item[key]);
      if (at >= 0) out[at] = strategicMerge(out[at], item, field);
      else out.push(item);
    }
    return out;
  }
  return structuredClone(patch);
}

function patchesOf(k: Record<string, unknown>, dir: string, where: string): K8sObject[] {
  const list = (k.patches as unknown[] | undefined) ?? [];
  return list.flatMap((p, i) => {
    if (!isRecord(p) || p.target !== undefined || p.options !== undefined)
      throw new Error(`${where} patches[${i}]: only plain strategic-merge patches are understood`);
    const docs =
      typeof p.path === 'string'
        ? readDocs(join(dir, p.path)).map((d) => d.value)
        : parseYamlDocs(String(p.patch), `${where} patches[${i}]`);
    return docs.filter(isK8sObject);
  });
}

function applyPatch(objs: K8sObject[], patch: K8sObject): void {
  const at = objs.findIndex((o) => o.kind === patch.kind && o.metadata.name === patch.metadata.name);
  if (at < 0) throw new Error(`patch for ${patch.kind}/${patch.metadata.name} matches no resource`);
  objs[at] = strategicMerge(objs[at], patch) as K8sObject;
}

function setImages(obj: K8sObject, images: readonly Record<string, unknown>[]): void {
  const spec = (obj.spec as { template?: { spec?: { containers?: { image?: string }[] } } } | undefined)
    ?.template?.spec;
  for (const c of spec?.containers ?? []) {
    const [name, tag] = (c.image ?? '').split(':');
    const img = images.find((i) => i.name === name);
    if (img === undefined) continue;
    const newName = typeof img.newName === 'string' ? img.newName : name;
    const newTag = typeof img.newTag === 'string' ? img.newTag : tag;
    c.image = newTag !== undefined ? `${newName ?? ''}:${newTag}` : (newName ?? '');
  }
}

/** Puts a kustomization (or component) directory together from its files. */
export function renderFileByFile(dir: string): K8sObject[] {
  const file = join(dir, 'kustomization.yaml');
  const k = readDocs(file)[0]?.value;
  if (!isRecord(k)) throw new Error(`${file}: not a kustomization`);
  for (const key of Object.keys(k))
    if (!UNDERSTOOD.has(key)) throw new Error(`${file}: "${key}" is not understood file by file`);
  const objs: K8sObject[] = [];
  for (const r of (k.resources as string[] | undefined) ?? []) {
    const p = join(dir, r);
    if (statSync(p).isDirectory()) objs.push(...renderFileByFile(p));
    else objs.push(...readDocs(p).map((d) => structuredClone(d.value as K8sObject)));
  }
  for (const c of (k.components as string[] | undefined) ?? []) {
    const cdir = join(dir, c);
    const comp = readDocs(join(cdir, 'kustomization.yaml'))[0]?.value;
    if (!isRecord(comp) || comp.kind !== 'Component') throw new Error(`${c} is not a Component`);
    for (const r of (comp.resources as string[] | undefined) ?? [])
      objs.push(...readDocs(join(cdir, r)).map((d) => structuredClone(d.value as K8sObject)));
    for (const p of patchesOf(comp, cdir, c)) applyPatch(objs, p);
  }
  for (const p of patchesOf(k, dir, file)) applyPatch(objs, p);
  const ns = typeof k.namespace === 'string' ? k.namespace : undefined;
  for (const o of objs) {
    if (ns !== undefined && !CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = ns;
    if (ns !== undefined && o.kind === 'ClusterRoleBinding')
      for (const s of (o.subjects as { kind: string; namespace?: string }[] | undefined) ?? [])
        if (s.kind === 'ServiceAccount') s.namespace = ns;
    for (const l of (k.labels as { pairs?: Record<string, string> }[] | undefined) ?? [])
      o.metadata.labels = { ...o.metadata.labels, ...l.pairs };
    setImages(o, (k.images as Record<string, unknown>[] | undefined) ?? []);
  }
  return objs;
}

/** An overlay rendered by kustomize when this machine has it, else put together file by file. */
export function renderOverlay(dir: string): { objs: K8sObject[]; mode: string } {
  const renderer = findRenderer();
  if (renderer !== undefined) return { objs: renderer.render(dir), mode: `rendered with ${renderer.name}` };
  return { objs: renderFileByFile(dir), mode: 'file by file (no kustomize renderer on this machine)' };
}
