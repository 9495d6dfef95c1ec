/**
 * The training loop: data -> model -> loss -> backward -> clip -> optimizer, with warm-up/cosine
 * learning rate, gradient accumulation, periodic evaluation, metrics.jsonl, atomic checkpoints,
 * resume (also after kill -9), SIGINT handling and a NaN/Inf guard.
 *
 * A run directory holds config.json, model.safetensors, optimizer.safetensors, state.json
 * (written last: its presence marks a complete checkpoint) and metrics.jsonl.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { backend } from '../backend/index.js';
import { Tensor, add, noGrad } from '../tensor/index.js';
import { buildModel } from '../nn/build.js';
import type { GPT } from '../nn/gpt.js';
import { getTokenizer, type Tokenizer } from '../data/tokenizer.js';
import { loadCorpus } from '../data/corpus.js';
import { splitTokens, checkSplit, BatchSampler, fixedValBatches, type Batch } from '../data/loader.js';
import { learningRate } from './schedule.js';
import { buildOptimizers, type OptimizerSet } from './optimizers.js';
import { saveRun, loadRun, runExists } from './run.js';
import { estimateMemory, checkFits } from '../spec/memory.js';
import { countModel } from '../spec/count.js';
import { generate } from '../eval/generate.js';

export interface TrainOptions {
  config: Config;
  outDir: string;
  resume?: boolean;
  /** Draw a progress bar (default: when stderr is a TTY). */
  progress?: boolean;
  /** Print log lines (default true). */
  log?: (line: string) => void;
  /** Stop after this global step even if config.train.steps is larger (tests, kill simulations). */
  stopAt?: number;
  /** Generate a sample at the end (default true). */
  sample?: boolean;
}

export interface TrainResult {
  step: number;
  lastLoss: number;
  valLoss: number | null;
  tokensPerSecond: number;
  stoppedBy: 'done' | 'signal' | 'stopAt';
  sample?: string;
}

export class TrainingDiverged extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainingDiverged';
  }
}

interface RunState {
  step: number;
  sampler: unknown;
  tokensSeen: number;
  lastLoss: number;
  valLoss: number | null;
}

/** Mean loss over fixed batches, in eval mode, without recording a graph. */
export function evaluateBatches(model: GPT, batches: Batch[]): number {
  const wasTraining = model.training;
  model.eval();
  try {
    return noGrad(() => {
      let total = 0;
      for (const b of batches) {
        const { loss } = model.forward(new Tensor(b.x, [b.batch, b.seq]), new Tensor(b.y, [b.batch * b.seq]));
        total += loss!.item();
      }
      return total / batches.length;
    });
  } finally {
    model.train(wasTraining);
  }
}

