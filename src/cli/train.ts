import type { Command } from 'commander';
import { join } from 'node:path';
import { train } from '../train/trainer.js';
import { loadRunConfig } from '../train/run.js';
import { collect, configFromFlags, intOption } from './common.js';
import { DEFAULT_PRESET } from '../config/presets.js';

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description(`train a model (default: the '${DEFAULT_PRESET}' preset on the bundled State of the Union corpus)`)
    .option('-p, --preset <name>', 'a named preset (see `moelab presets`)')
    .option('-c, --config <file>', 'a JSON config file')
    .option('-d, --data <path>', 'text file or folder (repeatable; default: the bundled corpus)', collect)
    .option('-o, --out <dir>', 'run directory (default: runs/<config name>)')
    .option('-s, --steps <n>', 'total training steps', intOption('--steps'))
    .option('--set <key=value>', 'override a config field, e.g. --set train.lr=3e-4 (repeatable)', collect)
    .option('--threads <n>', 'kernel threads (default: all cores)', intOption('--threads'))
    .option('--resume', 'continue the run in --out from its last checkpoint')
    .option('--no-progress', 'log lines instead of a progress bar')
    .option('--no-sample', 'skip the text sample at the end')
    .action(async (o) => {
      const out = o.out ?? undefined;
      // Resuming without a config: the run's own config.json is the config.
      const cfg = o.resume && !o.preset && !o.config && out
        ? loadRunConfig(out, { steps: o.steps, threads: o.threads, set: o.set })
        : configFromFlags({ preset: o.preset ?? (o.config ? undefined : DEFAULT_PRESET), config: o.config, set: o.set, steps: o.steps, data: o.data, threads: o.threads });
      const dir = out ?? join('runs', cfg.name);
      const r = await train({ config: cfg, outDir: dir, resume: Boolean(o.resume), progress: o.progress ? undefined : false, sample: o.sample });
      process.stderr.write(`done: step ${r.step}, train loss ${r.lastLoss.toFixed(4)}` +
        `${r.valLoss !== null ? `, val loss ${r.valLoss.toFixed(4)}` : ''}; run in ${dir}\n`);
      if (r.stoppedBy === 'signal') process.exitCode = 130;
    });
}
