// deploy/Dockerfile, checked without a Docker engine: parsed and linted (dockerfile-ast,
// dockerfile-utils), its stages, base images and user; every COPY source present in the build
// context after .dockerignore; the entrypoint a file the build stage produces; and the runtime's
// production-only dependencies enough for everything `lanyard` loads.
import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { describe, it } from 'node:test';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { buildProgram } from '../../bin/cli/program.js';
import { systemClock } from '../../ca/index.js';
import {
  DEPLOY_DIR,
  REPO_ROOT,
  byKind,
  lanyardContainer,
  packageJson,
  readDocs,
  type K8sObject,
} from './support.js';

const DOCKERFILE = join(DEPLOY_DIR, 'Dockerfile');
const text = readFileSync(DOCKERFILE, 'utf8');
const dockerfile = DockerfileParser.parse(text);
const instructions = dockerfile.getInstructions();
const args = (i: Instruction): string[] => i.getArguments().map((a) => a.getValue());

/** Instructions by build stage, in order. */
const stages: { name: string; image: string; body: Instruction[] }[] = [];
for (const i of instructions) {
  if (i.getKeyword() === 'FROM') {
    const a = args(i);
    stages.push({ name: a[2] ?? String(stages.length), image: a[0] ?? '', body: [] });
  } else stages.at(-1)?.body.push(i);
}
const stage = (name: string): (typeof stages)[number] => {
  const s = stages.find((x) => x.name === name);
  if (s === undefined) throw new Error(`no stage ${name}`);
  return s;
};
const runtime = stages.at(-1);
const deployment = byKind<IDeployment>(
  readDocs(join(DEPLOY_DIR, 'base', 'deployment.yaml')).map((d) => d.value as K8sObject),
  'Deployment',
);

/**
 * .dockerignore as Docker reads it: patterns relative to the context root, `*` and `?` within one
 * path element, `**` across elements, `!` re-includes, the last matching line wins, and a pattern
 * that matches a directory excludes everything under it.
 */
function dockerignore(file: string): (path: string) => boolean {
  const rules = readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = posix.normalize((negate ? l.slice(1) : l).trim()).replace(/^\/+/, '');
      let re = '';
      for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i] as string;
        if (c === '*' && pattern[i + 1] === '*') {
          re += pattern[i + 2] === '/' ? '(?:.*/)?' : '.*';
          i += pattern[i + 2] === '/' ? 2 : 1;
        } else if (c === '*') re += '[^/]*';
        else if (c === '?') re += '[^/]';
        else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      return { negate, re: new RegExp(`^${re}$`) };
    });
  return (path: string) => {
    const parts = path.split('/');
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const r of rules) if (prefixes.some((p) => r.re.test(p))) excluded = !r.negate;
    return excluded;
  };
}
const ignored = dockerignore(join(REPO_ROOT, '.dockerignore'));

function filesUnder(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path).flatMap((n) => filesUnder(join(path, n)));
}

/** Bare package names imported by everything `node dist/bin/lanyard.js` can load (its import graph). */
function runtimeImports(entry: string): Set<string> {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(
      /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\s*\(?\s*['"]([^'"]+)['"]/gm,
    )) {
      const spec = m[1] ?? m[2] ?? '';
      if (spec.startsWith('.')) {
        const ts = join(dirname(file), spec.replace(/\.js$/, '.ts'));
        const target = existsSync(ts) ? ts : join(dirname(file), spec, 'index.ts');
        assert.ok(existsSync(target), `${relative(REPO_ROOT, file)} imports ${spec}, which does not exist`);
        visit(target);
      } else if (!spec.startsWith('node:') && !builtinModules.includes(spec)) {
        const parts = spec.split('/');
        packages.add(spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string));
      }
    }
  };
  visit(entry);
  return packages;
}

