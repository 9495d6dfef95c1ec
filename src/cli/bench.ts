import type { Command } from 'commander';
import { benchTrain } from '../index.js';
import { collect, configFromFlags, intOption } from './common.js';

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('benchmarks that print one JSON object');
  bench
    .command('gemm')
    .description('SGEMM GFLOP/s on the model shapes (plain and transposed, 1 and 2 threads), optionally vs OpenBLAS')
    .option('--threads <list>', 'comma-separated thread counts', '1,2')
    .option('--vs-openblas', 'also time numpy/OpenBLAS (python3 + numpy + OpenBLAS needed) and report ratios')
    .option('--seconds <s>', 'timing budget per case', '1')
    .action(async (o) => {
      const { benchGemm } = await import('../../bench/gemm.js');
      const r = await benchGemm({ threads: String(o.threads).split(',').map(Number), vsOpenblas: Boolean(o.vsOpenblas), seconds: Number(o.seconds) });
      process.stdout.write(JSON.stringify(r) + '\n');
    });
  bench
    .command('train')
    .description('training-step throughput of a preset: tokens/s, phase times, peak RSS, achieved GFLOP/s')
    .option('-p, --preset <name>', 'a named preset', 'dense-d256')
    .option('-c, --config <file>', 'a JSON config file')
    .option('-d, --data <file>', 'text to sample batches from (default: uniform random tokens)', collect)
    .option('--set <key=value>', 'override a config field (repeatable)', collect)
    .option('--warmup <n>', 'untimed steps first', intOption('--warmup'), 3)
    .option('--steps <n>', 'timed steps', intOption('--steps'), 10)
    .option('--threads <n>', 'kernel threads', intOption('--threads'))
    .action((o) => {
      const cfg = configFromFlags({ preset: o.config ? undefined : o.preset, config: o.config, set: o.set, threads: o.threads });
      const r = benchTrain({ config: cfg, warmup: o.warmup, steps: o.steps, dataPaths: o.data });
      process.stdout.write(JSON.stringify(r) + '\n');
    });
}
