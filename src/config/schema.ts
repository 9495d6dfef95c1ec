// Run configuration: zod schemas for the model / train / data sections, the fully-resolved types
// the rest of moelab consumes, and helpers that interpret a config (vocabulary size, which FFN a
// layer gets, effective expert sizes under fine-grained granularity).
//
// Parsing resolves every default, including the ones that depend on other fields (dense hidden
// and expert hidden = 4*d, minLr = lr/10, warmup = steps/20, evalCapacityFactor = capacityFactor),
// so a parsed config is complete; re-parsing it gives the same object. All objects are strict:
// an unknown key is an error (a typo must not silently fall back to a default).
//
// Layer placement follows the PyTorch reference (../shared/peers/torch/moe_lm.py):
//   moe : layer i is MoE iff i % every == every - 1 (every = 2: layers 1, 3, ...), unless `layers`
//         lists them explicitly ('all' or indices); every other layer is a dense MLP d -> 4d -> d.
//   peer: layers 'all' (default) or a list of indices; the others get a dense MLP d -> 4d -> d.
import { z } from 'zod';

// ---------------------------------------------------------------------------------------------
// building blocks

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();
const nonNegNum = z.number().nonnegative().finite();
const posNum = z.number().positive().finite();
/** 'all' or a list of layer indices. */
const layerList = z.union([z.literal('all'), z.array(nonNegInt).min(1)]);

export const TOKENIZER_NAMES = ['bytes', 'gpt2'] as const;
export type TokenizerName = (typeof TOKENIZER_NAMES)[number];
export const FFN_TYPES = ['dense', 'moe', 'peer'] as const;
export type FfnType = (typeof FFN_TYPES)[number];

/** Vocabulary size of each tokenizer (GPT-2 r50k: 50,000 merges + 256 bytes + <|endoftext|>). */
export const VOCAB_SIZES: Record<TokenizerName, number> = { bytes: 256, gpt2: 50257 };

// ---------------------------------------------------------------------------------------------
// feed-forward variants

export const denseFfnSchema = z
  .object({
    type: z.literal('dense'),
    /** MLP hidden width (default 4*d). */
    hidden: posInt.optional(),
  })
  .strict();

export const moeFfnSchema = z
  .object({
    type: z.literal('moe'),
    /** Number of (coarse) experts E. */
    experts: posInt,
    /** Experts per token k (before granularity). */
    topk: posInt.default(2),
    /** Hidden width of one coarse expert (default 4*d). */
    expertHidden: posInt.optional(),
    /** MoE in layers i with i % every == every - 1 (ignored when `layers` is given). */
    every: posInt.default(2),
    /** Explicit MoE layers: 'all' or indices (overrides `every`). */
    layers: layerList.optional(),
    /** Fine-grained experts: each expert split into G experts of expertHidden/G; k becomes k*G. */
    granularity: posInt.default(1),
    /** Always-active shared experts, each the size of one (fine-grained) routed expert. */
    sharedExperts: nonNegInt.default(0),
    /** Expert capacity C = ceil(cf * T * k / E) during training; 0 = dropless. */
    capacityFactor: nonNegNum.default(0),
    /** Capacity factor in evaluation (default: capacityFactor). */
    evalCapacityFactor: nonNegNum.optional(),
    /** Renormalise the top-k gates to sum to 1. */
    renormalize: z.boolean().default(true),
    /** Multiplicative router-input jitter amplitude during training (0 = off). */
    jitter: nonNegNum.default(0),
    /** Load-balancing (Switch/GShard) loss coefficient. */
    auxCoef: nonNegNum.default(0.01),
    /** Router z-loss coefficient. */
    zCoef: nonNegNum.default(0.001),
  })
  .strict();

export const peerFfnSchema = z
  .object({
    type: z.literal('peer'),
    /** Sub-keys per half; N = nSub^2 experts. */
    nSub: posInt,
    /** Retrieval heads h. */
    heads: posInt.default(8),
    /** Experts per head k. */
    k: posInt.default(16),
    /** Query / key width (even: split into two halves). */
    dKey: posInt.default(128),
    /** BatchNorm1d on the queries. */
    bn: z.boolean().default(false),
    /** PEER layers: 'all' or indices; other layers get a dense MLP d -> 4d -> d. */
    layers: layerList.default('all'),
    activation: z.enum(['gelu', 'relu']).default('gelu'),
    /** Values-only product-key memory (Lample et al. 2019) instead of PEER (no u, no activation). */
    pkm: z.boolean().default(false),
    /** Keep the AdamW moments of the expert tables (u, v) in bf16. */
    bf16Moments: z.boolean().default(false),
  })
  .strict();

