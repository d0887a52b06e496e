// Shared by the deploy/ tests: reading the manifests, validating them against the Kubernetes (and CRD)
// models, rendering the kustomize overlays with a real renderer when one is installed, and reading a
// container's `lanyard serve` arguments and environment through the real command-line parser.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import { UsageError, systemClock } from '../../ca/index.js';
import { allCommands, buildProgram } from '../../bin/cli/program.js';
import { buildIssuerConfig, type IssuerConfig, type ServeFlags } from '../../issuer/config.js';
import { REPO_ROOT } from '../support/cli.js';

export { REPO_ROOT };
export const DEPLOY_DIR = join(REPO_ROOT, 'deploy');

/** The overlays and what each must render to. */
export const OVERLAYS = [
  { dir: 'overlays/east', cluster: 'east', namespace: 'lanyard', dropIn: false },
  { dir: 'overlays/west', cluster: 'west', namespace: 'lanyard', dropIn: false },
  { dir: 'overlays/linkerd-east', cluster: 'east', namespace: 'linkerd', dropIn: true },
  { dir: 'overlays/linkerd-west', cluster: 'west', namespace: 'linkerd', dropIn: true },
] as const;

/** Any Kubernetes object, as parsed; narrowed with `as` once it has validated against its model. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

export interface Doc {
  /** path relative to the repository root, with the document's index when the file holds several */
  readonly where: string;
  readonly file: string;
  readonly value: unknown;
}

/** Helm values files (deploy/istio/*-values.yaml): YAML, but no Kubernetes objects. */
const HELM_VALUES = /-values\.ya?ml$/;

function walkYaml(keep: (name: string) => boolean): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(name) && keep(name)) out.push(p);
    }
  };
  walk(DEPLOY_DIR);
  return out;
}

/** Every *.yaml / *.yml file under deploy/ but the Helm values files, sorted. */
export function yamlFiles(): string[] {
  return walkYaml((name) => !HELM_VALUES.test(name));
}

/** The Helm values files under deploy/ (*-values.yaml), sorted. */
export function helmValuesFiles(): string[] {
  return walkYaml((name) => HELM_VALUES.test(name));
}

/** Parses every document of a YAML text; any parse error or warning throws, naming `where`. */
export function parseYamlDocs(text: string, where: string): unknown[] {
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  if (!Array.isArray(docs)) throw new Error(`${where}: not a YAML stream`);
  const values: unknown[] = [];
  for (const d of docs) {
    const problems = [...d.errors, ...d.warnings];
    if (problems.length > 0) throw new Error(`${where}: ${problems.map((e) => e.message).join('; ')}`);
    const v: unknown = d.toJS();
    if (v !== null && v !== undefined) values.push(v);
  }
  return values;
}

