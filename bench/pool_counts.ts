/**
 * Buffer-pool counts for a preset (deterministic, so valid on a loaded machine): pool misses and
 * minor page faults per training step, over the first `steps` steps and over `2 * steps` steps, with
 * the pool on and off (MOELAB_POOL semantics via configurePool, in one process).
 *
 *   node dist/bench/pool_counts.js dense-d256 20 [on,off]
 *
 * Prints one JSON line per mode: misses and page faults in steps (steps/2, steps] and
 * (steps, 2*steps] (steady state), and per step.
 */
import { loadConfig, buildTraining, trainStep } from '../src/index.js';
import { configurePool, poolStats, clearPool } from '../src/tensor/index.js';
import { getTokenizer } from '../src/data/tokenizer.js';
import { Rng } from '../src/util/random.js';

const [preset = 'dense-d256', stepsArg = '20', modes = 'on,off'] = process.argv.slice(2);
const steps = Number(stepsArg);

function run(pool: boolean): Record<string, unknown> {
  configurePool({ enabled: pool });
  clearPool();
  const cfg = loadConfig({ preset, overrides: { 'train.threads': 2 } });
  const { model, optimizer } = buildTraining(cfg);
  const B = cfg.train.batch, S = cfg.model.seq, V = getTokenizer(cfg.model.vocab).vocabSize;
  const rng = new Rng(cfg.train.seed, 1);
  const nextBatch = () => {
    const x = new Int32Array(B * S), y = new Int32Array(B * S);
    for (let i = 0; i < B * S; i++) { x[i] = rng.int(V); y[i] = rng.int(V); }
    return { x, y, batch: B, seq: S };
  };
  const marks: { misses: number; faults: number; ms: number }[] = [];
  const mark = () => marks.push({ misses: poolStats().misses, faults: process.resourceUsage().minorPageFault, ms: performance.now() });
  mark();
  for (let it = 0; it < 2 * steps; it++) {
    trainStep({ model, optimizer, train: cfg.train, nextBatch }, it);
    mark();
  }
  const span = (a: number, b: number) => ({
    misses: marks[b].misses - marks[a].misses,
    faults: marks[b].faults - marks[a].faults,
    faultsPerStep: Math.round((marks[b].faults - marks[a].faults) / (b - a)),
    missesPerStep: (marks[b].misses - marks[a].misses) / (b - a),
  });
  const half = Math.floor(steps / 2);
  return {
    preset, pool, steps,
    firstStep: span(0, 1),
    [`steps ${half + 1}..${steps}`]: span(half, steps),
    [`steps ${steps + 1}..${2 * steps}`]: span(steps, 2 * steps),
    ...(pool ? { peakLiveMiB: +(poolStats().peakLiveBytes / 2 ** 20).toFixed(1), freeMiB: +(poolStats().freeBytes / 2 ** 20).toFixed(1) } : {}),
  };
}

// one mode per process (e.g. 'on' or 'off') to compare peak RSS: process.resourceUsage().maxRSS
for (const m of modes.split(',')) console.log(JSON.stringify({ ...run(m === 'on'), maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024) }));
