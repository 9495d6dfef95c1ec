/**
 * Training throughput benchmark: the real training step (forward, backward, clip, optimizer) on a
 * preset, timed per phase. Reports medians over the timed steps, peak RSS and achieved GFLOP/s
 * under the reference's FLOP convention, as one JSON object.
 */
import type { Config } from '../config/schema.js';
import { backend } from '../backend/index.js';
import { Tensor, add } from '../tensor/index.js';
import { buildModel } from '../nn/build.js';
import { buildOptimizers } from './optimizers.js';
import { countModel } from '../spec/count.js';
import { estimateMemory, checkFits } from '../spec/memory.js';
import { getTokenizer } from '../data/tokenizer.js';
import { loadCorpus } from '../data/corpus.js';
import { BatchSampler, splitTokens } from '../data/loader.js';
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
  const cfg = o.config, mc = cfg.model, tc = cfg.train;
  if (tc.threads) backend().setThreads(tc.threads);
  const fit = checkFits(estimateMemory(mc, tc));
  if (!fit.fits) throw new Error(fit.message);
  const counts = countModel(mc);
  const model = buildModel(mc, tc.seed);
  const opt = buildOptimizers(model, cfg);
  const B = tc.batch, S = mc.seq;
  let next: () => { x: Int32Array; y: Int32Array };
  if (o.dataPaths && o.dataPaths.length) {
    const corpus = loadCorpus(o.dataPaths, getTokenizer(mc.vocab));
    const sampler = new BatchSampler(splitTokens(corpus.tokens, cfg.data.valFraction).train, B, S, tc.seed);
    next = () => sampler.next();
  } else {
    const rng = new Rng(tc.seed, 1);
    const V = getTokenizer(mc.vocab).vocabSize;
    next = () => {
      const x = new Int32Array(B * S), y = new Int32Array(B * S);
      for (let i = 0; i < B * S; i++) { x[i] = rng.int(V); y[i] = rng.int(V); }
      return { x, y };
    };
  }
  const times = { step: [] as number[], fwd: [] as number[], bwd: [] as number[], opt: [] as number[] };
  const losses: number[] = [];
  for (let it = 0; it < o.warmup + o.steps; it++) {
    const b = next();
    const t0 = performance.now();
    const { loss, aux } = model.forward(new Tensor(b.x, [B, S]), new Tensor(b.y, [B * S]));
    const total = aux ? add(loss!, aux) : loss!;
    const t1 = performance.now();
    total.backward();
    const t2 = performance.now();
    if (tc.clip > 0) {
      const n = Math.sqrt(opt.gradSquaredNorm());
      if (n > tc.clip) opt.scaleGrads(tc.clip / n);
    }
    opt.step(tc.lr);
    opt.zeroGrad();
    const t3 = performance.now();
    losses.push(loss!.item());
    if (it >= o.warmup) {
      times.step.push(t3 - t0);
      times.fwd.push(t1 - t0);
      times.bwd.push(t2 - t1);
      times.opt.push(t3 - t2);
    }
  }
  const stepMs = median(times.step);
  const tps = (B * S) / (stepMs / 1000);
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
    backend: backend().name,
    isa: backend().cpuInfo().isa,
    threads: backend().getThreads(),
  };
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const round4 = (x: number) => Math.round(x * 1e4) / 1e4;