export function readDocs(file: string): Doc[] {
  const rel = relative(REPO_ROOT, file);
  const values = parseYamlDocs(readFileSync(file, 'utf8'), rel);
  return values.map((value, i) => ({ where: values.length > 1 ? `${rel}#${i}` : rel, file, value }));
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isKustomization(v: unknown): boolean {
  return (
    isRecord(v) && typeof v.apiVersion === 'string' && v.apiVersion.startsWith('kustomize.config.k8s.io/')
  );
}

export function isK8sObject(v: unknown): v is K8sObject {
  return (
    isRecord(v) &&
    typeof v.apiVersion === 'string' &&
    typeof v.kind === 'string' &&
    isRecord(v.metadata) &&
    typeof v.metadata.name === 'string'
  );
}

/** Files that kustomize uses as strategic-merge patches: partial objects, not whole resources. */
export function patchFiles(): Set<string> {
  const patches = new Set<string>();
  for (const file of yamlFiles()) {
    for (const d of readDocs(file)) {
      if (!isKustomization(d.value) || !isRecord(d.value)) continue;
      const list = d.value.patches;
      if (!Array.isArray(list)) continue;
      for (const p of list)
        if (isRecord(p) && typeof p.path === 'string') patches.add(join(file, '..', p.path));
    }
  }
  return patches;
}

/** Where the model of an apiVersion/kind lives: the module to import and its interface's name. */
export function modelOf(apiVersion: string, kind: string): { specifier: string; iface: string } | undefined {
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  let pkg: string;
  if (group === '') pkg = `kubernetes-models/${version}`;
  else if (group === 'cert-manager.io' || group === 'trust.cert-manager.io')
    pkg = `@kubernetes-models/cert-manager/${group}/${version}`;
  else if (group === 'monitoring.coreos.com')
    pkg = `@kubernetes-models/prometheus-operator/${group}/${version}`;
  else if (group.includes('.') && !group.endsWith('.k8s.io')) return undefined;
  else pkg = `kubernetes-models/${group}/${version}`;
  return { specifier: `${pkg}/${kind}`, iface: `I${kind}` };
}

interface ModelClass {
  new (data: unknown): { validate(): void };
}

/**
 * Validates one object with its model's JSON-schema validator (types, enums, required fields,
 * formats). Returns the problem, or undefined when it is valid. Unknown fields are not caught
 * here (the Kubernetes schemas allow them): see `unknownFieldProblems`.
 */
export async function modelProblem(obj: K8sObject): Promise<string | undefined> {
  const m = modelOf(obj.apiVersion, obj.kind);
  if (m === undefined) return `no model for ${obj.apiVersion} ${obj.kind}`;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(m.specifier)) as Record<string, unknown>;
  } catch {
    return `no model for ${obj.apiVersion} ${obj.kind} (${m.specifier})`;
  }
  const Model = mod[obj.kind] as ModelClass | undefined;
  if (Model === undefined) return `${m.specifier} exports no ${obj.kind}`;
  try {
    new Model(obj).validate();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

const parsedDeclarations = new Map<string, ts.SourceFile>();
let previousProgram: ts.Program | undefined;

/**
 * The strict-field check `kubectl apply` does on the server (--validate=strict): every field must
 * exist in the model. Each object is written as a TypeScript object literal typed by its model's
 * interface (kubernetes-models .d.ts, generated from the same OpenAPI) and type-checked in memory,
 * so a misspelt or misplaced field is an excess-property error. `partial` objects (strategic-merge
 * patches) are checked against a deep-partial of the interface. Returns "where: problem" lines.
 */
export function unknownFieldProblems(
  items: readonly { where: string; obj: K8sObject; partial?: boolean }[],
): string[] {
  const file = join(REPO_ROOT, 'test', 'deploy', '__manifests_under_test.ts');
  const lines = [
    'type DeepPartial<T> = T extends readonly (infer E)[] ? DeepPartial<E>[] : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;',
  ];
  const whereOfLine = new Map<number, string>();
  items.forEach((item, i) => {
    const m = modelOf(item.obj.apiVersion, item.obj.kind);
    if (m === undefined) return;
    lines.push(`import type { ${m.iface} as M${i} } from '${m.specifier}';`);
    whereOfLine.set(lines.length, item.where);
    const type = item.partial === true ? `DeepPartial<M${i}>` : `M${i}`;
    lines.push(`export const o${i}: ${type} = ${JSON.stringify(item.obj)};`);
  });
  const source = lines.join('\n');
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (name, lang, ...rest) => {
    if (name === file) return ts.createSourceFile(name, source, lang);
    // the model declarations do not change within a run: parse each once
    let sf = parsedDeclarations.get(name);
    if (sf === undefined) {
      sf = getSourceFile(name, lang, ...rest);
      if (sf !== undefined) parsedDeclarations.set(name, sf);
    }
    return sf;
  };
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram({
    rootNames: [file],
    options,
    host,
    ...(previousProgram !== undefined ? { oldProgram: previousProgram } : {}),
  });
  previousProgram = program;
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, ' ');
    if (d.file?.fileName !== file || d.start === undefined) return message;
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    const where = whereOfLine.get(line) ?? `line ${line + 1}`;
    const lineText = lines[line] ?? '';
    return `${where}: ${message} (near ${lineText.slice(Math.max(0, character - 30), character + 50)})`;
  });
}

/** A kustomize renderer found on this machine: the kustomize binary or kubectl's built-in one. */
export interface Renderer {
  readonly name: string;
  render(dir: string): K8sObject[];
}

/** The renderer to use; DEPLOY_TEST_RENDERER=none forces the file-by-file mode (to try it). */
export function findRenderer(): Renderer | undefined {
  if (process.env.DEPLOY_TEST_RENDERER === 'none') return undefined;
  const candidates: { name: string; cmd: string; probe: string[]; build: (dir: string) => string[] }[] = [
    { name: 'kustomize build', cmd: 'kustomize', probe: ['version'], build: (d) => ['build', d] },
    {
      name: 'kubectl kustomize',
      cmd: 'kubectl',
      probe: ['kustomize', '--help'],
      build: (d) => ['kustomize', d],
    },
  ];
  for (const c of candidates) {
    const probe = spawnSync(c.cmd, c.probe, { encoding: 'utf8', timeout: 15_000 });
    if (probe.status !== 0) continue;
    return {
      name: c.name,
      render(dir: string): K8sObject[] {
        const r = spawnSync(c.cmd, c.build(dir), { encoding: 'utf8', timeout: 30_000 });
        if (r.status !== 0) throw new Error(`${c.name} ${dir} failed: ${r.stderr || r.error?.message || ''}`);
        const values = parseYamlDocs(r.stdout, `${c.name} ${dir}`);
        for (const v of values) if (!isK8sObject(v)) throw new Error(`${dir} rendered a non-object`);
        return values as K8sObject[];
      },
    };
  }
  return undefined;
}

