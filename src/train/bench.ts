/**
 * Training throughput benchmark: the trainer's own step (`trainStep`: forward, backward, clip,
 * optimizer, NaN guard, accumulation) on a preset, timed per phase. Reports medians over the timed
 * steps, peak RSS and achieved GFLOP/s under the reference's FLOP convention, as one JSON object.
 */
import type { Config } from '../config/schema.js';
import { computeInfo, restartKernelProfile, setComputeThreads, withArithmetic } from '../tensor/index.js';
import { countModel } from '../spec/count.js';
import { getTokenizer } from '../data/tokenizer.js';
import { loadCorpus } from '../data/corpus.js';
import { BatchSampler, splitTokens, type Batch } from '../data/loader.js';
import { trainStep } from './step.js';
import { buildTraining, checkTrainingMemory } from './setup.js';
import { Rng } from '../util/random.js';


export interface BenchTrainOptions {
  config: Config;
  warmup: number;
  steps: number;
  /** Text to draw batches from; without it, uniform random tokens (as the reference does). */
  dataPaths?: string[];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export function benchTrain(o: BenchTrainOptions): Record<string, unknown> {
  return withArithmetic(o.config.train, () => benchSteps(o));
}

function benchSteps(o: BenchTrainOptions): Record<string, unknown> {
  const cfg = o.config, mc = cfg.model, tc = cfg.train;
  if (tc.threads) setComputeThreads(tc.threads);
  checkTrainingMemory(cfg);
  const counts = countModel(mc);
  const { model, optimizer } = buildTraining(cfg);
  const B = tc.batch, S = mc.seq;
  let nextBatch: () => Batch;
  if (o.dataPaths && o.dataPaths.length) {
    const corpus = loadCorpus(o.dataPaths, getTokenizer(mc.vocab));
    const sampler = new BatchSampler(splitTokens(corpus.tokens, cfg.data.valFraction).train, B, S, tc.seed);
    nextBatch = () => sampler.next();
  } else {
    const rng = new Rng(tc.seed, 1);
    const V = getTokenizer(mc.vocab).vocabSize;
    nextBatch = () => {
      const x = new Int32Array(B * S), y = new Int32Array(B * S);
      for (let i = 0; i < B * S; i++) { x[i] = rng.int(V); y[i] = rng.int(V); }
      return { x, y, batch: B, seq: S };
    };
  }
  const times = { step: [] as number[], fwd: [] as number[], bwd: [] as number[], opt: [] as number[] };
  const losses: number[] = [];
  // The benchmark's learning rate stays at train.lr (no warm-up): it times the real step, schedule aside.
  const constant = { ...tc, schedule: 'constant' as const, warmup: 0 };
  for (let it = 0; it < o.warmup + o.steps; it++) {
    if (it === o.warmup) restartKernelProfile(); // MOELAB_PROFILE's table then covers the timed steps
    const r = trainStep({ model, optimizer, train: constant, nextBatch }, it);
    losses.push(r.loss);
    if (it >= o.warmup) {
      times.step.push(r.ms.total);
      times.fwd.push(r.ms.forward);
      times.bwd.push(r.ms.backward);
      times.opt.push(r.ms.optimizer);
    }
  }
  const stepMs = median(times.step);
  const tps = (B * S * tc.accum) / (stepMs / 1000);
  return {
    preset: cfg.name,
    tokens_per_s: Math.round(tps * 10) / 10,
    step_ms: round1(stepMs),
    fwd_ms: round1(median(times.fwd)),
    bwd_ms: round1(median(times.bwd)),
    opt_ms: round1(median(times.opt)),
    step_ms_min: round1(Math.min(...times.step)),
    peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024),
    params_total: counts.paramsTotal,
    params_active: counts.paramsActive,
    flops_per_token: counts.flopsPerToken,
    achieved_gflops: Math.round((counts.flopsPerToken * tps) / 1e7) / 100,
    batch: B,
    seq: S,
    timed_steps: o.steps,
    loss_first: round4(losses[0]),
    loss_last: round4(losses[losses.length - 1]),
    precision: tc.precision,
    ...computeInfo(),
  };
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const round4 = (x: number) => Math.round(x * 1e4) / 1e4;
