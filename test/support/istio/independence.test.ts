// The Istio test client is not our own client: no file under test/support/istio may load the product
// (ca/, issuer/, trust-bundles/, bin/), directly or through another file of the repository. Read from
// the import specifiers of the files themselves (static, re-export, side-effect and dynamic imports).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

const REPO = resolve(import.meta.dirname, '../../..');
const PRODUCT = ['ca', 'issuer', 'trust-bundles', 'bin'];
const SPECIFIER =
  /\b(?:import|export)\s[^'"`;]*?\sfrom\s*['"]([^'"]+)['"]|\bimport\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

const isProduct = (file: string): boolean =>
  PRODUCT.some((dir) => relative(REPO, file).startsWith(`${dir}/`));

/** The repository file a relative specifier names (`./x.js` is `./x.ts`), or undefined for a package. */
function resolveSpecifier(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = resolve(dirname(from), spec);
  const candidates = [base.replace(/\.js$/, '.ts'), base, `${base}.ts`, join(base, 'index.ts')];
  const found = candidates.find((c) => existsSync(c) && statSync(c).isFile());
  assert.ok(found !== undefined, `${relative(REPO, from)}: cannot resolve ${spec}`);
  return found;
}

/** Every repository file `file` loads, transitively, with the chain that reaches it. */
function reachable(file: string): Map<string, string[]> {
  const seen = new Map<string, string[]>([[file, [file]]]);
  const queue = [file];
  for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
    for (const m of readFileSync(f, 'utf8').matchAll(SPECIFIER)) {
      const target = resolveSpecifier(f, m[1] ?? m[2] ?? m[3] ?? '');
      if (target === undefined || seen.has(target)) continue;
      seen.set(target, [...(seen.get(f) ?? []), target]);
      if (!isProduct(target)) queue.push(target);
    }
  }
  return seen;
}

/** The chains from `file` into the product, as `a.ts -> b.ts -> ca/index.ts`. */
function productImports(file: string): string[] {
  return [...reachable(file).entries()]
    .filter(([f]) => isProduct(f))
    .map(([, chain]) => chain.map((c) => relative(REPO, c)).join(' -> '));
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return tsFiles(p);
    return name.endsWith('.ts') ? [p] : [];
  });
}

describe('test/support/istio is independent of the product', () => {
  it('no file under it imports ca/, issuer/, trust-bundles/ or bin/, even through other repository files', () => {
    const files = tsFiles(import.meta.dirname);
    assert.ok(files.length >= 10, 'the client’s files are found');
    assert.deepEqual(files.flatMap(productImports), []);
  });

  it('the check finds such an import through another file (it can fail)', () => {
    // test/support/openssl.ts encodes PEM with the CA's encoder
    const chains = productImports(join(REPO, 'test/support/openssl.ts'));
    assert.ok(chains.includes('test/support/openssl.ts -> ca/index.ts'), chains.join('\n'));
    // and type-only, re-exported and multi-line imports count too
    const authn = productImports(join(REPO, 'test/support/authn.ts'));
    assert.ok(
      authn.some((c) => c.endsWith('issuer/authn/index.ts')),
      authn.join('\n'),
    );
  });
});
