/**
 * Short interleaved A/B of the buffer pool (a ratio, not a benchmark): two identical models of a
 * preset train side by side, alternating one step with the pool on and one with it off, after
 * `warmup` steps each; prints the median step time of each and their ratio.
 *
 *   node dist/bench/pool_ab.js dense-d256 3 12
 */
import { loadConfig, buildTraining, trainStep } from '../src/index.js';
import { configurePool } from '../src/tensor/index.js';
import { getTokenizer } from '../src/data/tokenizer.js';
import { Rng } from '../src/util/random.js';

const [preset = 'dense-d256', warmupArg = '3', stepsArg = '12'] = process.argv.slice(2);
const warmup = Number(warmupArg), steps = Number(stepsArg);
const cfg = loadConfig({ preset, overrides: { 'train.threads': 2 } });
const B = cfg.train.batch, S = cfg.model.seq, V = getTokenizer(cfg.model.vocab).vocabSize;

function side(): () => number {
  const { model, optimizer } = buildTraining(cfg);
  const rng = new Rng(cfg.train.seed, 1);
  const nextBatch = () => {
    const x = new Int32Array(B * S), y = new Int32Array(B * S);
    for (let i = 0; i < B * S; i++) { x[i] = rng.int(V); y[i] = rng.int(V); }
    return { x, y, batch: B, seq: S };
  };
  let it = 0;
  return () => trainStep({ model, optimizer, train: cfg.train, nextBatch }, it++).ms.total;
}

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
