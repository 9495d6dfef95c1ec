import type { Command } from 'commander';
import { inspectRun, inspectOutDir, writeInspection } from '../index.js';
import { collect, intOption, positiveInt } from './common.js';
import { inspectionText } from './inspect_format.js';

const HELP = `
Runs the run's last checkpoint in evaluation mode (its evaluation routing) over its fixed validation
batches (or --data files) and prints per MoE layer each expert's load share, utilisation
(load / fair share; 0 = dead), dead experts, max/mean imbalance, drop rate, router entropy, the
balancing bias, and each expert's most assigned tokens with the share of that token's occurrences
the expert received; per PEER layer the fraction of experts retrieved and KL(usage || uniform),
per layer and per head. Writes routing.json and the heatmap expert_load.{vl.json,svg,png} to
<run>/inspect/, or --out: while a trainer holds the run's lock, --out (outside the run) is required.`;

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('show how a MoE or PEER run routes: expert load, dead experts, entropy, bias, top tokens per expert, PEER coverage')
    .requiredOption('-r, --run <dir>', 'run directory with a checkpoint (read-only; may be training)')
    .option('-d, --data <file>', 'text file or folder to run instead of the validation batches (repeatable)', collect)
    .option('-n, --batches <n>', 'batches to run (default: the run\'s train.evalBatches, or all windows of --data)', positiveInt('--batches'))
    .option('--top <n>', 'top tokens listed per expert', intOption('--top'), 8)
    .option('-o, --out <dir>', 'folder for routing.json and the heatmap (default <run>/inspect)')
    .option('--no-save', 'write no files')
    .option('--json', 'print the inspection as JSON instead of tables')
    .addHelpText('after', HELP)
    .action(async (o) => {
      // where to write is decided first: a locked run without --out fails before any work
      const save = o.save !== false;
      if (save) inspectOutDir(o.run, o.out);
      const onNotice = (m: string): void => void process.stderr.write(`moelab: ${m}\n`);
      const r = inspectRun(o.run, { data: o.data, batches: o.batches, top: o.top, onNotice });
      process.stdout.write(o.json ? JSON.stringify(r) + '\n' : inspectionText(r, o.top));
      if (!save) return;
      const files = await writeInspection(inspectOutDir(o.run, o.out), r); // asked again: a trainer may have started meanwhile
      onNotice(`written: ${files.join(', ')}`);
    });
}
