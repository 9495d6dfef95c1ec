/**
 * Short interleaved A/B of mixed precision against fp32 training (ratios, not a benchmark): identical
 * models of a preset train side by side, round-robin one step each (the order rotating every round),
 * after `warmup` steps each: fp32; bf16 matmuls with fp32 attention (train.precision bf16, activations
 * centred); the same without centring (setBf16Centering(false)); bf16 matmuls and bf16 attention
 * (setAttentionPrecision). Prints the median
 * step time of each, fp32 over each, and each side's kernel time per step by kernel (the profiler
 * wrapped around the native backend, one table per side), largest first.
 *
 *   node dist/bench/bf16_train_ab.js dense-d256 3 12
 */
import { loadConfig } from '../src/index.js';
import { trainingSide } from './training_side.js';
import { nativeKernels, profiled, setBackend, type KernelStats } from '../src/backend/index.js';
import { setMatmulPrecision } from '../src/tensor/index.js';
import { setAttentionPrecision, setBf16Centering } from '../src/tensor/precision.js';

const [preset = 'dense-d256', warmupArg = '3', stepsArg = '12'] = process.argv.slice(2);
const warmup = Number(warmupArg), steps = Number(stepsArg);
const cfg = loadConfig({ preset, overrides: { 'train.threads': 2 } });
const modes = ['fp32', 'bf16', 'bf16Uncentred', 'bf16Attn'] as const;
type Mode = (typeof modes)[number];
const precision: Record<Mode, ['fp32' | 'bf16', 'fp32' | 'bf16', boolean]> = {
  fp32: ['fp32', 'fp32', true], bf16: ['bf16', 'fp32', true], bf16Uncentred: ['bf16', 'fp32', false], bf16Attn: ['bf16', 'bf16', true],
};
const nat = nativeKernels();
const stats = Object.fromEntries(modes.map((m) => [m, new Map()])) as Record<Mode, KernelStats>;
const kernels = Object.fromEntries(modes.map((m) => [m, profiled(nat, stats[m])])) as Record<Mode, typeof nat>;
const run = Object.fromEntries(modes.map((m) => [m, trainingSide(cfg)])) as Record<Mode, () => number>;
const t = Object.fromEntries(modes.map((m) => [m, [] as number[]])) as Record<Mode, number[]>;
for (let i = 0; i < warmup + steps; i++) {
  if (i === warmup) for (const m of modes) for (const s of stats[m].values()) s.calls = s.ms = 0;
  for (let j = 0; j < modes.length; j++) {
    const mode = modes[(i + j) % modes.length];
    setBackend(kernels[mode]);
    setMatmulPrecision(precision[mode][0]);
    setAttentionPrecision(precision[mode][1]);
    setBf16Centering(precision[mode][2]);
    const ms = run[mode]();
    if (i >= warmup) t[mode].push(ms);
  }
}
setMatmulPrecision('fp32');
setAttentionPrecision('fp32');
setBf16Centering(true);
setBackend(nat);
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const profile = (m: Mode) => Object.fromEntries([...stats[m]].filter(([, s]) => s.calls).sort((a, b) => b[1].ms - a[1].ms)
  .map(([k, s]) => [k, +(s.ms / steps).toFixed(2)]));
console.log(JSON.stringify({
  preset, steps,
  medianMs: Object.fromEntries(modes.map((m) => [m, +med(t[m]).toFixed(1)])),
  fp32Over: Object.fromEntries(modes.slice(1).map((m) => [m, +(med(t.fp32) / med(t[m])).toFixed(3)])),
  kernelMsPerStep: Object.fromEntries(modes.map((m) => [m, profile(m)])),
}, null, 1));
