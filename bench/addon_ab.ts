/**
 * Before/after A/B of two builds of the native addon in one process (a ratio, not a benchmark): two
 * identical models of a preset train side by side at one precision, alternating one step on the
 * `before` addon and one on the `after` addon, after `warmup` steps each; prints the median step time
 * of each, before/after, and each side's kernel time per step by kernel, largest first (2 threads,
 * AB_THREADS=n for another count).
 *
 *   node dist/bench/addon_ab.js /tmp/old/build/Release/moelab.node build/Release/moelab.node dense-d256 bf16 3 12
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { loadConfig } from '../src/index.js';
import { trainingSide } from './training_side.js';
import { kernelsFromAddon, profiled, setBackend, type KernelStats } from '../src/backend/index.js';
import { setMatmulPrecision, type MatmulPrecision } from '../src/tensor/index.js';

const [beforePath, afterPath, preset = 'dense-d256', precision = 'bf16', warmupArg = '3', stepsArg = '12'] = process.argv.slice(2);
if (!beforePath || !afterPath) throw new Error('usage: addon_ab.js BEFORE.node AFTER.node [preset] [fp32|bf16] [warmup] [steps]');
const warmup = Number(warmupArg), steps = Number(stepsArg);
const require = createRequire(import.meta.url);
const sides = ['before', 'after'] as const;
type Side = (typeof sides)[number];
const stats: Record<Side, KernelStats> = { before: new Map(), after: new Map() };
const kernels = {
  before: profiled(kernelsFromAddon(require(resolve(beforePath)) as Record<string, unknown>, beforePath), stats.before),
  after: profiled(kernelsFromAddon(require(resolve(afterPath)) as Record<string, unknown>, afterPath), stats.after),
};
const threads = Number(process.env.AB_THREADS ?? 2); // AB_THREADS=1: fewer cores contended on a shared host
for (const s of sides) kernels[s].setThreads(threads);
const cfg = loadConfig({ preset, overrides: { 'train.threads': threads } });

function side(s: Side): () => number {
  setBackend(kernels[s]);
  return trainingSide(cfg);
}

const run = { before: side('before'), after: side('after') };
const t: Record<Side, number[]> = { before: [], after: [] };
for (let i = 0; i < warmup + steps; i++) {
  if (i === warmup) for (const s of sides) for (const k of stats[s].values()) k.calls = k.ms = 0;
  for (const s of i % 2 ? [...sides].reverse() : sides) {
    setBackend(kernels[s]);
    setMatmulPrecision(precision as MatmulPrecision);
    const ms = run[s]();
    if (i >= warmup) t[s].push(ms);
  }
}
setMatmulPrecision('fp32');
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const profile = (s: Side) => Object.fromEntries([...stats[s]].filter(([, k]) => k.calls).sort((a, b) => b[1].ms - a[1].ms)
  .slice(0, 8).map(([name, k]) => [name, +(k.ms / steps).toFixed(2)]));
console.log(JSON.stringify({
  preset, precision, steps, beforeMs: +med(t.before).toFixed(1), afterMs: +med(t.after).toFixed(1),
  beforeOverAfter: +(med(t.before) / med(t.after)).toFixed(3), kernelMsPerStep: { before: profile('before'), after: profile('after') },
}, null, 1));
