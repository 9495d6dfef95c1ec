/**
 * Short interleaved A/B of the buffer pool (a ratio, not a benchmark): two identical models of a
 * preset train side by side, alternating one step with the pool on and one with it off, after
 * `warmup` steps each; prints the median step time of each and their ratio.
 *
 *   node dist/bench/pool_ab.js dense-d256 3 12
 */
import { loadConfig } from '../src/index.js';
import { trainingSide } from './training_side.js';
import { configurePool } from '../src/tensor/index.js';

const [preset = 'dense-d256', warmupArg = '3', stepsArg = '12'] = process.argv.slice(2);
const warmup = Number(warmupArg), steps = Number(stepsArg);
const cfg = loadConfig({ preset, overrides: { 'train.threads': 2 } });

const side = (): (() => number) => trainingSide(cfg);

const on = side(), off = side();
const t = { on: [] as number[], off: [] as number[] };
for (let i = 0; i < warmup + steps; i++) {
  for (const mode of (i % 2 ? ['off', 'on'] : ['on', 'off']) as ('on' | 'off')[]) {
    configurePool({ enabled: mode === 'on' });
    const ms = (mode === 'on' ? on : off)();
    if (i >= warmup) t[mode].push(ms);
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(JSON.stringify({ preset, steps, onMs: +med(t.on).toFixed(1), offMs: +med(t.off).toFixed(1), offOverOn: +(med(t.off) / med(t.on)).toFixed(3) }));
