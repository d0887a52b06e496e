import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Command } from 'commander';
import { systemClock } from '../ca/index.js';
import { renderCliDocs } from '../bin/cli-docs.js';
import { buildProgram } from '../bin/cli/program.js';
import { REPO_ROOT } from './support/cli.js';
import { checkInvocation } from './support/cli-check.js';

function markdownFiles(): string[] {
  const out = [join(REPO_ROOT, 'README.md')];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.md') && name !== 'cli.md') out.push(p);
    }
  };
  walk(join(REPO_ROOT, 'docs'));
  return out;
}

/** `lanyard …` invocations in fenced code blocks, with backslash continuations joined. */
function quotedInvocations(text: string): string[] {
  const found: string[] = [];
  for (const block of text.matchAll(/```[a-z]*\n([\s\S]*?)```/g)) {
    const joined = (block[1] ?? '').replace(/\\\n\s*/g, ' ');
    for (const line of joined.split('\n')) {
      const m = /(?:^|[\s;&|(])(?:npx )?lanyard ((?:[^#|;&>])+)/.exec(line);
      if (m !== null) found.push((m[1] ?? '').trim());
    }
  }
  return found;
}

describe('documentation', () => {
  it('docs/cli.md is exactly what the commands print for --help (regenerate with npm run docs:cli)', () => {
    assert.equal(readFileSync(join(REPO_ROOT, 'docs', 'cli.md'), 'utf8'), renderCliDocs());
  });

  const makeProgram = (): Command =>
    buildProgram({ clock: systemClock, env: {}, out: () => undefined, err: () => undefined });

  it('every lanyard command quoted in README.md and docs/ parses: commands, options, required options and choices', () => {
    const problems: string[] = [];
    let checked = 0;
    for (const file of markdownFiles()) {
      for (const inv of quotedInvocations(readFileSync(file, 'utf8'))) {
        checked++;
        const p = checkInvocation(makeProgram, inv);
        if (p !== undefined)
          problems.push(`${file.slice(REPO_ROOT.length + 1)}: lanyard ${inv}: ${p.code} ${p.message}`);
      }
    }
    assert.ok(checked > 5, `only ${checked} invocations found`);
    assert.deepEqual(problems, []);
  });

  it('the check refuses what lanyard itself would refuse, and accepts placeholders', () => {
    const code = (inv: string): string | undefined => checkInvocation(makeProgram, inv)?.code;
    assert.equal(code('anchor create --out x --no-such-flag'), 'commander.unknownOption');
    assert.equal(code('frobnicate --out x'), 'commander.unknownCommand');
    assert.equal(code('issuer creat --anchor a --cluster east --out e'), 'commander.unknownCommand');
    assert.equal(code('rotate staus --cluster east=DIR'), 'commander.unknownCommand');
    assert.equal(code('anchor'), 'commander.help');
    assert.equal(code('issuer create --anchor a'), 'commander.missingMandatoryOptionValue');
    assert.equal(code('serve --auth nonsense'), 'commander.invalidArgument');
    assert.equal(code('anchor create --out x -x'), 'commander.unknownOption');
    assert.equal(code('bundle show'), 'commander.missingArgument');
    assert.equal(code('bundle show a b'), 'commander.excessArguments');
    assert.equal(
      code('issuer create --anchor a --cluster east --out e --permit-dns cluster.local'),
      undefined,
    );
    assert.equal(code('anchor create --out DIR'), undefined);
    assert.equal(code('issuer --help'), undefined);
    assert.equal(code('--version'), undefined);
  });
});
