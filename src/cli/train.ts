import type { Command } from 'commander';
import { join, resolve } from 'node:path';
import { train, generate, loadRunConfig, runDirFor, DEFAULT_PRESET } from '../index.js';
import { collect, configFromFlags, intOption } from './common.js';
import { progress } from './progress.js';

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description(`train a model (default: the '${DEFAULT_PRESET}' preset on the bundled State of the Union corpus)`)
    .option('-p, --preset <name>', 'a named preset (see `moelab presets`)')
    .option('-c, --config <file>', 'a JSON config file')
    .option('-d, --data <path>', 'text file or folder (repeatable; default: the bundled corpus)', collect)
    .option('-o, --out <dir>', 'run directory (default: runs/<config name>)')
    .option('--by-hash', 'name the run directory runs/<name>-<config hash> (the same config always gets the same folder)')
    .option('-s, --steps <n>', 'total training steps', intOption('--steps'))
    .option('--set <key=value>', 'override a config field, e.g. --set train.lr=3e-4 (repeatable)', collect)
    .option('--threads <n>', 'kernel threads (default: all cores)', intOption('--threads'))
    .option('--resume', 'continue the run in --out from its last checkpoint')
    .option('--no-progress', 'log lines instead of a progress bar')
    .option('--no-sample', 'skip the text sample at the end')
    .action(async (o) => {
      if (o.out !== undefined && !String(o.out).trim()) throw new Error('--out is empty: name a run directory, e.g. --out runs/my-run');
      let cfg;
      if (o.resume) {
        if (!o.out) throw new Error('--resume needs --out <run directory>');
        if (o.preset || o.config) throw new Error('--resume continues the run with its own config.json: drop --preset/--config (use --set to change a field)');
        cfg = loadRunConfig(o.out, { steps: o.steps, threads: o.threads, set: o.set });
        const same = (a: string[], b: string[]) => a.length === b.length && a.every((p, i) => resolve(p) === resolve(b[i]));
        if (o.data && !same(o.data, cfg.data.paths)) {
          throw new Error(`--resume continues on the run's own data (${cfg.data.paths.join(', ') || 'the bundled corpus'}, from ${join(o.out, 'config.json')}); ` +
            '--data cannot change it mid-run. Train a new run on the new data (another --out).');
        }
      } else {
        cfg = configFromFlags({ preset: o.preset ?? (o.config ? undefined : DEFAULT_PRESET), config: o.config, set: o.set, steps: o.steps, data: o.data, threads: o.threads });
      }
      const dir = o.out ?? runDirFor(cfg, 'runs', { byHash: Boolean(o.byHash) });
      // Ctrl-C / SIGTERM: finish the step, checkpoint, exit 130. A second one leaves at once (the
      // last checkpoint is intact: saves are atomic).
      const stop = new AbortController();
      const onSignal = () => {
        if (stop.signal.aborted) process.exit(130);
        stop.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const bar = await progress({ bar: o.progress ? undefined : false, logEvery: cfg.train.logEvery });
      try {
        const command = ['moelab', ...process.argv.slice(2)].join(' ');
        const r = await train({ config: cfg, dir, resume: Boolean(o.resume), signal: stop.signal, listeners: [bar.listener], command });
        process.stderr.write(`done: step ${r.step}, train loss ${r.lastLoss.toFixed(4)}` +
          `${r.valLoss !== null ? `, val loss ${r.valLoss.toFixed(4)}` : ''}; run in ${dir}\n`);
        if (r.stoppedBy === 'stopped') process.exitCode = 130;
        else if (o.sample !== false && r.stoppedBy === 'done') {
          const text = generate(r.model, r.tokenizer, { prompt: '\n', maxTokens: 200, temperature: 0.8, topK: 40, seed: cfg.train.seed });
          process.stderr.write(`sample:\n${text}\n`);
        }
      } finally {
        bar.stop();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