function ffnStats(model: GPT): Record<string, unknown> | null {
  const out: Record<string, unknown> = {};
  model.blocks.items.forEach((b, i) => {
    const s = b.ffn.stats();
    if (s) out[`layer${i}`] = s;
  });
  return Object.keys(out).length ? out : null;
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const cfg = opts.config;
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const tc = cfg.train, mc = cfg.model;
  const outDir = resolve(opts.outDir);
  if (tc.threads) backend().setThreads(tc.threads);

  // Data first: a bad corpus must fail before anything big is allocated.
  const tokenizer: Tokenizer = getTokenizer(mc.vocab);
  const corpus = loadCorpus(cfg.data.paths, tokenizer);
  const split = splitTokens(corpus.tokens, cfg.data.valFraction);
  checkSplit(split, mc.seq);
  const { train: trainTok, val: valTok } = split;
  log(`data: ${corpus.files.length} file(s), ${corpus.tokens.length.toLocaleString()} tokens (${tokenizer.name}), ` +
    `${trainTok.length.toLocaleString()} train / ${valTok.length.toLocaleString()} val${corpus.cached ? ' (cached)' : ''}`);

  // Memory before allocation: refuse what cannot fit, with the numbers.
  const mem = estimateMemory(mc, tc);
  const fit = checkFits(mem);
  if (!fit.fits) throw new Error(fit.message);

  const counts = countModel(mc);
  const model = buildModel(mc, tc.seed);
  const opt: OptimizerSet = buildOptimizers(model, cfg);
  const sampler = new BatchSampler(trainTok, tc.batch, mc.seq, tc.seed);
  const valBatches = fixedValBatches(valTok, tc.batch, mc.seq, tc.evalBatches);

  let state: RunState = { step: 0, sampler: null, tokensSeen: 0, lastLoss: NaN, valLoss: null };
  mkdirSync(outDir, { recursive: true });
  if (opts.resume) {
    if (!runExists(outDir)) throw new Error(`--resume: no checkpoint in ${outDir} (state.json missing)`);
    const loaded = loadRun(outDir, model, opt, cfg);
    state = loaded.state as unknown as RunState;
    sampler.setState(state.sampler as never);
    log(`resumed ${outDir} at step ${state.step}`);
  } else if (runExists(outDir)) {
    throw new Error(`${outDir} already holds a checkpoint: pass --resume to continue it, or choose another --out`);
  }
  log(`model: ${counts.paramsTotal.toLocaleString()} params (${counts.paramsActive.toLocaleString()} active/token), ` +
    `${(counts.flopsPerToken / 1e6).toFixed(2)} MFLOPs/token; ${backend().name} kernels (${backend().cpuInfo().isa}, ${backend().getThreads()} threads)`);

  const metricsPath = join(outDir, 'metrics.jsonl');
  const metric = (o: Record<string, unknown>) => appendFileSync(metricsPath, JSON.stringify(o) + '\n');
  const save = (why: string) => {
    state.sampler = sampler.getState();
    saveRun(outDir, model, opt, cfg, state as unknown as Record<string, unknown>);
    log(`checkpoint: step ${state.step} -> ${outDir} (${why})`);
  };

  let stopSignal = false;
  const onSignal = () => {
    if (stopSignal) process.exit(130); // a second Ctrl-C: leave now (the last checkpoint is intact)
    stopSignal = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const end = Math.min(tc.steps, opts.stopAt ?? Infinity);
  const tokensPerStep = tc.batch * mc.seq * tc.accum;
  const showBar = opts.progress ?? Boolean(process.stderr.isTTY);
  const bar = showBar ? await makeBar(end, state.step) : null;
  let stoppedBy: TrainResult['stoppedBy'] = 'done';
  let emaTps = 0;
  const t0 = Date.now();
  try {
    while (state.step < end) {
      if (stopSignal) {
        stoppedBy = 'signal';
        break;
      }
      const step = state.step;
      const lr = learningRate(tc, step);
      model.step = step;
      const ts = performance.now();
      let lossSum = 0, auxSum = 0;
      for (let micro = 0; micro < tc.accum; micro++) {
        const b = sampler.next();
        const { loss, aux } = model.forward(new Tensor(b.x, [tc.batch, mc.seq]), new Tensor(b.y, [tc.batch * mc.seq]));
        const total = aux ? add(loss!, aux) : loss!;
        lossSum += loss!.item();
        if (aux) auxSum += aux.item();
        total.backward(Float32Array.of(1 / tc.accum));
      }
      const loss = lossSum / tc.accum;
      if (!Number.isFinite(loss) || !Number.isFinite(auxSum)) {
        throw new TrainingDiverged(`loss became ${loss} at step ${step}: stopping. The last good checkpoint in ${outDir} is kept ` +
          `(step ${runExists(outDir) ? 'saved earlier' : 'none yet'}). Try a lower train.lr, train.clip > 0 or a longer warm-up.`);
      }
      const sq = opt.gradSquaredNorm();
      const gnorm = Math.sqrt(sq);
      if (!Number.isFinite(gnorm)) {
        throw new TrainingDiverged(`gradient norm became ${gnorm} at step ${step}: stopping; the last good checkpoint in ${outDir} is kept.`);
      }
      if (tc.clip > 0 && gnorm > tc.clip) opt.scaleGrads(tc.clip / gnorm);
      opt.step(lr);
      opt.zeroGrad();
      const dt = (performance.now() - ts) / 1000;
      const tps = tokensPerStep / dt;
      emaTps = emaTps ? 0.9 * emaTps + 0.1 * tps : tps;
      state.step = step + 1;
      state.tokensSeen += tokensPerStep;
      state.lastLoss = loss;
      bar?.update(state.step, { loss: loss.toFixed(4), tps: Math.round(emaTps) });
      if (state.step % tc.logEvery === 0 || state.step === end) {
        metric({ type: 'train', step: state.step, loss, aux: auxSum / tc.accum, lr, grad_norm: gnorm, tokens_per_s: Math.round(tps), time_s: (Date.now() - t0) / 1000 });
        if (!bar) log(`step ${state.step}/${end} loss ${loss.toFixed(4)} lr ${lr.toExponential(2)} ${Math.round(emaTps)} tok/s`);
      }
      if (state.step % tc.evalEvery === 0 || state.step === end) {
        state.valLoss = evaluateBatches(model, valBatches);
        metric({ type: 'eval', step: state.step, val_loss: state.valLoss, ffn: ffnStats(model) });
        const msg = `eval step ${state.step}: val loss ${state.valLoss.toFixed(4)}`;
        if (bar) bar.log?.(msg);
        else log(msg);
      }
      if (state.step % tc.saveEvery === 0 && state.step !== end) save('periodic');
      await new Promise((r) => setImmediate(r)); // lets SIGINT handlers run between steps
    }
    if (stoppedBy === 'done' && state.step < tc.steps) stoppedBy = 'stopAt';
  } finally {
    bar?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  save(stoppedBy === 'signal' ? 'interrupted' : 'end');
  const result: TrainResult = { step: state.step, lastLoss: state.lastLoss, valLoss: state.valLoss, tokensPerSecond: emaTps, stoppedBy };
  if (opts.sample !== false && stoppedBy === 'done') {
    result.sample = generate(model, tokenizer, { prompt: '\n', maxTokens: 200, temperature: 0.8, topK: 40, seed: tc.seed });
    log(`sample:\n${result.sample}`);
  }
  return result;
}

interface Bar {
  update(v: number, payload: Record<string, unknown>): void;
  stop(): void;
  log?: (s: string) => void;
}

async function makeBar(total: number, start: number): Promise<Bar> {
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar({
    format: 'step {value}/{total} |{bar}| loss {loss} | {tps} tok/s | ETA {eta_formatted}',
    etaBuffer: 20,
    hideCursor: true,
    stream: process.stderr,
  }, cliProgress.Presets.shades_classic);
  bar.start(total, start, { loss: '-', tps: 0 });
  return {
    update: (v, p) => bar.update(v, p),
    stop: () => bar.stop(),
    log: (s: string) => process.stderr.write(`\r\x1b[K${s}\n`),
  };
}

