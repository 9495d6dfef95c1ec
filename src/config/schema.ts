// Run configuration: zod schemas for the name / model / train / data sections and the resolved
// types the rest of moelab consumes. The feed-forward section is one schema per kind
// (spec/ffn/*.ts), told apart by `type`. All objects are strict: an unknown key is an error (a typo
// must not silently fall back to a default).
//
// Resolution fills every default, so a resolved config is complete and self-describing. Plain
// defaults (batch 8, lr 1e-3, ...) are constants. Derived defaults depend on other fields:
//   train.minLr = lr/10, train.warmup = round(steps/20), model.ffn.hidden = 4d (dense),
//   model.ffn.expertHidden = 4d and model.ffn.evalCapacityFactor = capacityFactor (moe).
// The resolved config lists in `derived` the fields whose value was derived rather than given.
// Resolving a config that has a `derived` list derives those fields afresh, so a saved run config
// plus an override of lr or steps moves minLr or warmup with it, while the fields the user gave
// stay as given (see config/saved.ts). Re-resolving a resolved config gives the same object.
import { z } from 'zod';
import { posInt, nonNegInt, nonNegNum, posNum, inSchemaOrder } from './fields.js';
import { FFN_KINDS, ffnKind, ffnSchema, type FfnConfig } from '../spec/ffn/index.js';

export const TOKENIZER_NAMES = ['bytes', 'gpt2'] as const;
export type TokenizerName = (typeof TOKENIZER_NAMES)[number];

/** Vocabulary size of each tokenizer (GPT-2 r50k: 50,000 merges + 256 bytes + <|endoftext|>). */
export const VOCAB_SIZES: Record<TokenizerName, number> = { bytes: 256, gpt2: 50257 };

export { FFN_TYPES, ffnSchema } from '../spec/ffn/index.js';
export type { FfnType, FfnConfig, DenseFfnConfig, MoeFfnConfig, PeerFfnConfig } from '../spec/ffn/index.js';

// ---------------------------------------------------------------------------------------------
// resolved (output) types

export interface ModelConfig {
  vocab: TokenizerName;
  d: number;
  layers: number;
  heads: number;
  seq: number;
  dropout: number;
  lnEps: number;
  ffn: FfnConfig;
}

export interface TrainConfig {
  batch: number;
  steps: number;
  lr: number;
  minLr: number;
  warmup: number;
  schedule: 'cosine' | 'constant';
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  clip: number;
  accum: number;
  evalEvery: number;
  evalBatches: number;
  saveEvery: number;
  logEvery: number;
  seed: number;
  threads?: number;
  /**
   * Arithmetic of the matrix products: 'fp32', or 'bf16' (mixed precision: the GEMMs of linear
   * layers take operands rounded to bf16 and accumulate in fp32; weights, optimizer state, norms,
   * softmax, attention, loss and routing stay fp32). bf16 needs a CPU with AVX512_BF16.
   */
  precision: Precision;
  /**
   * Under bf16, centre the activation operand of each GEMM on its mean over rows before rounding
   * (src/tensor/ops/bf16_center.ts). On by default: it kept dense-d256 on fp32's trajectory; on
   * moe64-d256 uncentred bf16 stayed closer to fp32 (README, Mixed precision). No effect in fp32.
   */
  bf16Centering: boolean;
}

export const PRECISIONS = ['fp32', 'bf16'] as const;
export type Precision = (typeof PRECISIONS)[number];

export interface DataConfig {
  /** Absolute paths (resolved by config/load.ts: relative to the config file, else the cwd). */
  paths: string[];
  valFraction: number;
}

export interface Config {
  name: string;
  model: ModelConfig;
  train: TrainConfig;
  data: DataConfig;
  /** Dotted paths of the fields whose value was derived from other fields (see the file comment). */
  derived: string[];
}

// ---------------------------------------------------------------------------------------------
// sections

const modelKeys = ['vocab', 'd', 'layers', 'heads', 'seq', 'dropout', 'lnEps', 'ffn'] as const;
const trainKeys = ['batch', 'steps', 'lr', 'minLr', 'warmup', 'schedule', 'weightDecay', 'beta1', 'beta2', 'eps', 'clip', 'accum',
  'evalEvery', 'evalBatches', 'saveEvery', 'logEvery', 'seed', 'threads', 'precision', 'bf16Centering'] as const;

/** model: validated, feed-forward derived defaults still open (configSchema fills them). */
export const modelSchema = z
  .object({
    /** Tokenizer / vocabulary: 'bytes' (256) or 'gpt2' (r50k, 50257). */
    vocab: z.enum(TOKENIZER_NAMES).default('bytes'),
    d: posInt,
    layers: posInt,
    heads: posInt,
    /** Context length (learned absolute position embeddings of this size). */
    seq: posInt,
    dropout: z.number().min(0).lt(1).default(0),
    lnEps: posNum.default(1e-5),
    ffn: ffnSchema.default({ type: 'dense' }),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.d % m.heads !== 0) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['heads'], message: `d (${m.d}) must be divisible by heads (${m.heads})` });
    }
    ffnKind(m.ffn.type).check(m.ffn, m, (path, message) => ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['ffn', ...path], message }));
  });

