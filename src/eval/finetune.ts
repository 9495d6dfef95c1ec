/**
 * Full fine-tuning on a multiple-choice task's train split: each example is context + target
 * delimiter + gold choice, encoded as the scorer encodes it (choice.ts: trailing context whitespace
 * moves to the answer), cut from the left to seq + 1 tokens; the loss is the mean cross-entropy
 * over the answer tokens only (prompt and padding targets are -1, which the loss ignores), plus the
 * model's own auxiliary (balancing) losses. Steps go through trainStep, the trainer's one step
 * (clipping, NaN guard), with AdamW at `lr`, warmup min(steps/10, 100) and cosine decay to lr/10.
 * Batches draw `batch` train examples uniformly with replacement from a generator seeded by `seed`.
 * The GEMMs run at `precision` (default fp32, whatever the parent trained in, so any CPU can
 * fine-tune any run); the result's trainConfig, which the fine-tuned run saves, records it.
 *
 * `balance: false` zeroes the MoE balancing and z-loss weights for the fine-tune (restored after).
 * `expertDropout: p` turns on expert dropout in every MoE layer for the fine-tune (restored after):
 * dropout at rate p on the routed experts' hidden activations, as Switch Transformer fine-tunes
 * (Fedus et al. 2021, §2.4: 0.4 at expert layers) and fairseq's MoE fine-tuning allows; the masks
 * are keyed by the model seed, step and micro-batch like all training noise (GPT.setRandomKey), so
 * a fine-tune replays exactly; evaluation (model.eval()) never drops. Models without MoE layers
 * ignore it (with a notice).
 *
 * Freezing (no gradient, so no update; names as in the checkpoint):
 *   router   MoE router weights (`*.ffn.router.*`)
 *   experts  MoE expert weights (`*.ffn.w1/b1/w2/b2`) and PEER expert tables (`*.ffn.u.*`, `*.ffn.v.*`)
 *   dense    everything else: embeddings, attention, LayerNorms, dense feed-forwards, PEER keys/query
 */
import type { GPT } from '../nn/gpt.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { Config } from '../config/schema.js';
import type { Batch } from '../data/loader.js';
import { trainStep } from '../train/step.js';
import { buildOptimizers, type OptimizerSet } from '../train/optimizers.js';
import { Rng } from '../util/random.js';
import { MoE } from '../nn/moe.js';
import { checkMatmulPrecision, withArithmetic, type MatmulPrecision } from '../tensor/index.js';
import type { Task } from './task_format.js';
import { DEFAULT_PROMPT } from './fewshot.js';

export const FREEZE_GROUPS = ['router', 'experts', 'dense'] as const;
export type FreezeGroup = (typeof FREEZE_GROUPS)[number];

export interface FinetuneOptions {
  steps?: number; // default 100
  lr?: number; // default 1e-4
  batch?: number; // examples per step, default 8
  seed?: number; // default 0
  freeze?: FreezeGroup[];
  /** Keep the MoE balancing and z-losses (default true); false sets their weights to 0 while fine-tuning. */
  balance?: boolean;
  /** Expert dropout rate in [0, 1) on MoE layers while fine-tuning (default 0: off). */
  expertDropout?: number;
  /** The GEMMs' arithmetic while fine-tuning (default 'fp32'; 'bf16' needs AVX512_BF16). */
  precision?: MatmulPrecision;
  targetDelimiter?: string;
  onNotice?: (message: string) => void;
  onStep?: (e: { step: number; loss: number; lr: number }) => void;
}

export interface FinetuneResult {
  steps: number;
  losses: number[];
  /** Auxiliary (router) loss of each step, already weighted (0 without MoE or with balance off). */
  aux: number[];
  frozen: string[];
  trainConfig: Config['train'];
  optimizer: OptimizerSet;
}

/** The freeze group a parameter belongs to. */
export function freezeGroup(name: string): FreezeGroup {
  if (/\.ffn\.router\./.test(name)) return 'router';
  if (/\.ffn\.(w1|b1|w2|b2)$/.test(name) || /\.ffn\.(u|v)\.weight$/.test(name)) return 'experts';
  return 'dense';
}

interface Example {
  tokens: Int32Array;
  /** Index of the first answer token in `tokens`. */
  answer: number;
}

