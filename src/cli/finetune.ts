import { Option, type Command } from 'commander';
import { finetuneRun, resolveTask, writeResultFile, FREEZE_GROUPS, type FreezeGroup } from '../index.js';
import { join } from 'node:path';
import { positiveInt, floatOption } from './common.js';
import { table } from './eval_format.js';

function freezeList(v: string, prev: FreezeGroup[] = []): FreezeGroup[] {
  const out = [...prev];
  for (const g of v.split(',')) {
    if (!(FREEZE_GROUPS as readonly string[]).includes(g)) throw new Error(`--freeze takes ${FREEZE_GROUPS.join(', ')} (comma-separated or repeated), got '${g}'`);
    out.push(g as FreezeGroup);
  }
  return out;
}

export function registerFinetune(program: Command): void {
  program
    .command('finetune')
    .description("fine-tune a run on a multiple-choice task's train split (loss on the gold answer only) and compare test accuracy before and after")
    .requiredOption('-r, --run <dir>', 'parent run directory (read only)')
    .requiredOption('-t, --task <file|name>', 'task: a JSONL file with "split": "train" items, or a built-in task')
    .requiredOption('-o, --out <dir>', 'new run directory (with --seeds > 1: <out>/seed-<s>)')
    .option('--steps <n>', 'optimizer steps', positiveInt('--steps'), 100)
    .option('--lr <x>', 'peak learning rate (warmup steps/10, cosine to lr/10)', floatOption('--lr'), 1e-4)
    .option('-b, --batch <n>', 'examples per step', positiveInt('--batch'), 8)
    .option('--freeze <groups>', `parameter groups not updated: ${FREEZE_GROUPS.join(', ')} (repeatable)`, freezeList)
    .option('--no-balance', 'turn the MoE balancing and z-losses off while fine-tuning')
    .option('--expert-dropout <p>', 'dropout rate in [0, 1) on MoE experts\' hidden activations while fine-tuning (Switch Transformer uses 0.4)', floatOption('--expert-dropout'), 0)
    .addOption(new Option('--precision <p>', "the GEMMs' arithmetic while fine-tuning, whatever the parent trained in (bf16 needs AVX512_BF16)").choices(['fp32', 'bf16']).default('fp32'))
    .option('--seeds <n>', 'independent fine-tunes (seeds 0..n-1)', positiveInt('--seeds'), 1)
    .option('--json', 'print the report as JSON')
    .action((o) => {
      const task = resolveTask(o.task);
      const onNotice = (m: string): void => void process.stderr.write(`moelab: ${m}\n`);
      const report = finetuneRun(o.run, task, {
        out: o.out, steps: o.steps, lr: o.lr, batch: o.batch, freeze: o.freeze, balance: o.balance, expertDropout: o.expertDropout, precision: o.precision, seeds: o.seeds, onNotice,
        onStep: (e) => { if (e.step % 10 === 0 || e.step === o.steps) onNotice(`step ${e.step}: answer loss ${e.loss.toFixed(4)}`); },
      });
      const file = writeResultFile(join(o.out, 'eval', `finetune-${task.name}.json`.replace(/[^A-Za-z0-9._-]/g, '_')), report);
      if (o.json) {
        process.stdout.write(JSON.stringify(report) + '\n');
      } else {
        const rows = Object.entries(report.summary).map(([m, s]) => [task.name, m, s.before.toFixed(4), s.afterMean.toFixed(4), s.afterStd.toFixed(4), String(report.after.length)]);
        process.stdout.write(table(['task', 'metric', 'before', 'after (mean)', 'after (std)', 'seeds'], rows, [false, false, true, true, true, true]));
      }
      onNotice(`fine-tuned run(s): ${report.after.map((a) => a.dir).join(', ')}; report in ${file}`);
    });
}
