#!/usr/bin/env node
// moelab command line: train, eval, finetune, generate, count, bench, presets, sweep, compare, fit, report, study, dashboard, worker, inspect.
import { Command } from 'commander';
import { registerTrain } from './train.js';
import { registerEval } from './eval.js';
import { registerFinetune } from './finetune.js';
import { registerGenerate } from './generate.js';
import { registerCount } from './count.js';
import { registerBench } from './bench.js';
import { registerPresets } from './presets.js';
import { registerSweep } from './sweep.js';
import { registerCompare } from './compare.js';
import { registerDashboard } from './dashboard.js';
import { moelabVersion } from '../index.js';
import { registerFit } from './fit.js';
import { registerStudy } from './study.js';
import { registerWorker } from './worker.js';
import { registerInspect } from './inspect.js';

// A closed pipe (`moelab train 2>&1 | head`, a terminal gone away) must not kill a training run:
// lost log lines are harmless, the run's files are what matter.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
  });
}

const program = new Command();
program
  .name('moelab')
  .description('Train, evaluate and scale dense, Mixture-of-Experts and PEER language models on CPU')
  .version(moelabVersion())
  .showHelpAfterError();

registerTrain(program);
registerEval(program);
registerFinetune(program);
registerGenerate(program);
registerCount(program);
registerBench(program);
registerPresets(program);
registerSweep(program);
registerCompare(program);
registerDashboard(program);
registerFit(program);
registerStudy(program);
registerWorker(program);
registerInspect(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  const err = e as Error;
  process.stderr.write(`moelab: error: ${err.message}\n`);
  if (process.env.MOELAB_DEBUG) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
