#!/usr/bin/env node
// moelab command line: train, eval, generate, count, bench, presets.
import { Command } from 'commander';
import { registerTrain } from './train.js';
import { registerEval } from './eval.js';
import { registerGenerate } from './generate.js';
import { registerCount } from './count.js';
import { registerBench } from './bench.js';
import { registerPresets } from './presets.js';

const program = new Command();
program
  .name('moelab')
  .description('Train, evaluate and scale dense, Mixture-of-Experts and PEER language models on CPU')
  .version('0.1.0')
  .showHelpAfterError();

registerTrain(program);
registerEval(program);
registerGenerate(program);
registerCount(program);
registerBench(program);
registerPresets(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  const err = e as Error;
  process.stderr.write(`moelab: error: ${err.message}\n`);
  if (process.env.MOELAB_DEBUG) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