export const ffnSchema = z.discriminatedUnion('type', [denseFfnSchema, moeFfnSchema, peerFfnSchema]);

// ---------------------------------------------------------------------------------------------
// resolved (output) types

export interface DenseFfnConfig {
  type: 'dense';
  hidden: number;
}

export interface MoeFfnConfig {
  type: 'moe';
  experts: number;
  topk: number;
  expertHidden: number;
  every: number;
  layers?: 'all' | number[];
  granularity: number;
  sharedExperts: number;
  capacityFactor: number;
  evalCapacityFactor: number;
  renormalize: boolean;
  jitter: number;
  auxCoef: number;
  zCoef: number;
}

export interface PeerFfnConfig {
  type: 'peer';
  nSub: number;
  heads: number;
  k: number;
  dKey: number;
  bn: boolean;
  layers: 'all' | number[];
  activation: 'gelu' | 'relu';
  pkm: boolean;
  bf16Moments: boolean;
}

export type FfnConfig = DenseFfnConfig | MoeFfnConfig | PeerFfnConfig;

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
}

export interface DataConfig {
  paths: string[];
  valFraction: number;
}

export interface Config {
  name: string;
  model: ModelConfig;
  train: TrainConfig;
  data: DataConfig;
}

// ---------------------------------------------------------------------------------------------
// model

function checkLayerList(ctx: z.RefinementCtx, list: 'all' | number[] | undefined, nLayers: number, path: (string | number)[]): void {
  if (list === undefined || list === 'all') return;
  const seen = new Set<number>();
  list.forEach((i, j) => {
    if (i >= nLayers) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: [...path, j], message: `layer index ${i} is out of range: the model has ${nLayers} layers (0..${nLayers - 1})` });
    }
    if (seen.has(i)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [...path, j], message: `layer ${i} is listed twice` });
    seen.add(i);
  });
}

/**
 * Copy `obj` with its keys in the schema's declaration order, dropping undefined values, so that a
 * resolved config serialises the same way every time (and re-parsing it is the identity).
 */
function inSchemaOrder<T extends object>(obj: T, keys: z.AnyZodObject | readonly string[]): T {
  const order = Array.isArray(keys) ? (keys as readonly string[]) : Object.keys((keys as z.AnyZodObject).shape);
  const src = obj as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of order) if (src[k] !== undefined) out[k] = src[k];
  for (const k of Object.keys(src)) if (!(k in out) && src[k] !== undefined) out[k] = src[k];
  return out as T;
}

const modelKeys = ['vocab', 'd', 'layers', 'heads', 'seq', 'dropout', 'lnEps', 'ffn'] as const;
const trainKeys = ['batch', 'steps', 'lr', 'minLr', 'warmup', 'schedule', 'weightDecay', 'beta1', 'beta2', 'eps', 'clip', 'accum',
  'evalEvery', 'evalBatches', 'saveEvery', 'logEvery', 'seed', 'threads'] as const;

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
    const f = m.ffn;
    if (f.type === 'moe') {
      if (f.topk > f.experts) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['ffn', 'topk'], message: `topk (${f.topk}) must be <= experts (${f.experts})` });
      }
      const hidden = f.expertHidden ?? 4 * m.d;
      if (hidden % f.granularity !== 0) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['ffn', 'granularity'], message: `expert hidden width (${hidden}) must be divisible by granularity (${f.granularity})` });
      }
      checkLayerList(ctx, f.layers, m.layers, ['ffn', 'layers']);
      if (f.layers === undefined && f.every > m.layers) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['ffn', 'every'], message: `every = ${f.every} places no MoE layer in a ${m.layers}-layer model (MoE layers are i % every == every - 1)` });
      }
    } else if (f.type === 'peer') {
      if (f.dKey % 2 !== 0) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['ffn', 'dKey'], message: `dKey (${f.dKey}) must be even (it is split into two sub-key halves)` });
      }
      if (f.k > f.nSub) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['ffn', 'k'], message: `k (${f.k}) must be <= nSub (${f.nSub}): top-k is taken over each sub-key table` });
      }
      checkLayerList(ctx, f.layers, m.layers, ['ffn', 'layers']);
    }
  })
  .transform((m): ModelConfig => {
    const f = m.ffn;
    let ffn: FfnConfig;
    if (f.type === 'dense') ffn = { type: 'dense', hidden: f.hidden ?? 4 * m.d };
    else if (f.type === 'moe') {
      const resolved = { ...f, expertHidden: f.expertHidden ?? 4 * m.d, evalCapacityFactor: f.evalCapacityFactor ?? f.capacityFactor };
      ffn = inSchemaOrder<MoeFfnConfig>(resolved, moeFfnSchema);
    } else ffn = inSchemaOrder<PeerFfnConfig>(f, peerFfnSchema);
    return inSchemaOrder<ModelConfig>({ ...m, ffn }, modelKeys);
  });

