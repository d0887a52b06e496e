import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import {
  DEPLOY_DIR,
  REPO_ROOT,
  isK8sObject,
  isKustomization,
  isRecord,
  modelOf,
  modelProblem,
  parseYamlDocs,
  patchFiles,
  readDocs,
  unknownFieldProblems,
  yamlFiles,
  type Doc,
  type K8sObject,
} from './support.js';

const files = yamlFiles();
const docs: Doc[] = files.flatMap((f) => readDocs(f));
const patches = patchFiles();
const kustomizations = docs.filter((d) => isKustomization(d.value));
/** whole objects (not kustomizations, not patches) */
const resources = docs.filter((d) => !isKustomization(d.value) && !patches.has(d.file));

/** The inline patches of kustomization files, parsed. */
function inlinePatches(): { where: string; obj: K8sObject }[] {
  const out: { where: string; obj: K8sObject }[] = [];
  for (const k of kustomizations) {
    const list = (k.value as { patches?: unknown }).patches;
    if (!Array.isArray(list)) continue;
    list.forEach((p, i) => {
      if (!isRecord(p) || typeof p.patch !== 'string') return;
      for (const v of parseYamlDocs(p.patch, `${k.where} patches[${i}]`)) {
        if (isK8sObject(v)) out.push({ where: `${k.where} patches[${i}]`, obj: v });
      }
    });
  }
  return out;
}

describe('deploy/ manifests', () => {
  it('are all parseable YAML, with no duplicate keys', () => {
    assert.ok(files.length >= 15, `only ${files.length} YAML files under deploy/`);
    for (const d of docs) assert.ok(isRecord(d.value), `${d.where}: not a mapping`);
  });

  it('are each a Kubernetes object with apiVersion, kind and metadata.name, or a kustomization', () => {
    for (const d of docs) {
      if (isKustomization(d.value)) continue;
      assert.ok(isK8sObject(d.value), `${d.where}: missing apiVersion, kind or metadata.name`);
      assert.notEqual(modelOf(d.value.apiVersion, d.value.kind), undefined, `${d.where}: unknown API group`);
    }
  });

  it('validate against the Kubernetes, cert-manager and Prometheus Operator schemas (kubernetes-models)', async () => {
    const problems: string[] = [];
    for (const d of resources) {
      const p = await modelProblem(d.value as K8sObject);
      if (p !== undefined) problems.push(`${d.where}: ${p}`);
    }
    assert.deepEqual(problems, []);
  });

  it('use no field the schemas do not define, in resources and in patches (as kubectl --validate=strict)', () => {
    const items = [
      ...resources.map((d) => ({ where: d.where, obj: d.value as K8sObject })),
      ...docs
        .filter((d) => patches.has(d.file))
        .map((d) => ({ where: d.where, obj: d.value as K8sObject, partial: true })),
      ...inlinePatches().map((p) => ({ ...p, partial: true })),
    ];
    assert.deepEqual(unknownFieldProblems(items), []);
  });

  it('the strict-field check finds a misspelt field (it can fail)', () => {
    const bad = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'x' },
      spec: {
        selector: {},
        template: { spec: { containers: [{ name: 'x', image: 'x', readinesProbe: {} }] } },
      },
    };
    const problems = unknownFieldProblems([{ where: 'bad', obj: bad }]);
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /^bad: .*readinesProbe/);
    const badPatch = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'x' },
      spec: { replica: 2 },
    };
    assert.equal(unknownFieldProblems([{ where: 'p', obj: badPatch, partial: true }]).length, 1);
  });

  it('kustomizations are Kustomization (v1beta1) or Component (v1alpha1) and name only files that exist', () => {
    assert.ok(kustomizations.length >= 8);
    for (const k of kustomizations) {
      const v = k.value as Record<string, unknown>;
      const dir = join(k.file, '..');
      assert.match(relative(DEPLOY_DIR, k.file), /(^|\/)kustomization\.yaml$/, k.where);
      if (v.kind === 'Component') assert.equal(v.apiVersion, 'kustomize.config.k8s.io/v1alpha1', k.where);
      else {
        assert.equal(v.kind, 'Kustomization', k.where);
        assert.equal(v.apiVersion, 'kustomize.config.k8s.io/v1beta1', k.where);
      }
      const refs = [
        ...((v.resources as string[] | undefined) ?? []),
        ...((v.components as string[] | undefined) ?? []),
        ...((v.patches as { path?: string }[] | undefined) ?? []).flatMap((p) =>
          p.path !== undefined ? [p.path] : [],
        ),
      ];
      for (const r of refs) {
        const p = join(dir, r);
        assert.ok(existsSync(p), `${k.where}: ${r} does not exist`);
        if (statSync(p).isDirectory())
          assert.ok(existsSync(join(p, 'kustomization.yaml')), `${k.where}: ${r} is not a kustomization`);
      }
      for (const c of (v.components as string[] | undefined) ?? []) {
        const target = readDocs(join(dir, c, 'kustomization.yaml'))[0]?.value as { kind?: string };
        assert.equal(target.kind, 'Component', `${k.where}: ${c} is listed as a component but is not one`);
      }
    }
  });

  it('every YAML file under deploy/ is used by a kustomization or applied on its own by the docs', () => {
    const used = new Set<string>();
    for (const k of kustomizations) {
      used.add(k.file);
      const v = k.value as { resources?: string[]; patches?: { path?: string }[] };
      for (const r of v.resources ?? []) used.add(join(k.file, '..', r));
      for (const p of v.patches ?? []) if (p.path !== undefined) used.add(join(k.file, '..', p.path));
    }
    // applied with kubectl apply -f (cert-manager/, istio/); istio/*-values.yaml are Helm's (yamlFiles skips them)
    const standalone = files.filter((f) => /^(cert-manager|istio)\//.test(relative(DEPLOY_DIR, f)));
    const orphans = files.filter((f) => !used.has(f) && !standalone.includes(f));
    assert.deepEqual(
      orphans.map((f) => relative(REPO_ROOT, f)),
      [],
    );
  });

  it('every deploy/ path the install, troubleshooting and security docs and the README name exists', () => {
    let named = 0;
    for (const doc of [
      'docs/install.md',
      'docs/operations/troubleshooting.md',
      'docs/security.md',
      'README.md',
    ]) {
      const text = readFileSync(join(REPO_ROOT, doc), 'utf8');
      for (const m of text.matchAll(
        /deploy\/(?:base|overlays|components|cert-manager|istio|Dockerfile)[\w.*/-]*/g,
      )) {
        const path = m[0].replace(/[.]+$/, '');
        if (path.includes('*')) continue;
        named++;
        assert.ok(existsSync(join(REPO_ROOT, path)), `${doc}: ${path} does not exist`);
      }
    }
    assert.ok(named >= 10, `only ${named} deploy/ paths found`);
  });
});
