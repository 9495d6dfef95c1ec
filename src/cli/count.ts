import type { Command } from 'commander';
import { countModel } from '../spec/count.js';
import { configFromFlags, collect } from './common.js';

export function registerCount(program: Command): void {
  program
    .command('count')
    .description('parameters (total, active per token), FLOPs per token and sparsity of a model')
    .option('-p, --preset <name>', 'a named preset', undefined)
    .option('-c, --config <file>', 'a JSON config file')
    .option('--set <key=value>', 'override a config field (repeatable)', collect)
    .option('--json', 'print JSON')
    .addHelpText('after', '\nFLOPs/token follow the PyTorch reference: 6 * forward MACs/token + 12 * layers * d * seq.')
    .action((o) => {
      const cfg = configFromFlags({ preset: o.preset ?? (o.config ? undefined : 'tiny'), config: o.config, set: o.set });
      const c = countModel(cfg.model);
      if (o.json) {
        process.stdout.write(JSON.stringify({ name: cfg.name, ...c }) + '\n');
        return;
      }
      const fmt = (n: number) => n.toLocaleString('en-US');
      process.stdout.write(`${cfg.name}\n`);
      process.stdout.write(`  params total        ${fmt(c.paramsTotal)}\n`);
      process.stdout.write(`  params active/token ${fmt(c.paramsActive)}\n`);
      process.stdout.write(`  fwd MACs/token      ${fmt(c.fwdMacsPerToken)}\n`);
      process.stdout.write(`  train FLOPs/token   ${fmt(c.flopsPerToken)} (${(c.flopsPerToken / 1e6).toFixed(2)} M)\n`);
      process.stdout.write(`  sparsity            ${c.sparsity.toFixed(4)}\n`);
    });
}
