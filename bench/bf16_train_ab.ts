/**
 * Short interleaved A/B of bf16 mixed precision against fp32 training (a ratio, not a benchmark):
 * two identical models of a preset train side by side, alternating one fp32 step and one bf16 step
 * (setMatmulPrecision), after `warmup` steps each; prints the median step time of each, fp32/bf16,
 * and each side's kernel time per step by kernel (the profiler wrapped around the native backend,
 * one table per side), largest first.
 *
 *   node dist/bench/bf16_train_ab.js dense-d256 3 12
 */
import { loadConfig } from '../src/index.js';
import { trainingSide } from './training_side.js';
import { nativeKernels, profiled, setBackend, type KernelStats } from '../src/backend/index.js';
import { setMatmulPrecision } from '../src/tensor/index.js';

const [preset = 'dense-d256', warmupArg = '3', stepsArg = '12'] = process.argv.slice(2);
const warmup = Number(warmupArg), steps = Number(stepsArg);
const cfg = loadConfig({ preset, overrides: { 'train.threads': 2 } });
const modes = ['fp32', 'bf16'] as const;
type Mode = (typeof modes)[number];
const nat = nativeKernels();
const stats: Record<Mode, KernelStats> = { fp32: new Map(), bf16: new Map() };
const kernels = { fp32: profiled(nat, stats.fp32), bf16: profiled(nat, stats.bf16) };

const side = (): (() => number) => trainingSide(cfg);

const run = { fp32: side(), bf16: side() };
const t: Record<Mode, number[]> = { fp32: [], bf16: [] };
for (let i = 0; i < warmup + steps; i++) {
  if (i === warmup) for (const m of modes) for (const s of stats[m].values()) s.calls = s.ms = 0;
  for (const mode of i % 2 ? [...modes].reverse() : modes) {
    setBackend(kernels[mode]);
    setMatmulPrecision(mode);
    const ms = run[mode]();
    if (i >= warmup) t[mode].push(ms);
  }
}
setMatmulPrecision('fp32');
setBackend(nat);
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const profile = (m: Mode) => Object.fromEntries([...stats[m]].filter(([, s]) => s.calls).sort((a, b) => b[1].ms - a[1].ms)
  .map(([k, s]) => [k, +(s.ms / steps).toFixed(2)]));
console.log(JSON.stringify({
  preset, steps, fp32Ms: +med(t.fp32).toFixed(1), bf16Ms: +med(t.bf16).toFixed(1), fp32OverBf16: +(med(t.fp32) / med(t.bf16)).toFixed(3),
  kernelMsPerStep: { fp32: profile('fp32'), bf16: profile('bf16') },
}, null, 1));