// ---------------------------------------------------------------------------------------------
// train

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
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.minLr !== undefined && t.minLr > t.lr) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['minLr'], message: `minLr (${t.minLr}) must be <= lr (${t.lr})` });
    }
    if (t.warmup !== undefined && t.warmup > t.steps) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['warmup'], message: `warmup (${t.warmup}) must be <= steps (${t.steps})` });
    }
  })
  .transform((t): TrainConfig => {
    const resolved = { ...t, minLr: t.minLr ?? t.lr / 10, warmup: t.warmup ?? Math.round(t.steps / 20) };
    return inSchemaOrder<TrainConfig>(resolved, trainKeys);
  });

// ---------------------------------------------------------------------------------------------
// data + top level

export const dataSchema = z
  .object({
    /** Text files or folders; empty = the default corpus (State of the Union addresses). */
    paths: z.array(z.string().min(1)).default([]),
    /** Last fraction of the tokens held out for validation. */
    valFraction: z.number().gt(0).lt(1).default(0.1),
  })
  .strict();

export const configSchema = z
  .object({
    name: z.string().min(1).default('custom'),
    model: modelSchema,
    train: trainSchema.default({}),
    data: dataSchema.default({}),
  })
  .strict();

/** What a config file may contain (defaults optional). */
export type ConfigInput = z.input<typeof configSchema>;
export type ModelConfigInput = z.input<typeof modelSchema>;

// ---------------------------------------------------------------------------------------------
// helpers

export function vocabSize(model: Pick<ModelConfig, 'vocab'> | TokenizerName): number {
  return VOCAB_SIZES[typeof model === 'string' ? model : model.vocab];
}

/** Which feed-forward block layer i gets, exactly as the reference places them. */
export function ffnKindOfLayer(model: Pick<ModelConfig, 'layers' | 'ffn'>, i: number): FfnType {
  if (!Number.isInteger(i) || i < 0 || i >= model.layers) throw new RangeError(`layer ${i} out of range 0..${model.layers - 1}`);
  const f = model.ffn;
  if (f.type === 'dense') return 'dense';
  if (f.type === 'moe') {
    if (f.layers === undefined) return i % f.every === f.every - 1 ? 'moe' : 'dense';
    return f.layers === 'all' || f.layers.includes(i) ? 'moe' : 'dense';
  }
  return f.layers === 'all' || f.layers.includes(i) ? 'peer' : 'dense';
}

/** Kind of every layer, in order. */
export function layerKinds(model: Pick<ModelConfig, 'layers' | 'ffn'>): FfnType[] {
  return Array.from({ length: model.layers }, (_, i) => ffnKindOfLayer(model, i));
}

/** Hidden width of the dense MLP in layer kinds 'dense': ffn.hidden for a dense model, 4d otherwise. */
export function denseHidden(model: Pick<ModelConfig, 'd' | 'ffn'>): number {
  return model.ffn.type === 'dense' ? model.ffn.hidden : 4 * model.d;
}

/** Routed experts after granularity: E*G experts of width hidden/G, k*G of them per token. */
export interface EffectiveMoe {
  experts: number;
  topk: number;
  hidden: number;
  shared: number;
}

export function effectiveMoe(f: MoeFfnConfig): EffectiveMoe {
  const g = f.granularity;
  return { experts: f.experts * g, topk: f.topk * g, hidden: f.expertHidden / g, shared: f.sharedExperts };
}

/** The fields of a model config that fix its parameters and function (not training-only knobs). */
export const TRAINING_ONLY_MODEL_FIELDS = ['dropout', 'ffn.capacityFactor', 'ffn.evalCapacityFactor', 'ffn.jitter', 'ffn.auxCoef', 'ffn.zCoef', 'ffn.bf16Moments'] as const;