/** The one object of `kind` (and `name`), typed as its model's interface by the caller. */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the model type
export function byKind<T>(objs: readonly K8sObject[], kind: string, name?: string): T {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1)
    throw new Error(`expected one ${kind}${name !== undefined ? ` ${name}` : ''}, found ${found.length}`);
  return found[0] as unknown as T;
}

export function lanyardContainer(d: IDeployment): IContainer {
  const c = d.spec?.template.spec?.containers.find((x) => x.name === 'lanyard');
  if (c === undefined) throw new Error(`Deployment ${d.metadata?.name ?? ''} has no container "lanyard"`);
  return c;
}

export function volumeOf(d: IDeployment, name: string): IVolume {
  const v = d.spec?.template.spec?.volumes?.find((x) => x.name === name);
  if (v === undefined) throw new Error(`Deployment has no volume ${name}`);
  return v;
}

/** What `lanyard serve` makes of a container: the flags commander parsed and the validated config. */
export interface ServeInvocation {
  readonly flags: ServeFlags;
  readonly config: IssuerConfig;
}

/**
 * Runs the container's arguments and LANYARD_* environment through the real `lanyard` command tree
 * (commander: choices, duration parsing, mandatory options, environment variables) with the `serve`
 * action replaced by a capture, then through buildIssuerConfig. Throws on anything the real binary
 * would refuse, and on a LANYARD_* variable that no flag reads (a typo would be silently ignored).
 * The container must rely on the image's entrypoint (no `command`).
 */
export function parseServe(container: IContainer): ServeInvocation {
  if (container.command !== undefined)
    throw new Error('the container overrides the image entrypoint (command)');
  const program = buildProgram({
    clock: systemClock,
    env: {},
    out: () => undefined,
    err: () => undefined,
  });
  const serve = program.commands.find((c) => c.name() === 'serve');
  if (serve === undefined) throw new Error('no serve command');
  const errors: string[] = [];
  for (const c of allCommands(program)) {
    c.exitOverride();
    c.configureOutput({ writeOut: () => undefined, writeErr: (s) => errors.push(s.trim()) });
  }
  let captured: ServeFlags | undefined;
  serve.action((flags: ServeFlags) => {
    captured = flags;
  });
  const known = new Set(serve.options.map((o) => o.envVar).filter((v) => v !== undefined));
  const env = new Map<string, string>();
  for (const e of container.env ?? []) {
    if (!e.name.startsWith('LANYARD_')) continue;
    if (!known.has(e.name)) throw new UsageError(`${e.name} is not read by lanyard serve`);
    if (e.value === undefined) throw new Error(`${e.name}: only literal values are checked here`);
    env.set(e.name, e.value);
  }
  const saved = Object.entries(process.env).filter(([k]) => k.startsWith('LANYARD_'));
  for (const [k] of saved) Reflect.deleteProperty(process.env, k);
  for (const [k, v] of env) process.env[k] = v;
  try {
    program.parse(container.args ?? [], { from: 'user' });
  } catch (err) {
    throw new UsageError(`lanyard ${(container.args ?? []).join(' ')}: ${errors.join(' ') || String(err)}`);
  } finally {
    for (const k of env.keys()) Reflect.deleteProperty(process.env, k);
    for (const [k, v] of saved) process.env[k] = v;
  }
  if (captured === undefined)
    throw new Error(`"${(container.args ?? []).join(' ')}" does not run lanyard serve`);
  return { flags: captured, config: buildIssuerConfig(captured) };
}

/** The durations kubernetes and cert-manager write ("48h", "2160h0m0s", "25h30m"), in ms. */
export function goDurationMs(s: string): number {
  const re = /(\d+(?:\.\d+)?)(h|ms|m|s)/g;
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  let total = 0;
  let consumed = 0;
  for (const m of s.matchAll(re)) {
    total += Number(m[1]) * (unit[m[2] as string] as number);
    consumed += m[0].length;
  }
  if (consumed !== s.length || consumed === 0) throw new Error(`"${s}" is not a Go duration`);
  return total;
}

export function packageJson(): {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  scripts: Record<string, string>;
  bin: Record<string, string>;
  engines: { node: string };
} {
  return JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as ReturnType<typeof packageJson>;
}