export function encodeExample(tok: Tokenizer, context: string, answer: string, seq: number): Example {
  const ctx = context.replace(/\s+$/u, '');
  const moved = context.slice(ctx.length);
  let ctxIds = tok.encode(ctx), prefix = '';
  if (ctxIds.length === 0) {
    prefix = '\n';
    ctxIds = tok.encode(prefix);
  }
  const whole = Int32Array.from(tok.encode(prefix + ctx + moved + answer));
  const cut = Math.max(0, whole.length - (seq + 1));
  return { tokens: whole.slice(cut), answer: Math.max(1, ctxIds.length - cut) };
}

/** Fine-tunes `model` in place on the task's train items. */
export function finetune(model: GPT, tok: Tokenizer, config: Config, task: Task, o: FinetuneOptions = {}): FinetuneResult {
  const steps = o.steps ?? 100, lr = o.lr ?? 1e-4, batch = o.batch ?? 8, seed = o.seed ?? 0;
  if (!(Number.isSafeInteger(steps) && steps >= 1)) throw new RangeError(`steps must be an integer >= 1, got ${steps}`);
  if (!(Number.isFinite(lr) && lr > 0)) throw new RangeError(`lr must be a number > 0, got ${lr}`);
  if (!(Number.isSafeInteger(batch) && batch >= 1)) throw new RangeError(`batch must be an integer >= 1, got ${batch}`);
  const expertDropout = o.expertDropout ?? 0;
  if (!(expertDropout >= 0 && expertDropout < 1)) throw new RangeError(`expertDropout must be a number in [0, 1), got ${expertDropout}`);
  const train = task.items.filter((it) => it.split === 'train');
  if (!train.length) throw new Error(`task ${task.name} has no train items ("split": "train") to fine-tune on`);
  const seq = model.shape.seq;
  const td = o.targetDelimiter ?? DEFAULT_PROMPT.targetDelimiter;
  const examples = train.map((it) => encodeExample(tok, it.context, td + it.choices[it.gold], seq));

  const freeze = new Set(o.freeze ?? []);
  const frozen: string[] = [];
  for (const [name, p] of model.namedParameters()) {
    const f = freeze.has(freezeGroup(name));
    p.requiresGrad = !f;
    if (f) frozen.push(name);
  }
  const precision = o.precision ?? 'fp32';
  checkMatmulPrecision(precision);
  const tc: Config['train'] = { ...config.train, steps, lr, minLr: lr / 10, warmup: Math.min(Math.floor(steps / 10), 100), schedule: 'cosine', accum: 1, batch, precision };
  const optimizer = buildOptimizers(model, { ...config, train: tc });
  const rng = new Rng(seed, 5);
  const nextBatch = (): Batch => {
    const rows = Array.from({ length: batch }, () => examples[rng.int(examples.length)]);
    const S = Math.max(...rows.map((e) => e.tokens.length - 1));
    const x = new Int32Array(batch * S), y = new Int32Array(batch * S).fill(-1);
    rows.forEach((e, b) => {
      for (let t = 0; t + 1 < e.tokens.length; t++) {
        x[b * S + t] = e.tokens[t];
        if (t + 1 >= e.answer) y[b * S + t] = e.tokens[t + 1];
      }
    });
    return { x, y, batch, seq: S };
  };
  const losses: number[] = [], aux: number[] = [];
  const wasTraining = model.training;
  const moes = model.modules().filter((m): m is MoE => m instanceof MoE);
  const coefs = moes.map((m) => [m.o.auxCoef, m.o.zCoef, m.o.expertDropout] as const);
  if (o.balance === false) for (const m of moes) [m.o.auxCoef, m.o.zCoef] = [0, 0];
  if (expertDropout > 0) {
    if (!moes.length) o.onNotice?.(`expert dropout ${expertDropout} has no effect: the model has no MoE layer`);
    for (const m of moes) m.o.expertDropout = expertDropout;
  }
  model.train(true);
  try {
    for (let step = 0; step < steps; step++) {
      const r = withArithmetic(tc, () => trainStep({ model, optimizer, train: tc, nextBatch }, step));
      losses.push(r.loss);
      aux.push(r.aux);
      o.onStep?.({ step: step + 1, loss: r.loss, lr: r.lr });
    }
  } finally {
    model.train(wasTraining);
    for (const [, p] of model.namedParameters()) p.requiresGrad = true;
    moes.forEach((m, i) => ([m.o.auxCoef, m.o.zCoef, m.o.expertDropout] = coefs[i]));
  }
  return { steps, losses, aux, frozen, trainConfig: tc, optimizer };
}
