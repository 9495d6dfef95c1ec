import type { Command } from 'commander';
import { evaluateFile, openRun, EVAL_DEFINITION } from '../index.js';
import { collect, positiveInt } from './common.js';

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('held-out loss (nats/token) and bits per byte of a trained run on text files')
    .requiredOption('-r, --run <dir>', 'run directory with a checkpoint')
    .requiredOption('-d, --data <file>', 'text file to evaluate (repeatable)', collect)
    .option('-b, --batch <n>', 'windows per forward pass', positiveInt('--batch'), 8)
    .option('--json', 'one JSON object per file: {"file", "loss", "bpb", "tokens"}')
    .addHelpText('after', `\nDefinition: ${EVAL_DEFINITION}`)
    .action((o) => {
      const { model, tokenizer } = openRun(o.run);
      const rows = (o.data as string[]).map((f) => evaluateFile(model, tokenizer, f, o.batch));
      if (o.json) {
        for (const r of rows) process.stdout.write(JSON.stringify(r) + '\n');
        return;
      }
      const w = Math.max(4, ...rows.map((r) => r.file.length));
      process.stdout.write(`${'file'.padEnd(w)}  ${'loss'.padStart(8)}  ${'bpb'.padStart(8)}  ${'tokens'.padStart(10)}\n`);
      for (const r of rows) {
        process.stdout.write(`${r.file.padEnd(w)}  ${r.loss.toFixed(4).padStart(8)}  ${r.bpb.toFixed(4).padStart(8)}  ${String(r.tokens).padStart(10)}\n`);
      }
    });
}