describe('deploy/Dockerfile', () => {
  it('parses and passes the Dockerfile linter (dockerfile-utils) with no problem', () => {
    assert.deepEqual(
      validate(text).map(
        (d) =>
          `line ${d.range.start.line + 1}: ${typeof d.message === 'string' ? d.message : d.message.value}`,
      ),
      [],
    );
    // the linter does report problems
    assert.ok(validate('FROM node:20-bookworm-slim\nEXPOSE abc\n').length > 0);
  });

  it('has a build stage and a runtime stage, both on the Node 20 slim image the package supports', () => {
    assert.deepEqual(
      stages.map((s) => s.name),
      ['build', 'runtime'],
    );
    for (const s of stages) assert.match(s.image, /^node:20-[a-z]+-slim$/);
    assert.match(packageJson().engines.node, /^>=\s*20\b/);
  });

  it('runs as a numeric non-root user, the same uid and gid as the Deployment', () => {
    const users = runtime?.body.filter((i) => i.getKeyword() === 'USER') ?? [];
    assert.equal(users.length, 1);
    const [uid, gid] = (args(users[0] as Instruction)[0] ?? '').split(':').map(Number);
    assert.ok(uid !== undefined && uid > 0 && gid !== undefined && gid > 0);
    const sc = deployment.spec?.template.spec?.securityContext;
    assert.deepEqual([uid, gid], [sc?.runAsUser, sc?.runAsGroup]);
    // USER comes after the last RUN, so nothing runs as root after it
    const body = runtime?.body ?? [];
    assert.ok(body.indexOf(users[0] as Instruction) > body.map((i) => i.getKeyword()).lastIndexOf('RUN'));
  });

  it('installs only production dependencies in the runtime stage, without lifecycle scripts', () => {
    const runs = (runtime?.body ?? []).filter((i) => i.getKeyword() === 'RUN').map((i) => args(i).join(' '));
    assert.ok(
      runs.some((r) => /npm ci --omit=dev --ignore-scripts\b/.test(r)),
      runs.join('\n'),
    );
    assert.ok(!runs.some((r) => /npm (i|install)\b/.test(r)));
    const build = stage('build')
      .body.filter((i) => i.getKeyword() === 'RUN')
      .map((i) => args(i).join(' '));
    assert.ok(build.some((r) => /^npm ci --ignore-scripts\b/.test(r)));
    assert.ok(build.includes('npm run build'));
  });

  it('copies only sources that exist in the build context after .dockerignore', () => {
    let checked = 0;
    for (const s of stages) {
      for (const i of s.body.filter((x) => x.getKeyword() === 'COPY' || x.getKeyword() === 'ADD')) {
        assert.equal(i.getKeyword(), 'COPY', 'ADD fetches and unpacks; COPY only');
        if (text.split('\n')[i.getRange().start.line]?.includes('--from=')) continue;
        for (const src of args(i).slice(0, -1)) {
          const p = join(REPO_ROOT, src);
          assert.ok(existsSync(p), `COPY ${src}: not in the repository`);
          const files = filesUnder(p).map((f) => relative(REPO_ROOT, f));
          assert.ok(
            files.some((f) => !ignored(f)),
            `COPY ${src}: excluded from the build context by .dockerignore`,
          );
          checked++;
        }
      }
    }
    assert.ok(checked >= 6);
    // what .dockerignore keeps out
    for (const p of ['node_modules/x', 'dist/bin/lanyard.js', '.git/HEAD', 'test/docs.test.ts', 'README.md'])
      assert.ok(ignored(p), p);
    assert.ok(!ignored('issuer/grpc/identity.proto'));
  });

  it('the build stage compiles every folder tsconfig.build.json includes, into the dist/ the runtime copies', () => {
    const build = stage('build');
    const copied = build.body.filter((i) => i.getKeyword() === 'COPY').flatMap((i) => args(i).slice(0, -1));
    const tsconfig = JSON.parse(readFileSync(join(REPO_ROOT, 'tsconfig.build.json'), 'utf8')) as {
      extends: string;
      include: string[];
    };
    for (const inc of tsconfig.include) assert.ok(copied.includes(inc.split('/')[0] as string), inc);
    assert.ok(copied.includes('tsconfig.json') && copied.includes('tsconfig.build.json'));
    const baseConfig = JSON.parse(readFileSync(join(REPO_ROOT, tsconfig.extends), 'utf8')) as {
      compilerOptions: { outDir: string; rootDir: string };
    };
    assert.deepEqual([baseConfig.compilerOptions.outDir, baseConfig.compilerOptions.rootDir], ['dist', '.']);
    const workdir = args(build.body.find((i) => i.getKeyword() === 'WORKDIR') as Instruction)[0];
    const fromBuild = (runtime?.body ?? []).find(
      (i) => i.getKeyword() === 'COPY' && text.split('\n')[i.getRange().start.line]?.includes('--from=build'),
    );
    assert.deepEqual(args(fromBuild as Instruction), [`${workdir ?? ''}/dist`, './dist']);
    // every gRPC service definition (Linkerd's identity.proto, Istio's istio-ca.proto) travels with
    // the compiled code: the build script names each one and copies it into dist/issuer/grpc
    const script = packageJson().scripts.build ?? '';
    const protos = readdirSync(join(REPO_ROOT, 'issuer', 'grpc')).filter((f) => f.endsWith('.proto'));
    assert.ok(protos.includes('identity.proto') && protos.includes('istio-ca.proto'));
    for (const proto of protos)
      assert.ok(script.includes(`'${proto}'`), `${proto} is not copied by the build`);
    assert.match(script, /cpSync\('issuer\/grpc\/' \+ f, 'dist\/issuer\/grpc\/' \+ f\)/);
  });

  it('starts `node dist/bin/lanyard.js serve`: a file the build produces and a command that exists', () => {
    const entry = runtime?.body.find((i) => i.getKeyword() === 'ENTRYPOINT');
    const cmd = runtime?.body.find((i) => i.getKeyword() === 'CMD');
    const json = (i: Instruction | undefined): string[] =>
      (i as unknown as { getJSONStrings(): { getJSONValue(): string }[] })
        .getJSONStrings()
        .map((j) => j.getJSONValue());
    assert.deepEqual(json(entry), ['node', 'dist/bin/lanyard.js']);
    // dist/bin/lanyard.js is tsc's output for bin/lanyard.ts (rootDir ".", outDir "dist")
    assert.ok(existsSync(join(REPO_ROOT, 'bin', 'lanyard.ts')));
    assert.equal(packageJson().bin.lanyard, 'dist/bin/lanyard.js');
    const program = buildProgram({ clock: systemClock, env: {}, out: () => undefined, err: () => undefined });
    assert.deepEqual(json(cmd), ['serve']);
    assert.ok(program.commands.some((c) => c.name() === (json(cmd)[0] ?? '')));
    // the Deployment relies on this entrypoint and passes the same command
    const c = lanyardContainer(deployment);
    assert.equal(c.command, undefined);
    assert.deepEqual(c.args, json(cmd));
  });

  it('exposes the container ports of the Deployment', () => {
    const expose = (runtime?.body ?? []).filter((i) => i.getKeyword() === 'EXPOSE').flatMap((i) => args(i));
    const ports = lanyardContainer(deployment).ports?.map((p) => String(p.containerPort));
    assert.deepEqual(expose, ports);
  });

  it('production dependencies are enough for everything lanyard loads at run time', () => {
    const pkg = packageJson();
    const used = runtimeImports(join(REPO_ROOT, 'bin', 'lanyard.ts'));
    assert.ok(used.has('fastify') && used.has('@grpc/grpc-js'));
    const missing = [...used].filter((p) => pkg.dependencies[p] === undefined);
    assert.deepEqual(missing, [], `imported at run time but not in dependencies: ${missing.join(', ')}`);
  });
});
