import { Command } from 'commander';
import { formatReport, inspectFiles } from '../../ca/inspect/index.js';
import { type CliContext } from './kit.js';

/** `lanyard inspect` */
export function registerInspectCommand(program: Command, ctx: CliContext): void {
  program
    .command('inspect')
    .description(
      'show certificates, bundles and CSRs: names, validity and time left, keys, CA flags, key ids, fingerprints',
    )
    .argument('<file...>', 'PEM or DER files')
    .option('--json', 'print JSON', false)
    .action(async (files: string[], o: { json: boolean }) => {
      const results = await inspectFiles(files, ctx.clock.now());
      if (o.json) {
        ctx.out(JSON.stringify(results, null, 2));
        return;
      }
      ctx.out(results.flatMap((r) => r.items.map((i) => formatReport(r.file, i))).join('\n\n'));
    });
}
