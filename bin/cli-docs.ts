// Renders docs/cli.md from the command tree, so the reference is exactly what `--help` prints.
// `npm run docs:cli` rewrites the file; a test fails when it is out of date.
import { writeFileSync } from 'node:fs';
import type { CliContext } from './cli/index.js';
import { systemClock } from '../ca/index.js';
import { allCommands, buildProgram, commandPath } from './cli/index.js';

const INTRO = `# CLI reference

\`lanyard\` is the one command-line entry. Every command answers \`--help\`. Exit codes: **0** success,
**1** failure (the message ends with an error code such as \`(ERR_KEY_MISMATCH)\`), **2** usage error
(unknown flag, missing option, bad value). \`lanyard check\` also exits **3** when something expires within
the warning window.

Every \`lanyard serve\` flag can also be set through the environment variable shown as \`(env: LANYARD_…)\`.

This file is generated from the commands' own help by \`npm run docs:cli\`; a test keeps it in step.
`;

export function renderCliDocs(): string {
  const ctx: CliContext = { clock: systemClock, env: {}, out: () => undefined, err: () => undefined };
  const program = buildProgram(ctx);
  const sections = allCommands(program)
    .filter((c) => c.name() !== 'help')
    .map((c) => `## \`${commandPath(c)}\`\n\n\`\`\`text\n${c.helpInformation().trimEnd()}\n\`\`\`\n`);
  return `${INTRO}\n${sections.join('\n')}`;
}

// Run directly (npm run docs:cli): write to the path given as the first argument.
const target = process.argv[2];
if (target !== undefined && /cli-docs\.[jt]s$/.test(process.argv[1] ?? ''))
  writeFileSync(target, renderCliDocs());