/** train: validated, minLr and warmup still open when not given (configSchema fills them). */
export const trainSchema = z
  .object({
    batch: posInt.default(8),
    steps: posInt.default(1000),
    lr: posNum.default(1e-3),
    /** Final learning rate of the cosine schedule (default lr/10). */
    minLr: nonNegNum.optional(),
    /** Linear warm-up steps (default round(steps/20)). */
    warmup: nonNegInt.optional(),
    schedule: z.enum(['cosine', 'constant']).default('cosine'),
    weightDecay: nonNegNum.default(0.1),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.95),
    eps: posNum.default(1e-8),
    /** Gradient-norm clip; 0 = off. */
    clip: nonNegNum.default(1.0),
    /** Gradient-accumulation micro-batches per optimizer step. */
    accum: posInt.default(1),
    /** Evaluate every N steps (0 = only at the end). */
    evalEvery: nonNegInt.default(100),
    /** Fixed validation batches per periodic evaluation. */
    evalBatches: posInt.default(4),
    /** Save a checkpoint every N steps (0 = only at the end). */
    saveEvery: nonNegInt.default(0),
    logEvery: posInt.default(10),
    seed: nonNegInt.default(0),
    /** Compute threads (default: the backend's choice). */
    threads: posInt.optional(),
    /** 'fp32' or 'bf16' mixed precision (GEMM operands in bf16, fp32 accumulation; needs AVX512_BF16). */
    precision: z.enum(PRECISIONS).default('fp32'),
    /** Under bf16: centre each GEMM's activation operand on its row mean before rounding. */
    bf16Centering: z.boolean().default(true),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.minLr !== undefined && t.minLr > t.lr) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['minLr'], message: `minLr (${t.minLr}) must be <= lr (${t.lr})` });
    }
    if (t.warmup !== undefined && t.warmup > t.steps) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['warmup'], message: `warmup (${t.warmup}) must be <= steps (${t.steps})` });
    }
  });

export const dataSchema = z
  .object({
    /** Text files or folders; empty = the default corpus (State of the Union addresses). */
    paths: z.array(z.string().min(1)).default([]),
    /** Last fraction of the tokens held out for validation. */
    valFraction: z.number().gt(0).lt(1).default(0.1),
  })
  .strict();

/** A run name names the run's folder, so it must be one safe path component. */
const SAFE_NAME = /^[A-Za-z0-9._-]{1,128}$/;
export const nameSchema = z.string().superRefine((n, ctx) => {
  if (!SAFE_NAME.test(n) || n === '.' || n === '..') {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: `a run name must be one folder name of 1 to 128 letters, digits, '.', '_' or '-' (no '/', not '.' or '..'), got ${JSON.stringify(n)}`,
    });
  }
});

// ---------------------------------------------------------------------------------------------
// derived defaults and the whole config

/** Every field whose default is derived from other fields, as a dotted path. */
export const DERIVABLE_PATHS: readonly string[] = [
  ...new Set([...FFN_KINDS.flatMap((k) => k.derivable.map((f) => `model.ffn.${f}`)), 'train.minLr', 'train.warmup']),
];

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A copy of the input without the fields its `derived` list names, so they are derived afresh. */
function dropDerived(raw: unknown): unknown {
  if (!isPlainObject(raw) || !Array.isArray(raw.derived)) return raw;
  const out = structuredClone(raw);
  for (const path of raw.derived) {
    if (typeof path !== 'string' || !DERIVABLE_PATHS.includes(path)) continue; // the schema reports it
    const parts = path.split('.');
    let o: unknown = out;
    for (const p of parts.slice(0, -1)) o = isPlainObject(o) ? o[p] : undefined;
    if (isPlainObject(o)) delete o[parts[parts.length - 1]];
  }
  return out;
}

const configObject = z
  .object({
    name: nameSchema.default('custom'),
    model: modelSchema,
    train: trainSchema.default({}),
    data: dataSchema.default({}),
    /** Fields to derive afresh (a resolved config lists its derived fields here). */
    derived: z.array(z.enum(DERIVABLE_PATHS as [string, ...string[]])).optional(),
  })
  .strict()
  .transform((c): Config => {
    const kind = ffnKind(c.model.ffn.type);
    const ffnIn = c.model.ffn as Record<string, unknown>;
    const derived = kind.derivable.filter((f) => ffnIn[f] === undefined).map((f) => `model.ffn.${f}`);
    if (c.train.minLr === undefined) derived.push('train.minLr');
    if (c.train.warmup === undefined) derived.push('train.warmup');
    const t = c.train;
    return {
      name: c.name,
      model: inSchemaOrder<ModelConfig>({ ...c.model, ffn: kind.resolve(c.model.ffn, c.model) }, modelKeys),
      train: inSchemaOrder<TrainConfig>({ ...t, minLr: t.minLr ?? t.lr / 10, warmup: t.warmup ?? Math.round(t.steps / 20) }, trainKeys),
      data: c.data,
      derived,
    };
  });

/** Input (a config file, preset or saved config.json) -> resolved Config. */
export const configSchema = z.preprocess(dropDerived, configObject);

/** What a config file may contain (defaults optional). */
export type ConfigInput = z.input<typeof configObject>;
export type ModelConfigInput = z.input<typeof modelSchema>;

// ---------------------------------------------------------------------------------------------
// helpers

export function vocabSize(model: Pick<ModelConfig, 'vocab'> | TokenizerName): number {
  return VOCAB_SIZES[typeof model === 'string' ? model : model.vocab];
}

/** The fields of a model config that change training but not its parameters or function. */
export const TRAINING_ONLY_MODEL_FIELDS: readonly string[] = ['dropout', ...new Set(FFN_KINDS.flatMap((k) => k.trainingOnly.map((f) => `ffn.${f}`)))];
