import type { Command } from 'commander';
import { generate, openRun } from '../index.js';
import { floatOption, intOption } from './common.js';

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .description('sample text from a trained run (KV-cached; deterministic for a fixed seed)')
    .requiredOption('-r, --run <dir>', 'run directory with a checkpoint')
    .option('--prompt <text>', 'text to continue', '\n')
    .option('-n, --max-tokens <n>', 'tokens to generate', intOption('--max-tokens'), 200)
    .option('-t, --temperature <t>', 'sampling temperature (0 = greedy)', floatOption('--temperature'), 0.8)
    .option('-k, --top-k <k>', 'sample among the k most likely tokens (0 = all)', intOption('--top-k'), 40)
    .option('--top-p <p>', 'nucleus sampling threshold (1 = off)', floatOption('--top-p'), 1)
    .option('--seed <s>', 'random seed', intOption('--seed'), 0)
    .action((o) => {
      const { model, tokenizer } = openRun(o.run);
      const text = generate(model, tokenizer, { prompt: o.prompt, maxTokens: o.maxTokens, temperature: o.temperature, topK: o.topK, topP: o.topP, seed: o.seed, onNotice: (m) => process.stderr.write(`note: ${m}\n`) });
      process.stdout.write(o.prompt + text + '\n');
    });
}
