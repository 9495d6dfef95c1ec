// Named run presets. Presets are *inputs* (defaults not yet resolved), so an override of e.g.
// train.lr or train.steps still moves the derived defaults (minLr = lr/10, warmup = steps/20).
//
// The *-d256 presets reproduce the PyTorch reference's models (../shared/peers/torch/moe_lm.py with
// its default d 256, 4 layers, 4 heads, seq 256, batch 8, bytes) and its training recipe: AdamW
// lr 1e-3 constant, no warm-up, no clipping, wd 0.1, betas .9/.95, aux loss 0.01, no z-loss,
// dropless MoE, 90/10 split, 4 fixed validation batches. The reference flags are in `reference`.
import type { ConfigInput } from './schema.js';

export interface Preset {
  description: string;
  /** moe_lm.py flags that build the same model, when there is one. */
  reference?: string;
  config: ConfigInput;
}

const REF_MODEL = { vocab: 'bytes', d: 256, layers: 4, heads: 4, seq: 256 } as const;
const REF_TRAIN = {
  batch: 8, steps: 200, lr: 1e-3, schedule: 'constant', warmup: 0, clip: 0, weightDecay: 0.1,
  beta1: 0.9, beta2: 0.95, evalEvery: 50, evalBatches: 4, logEvery: 10,
} as const;
const REF_MOE = { auxCoef: 0.01, zCoef: 0, capacityFactor: 0, every: 2 } as const;

function ref(name: string, description: string, reference: string, ffn: NonNullable<ConfigInput['model']['ffn']>,
  train: ConfigInput['train'] = {}): [string, Preset] {
  return [name, { description, reference, config: { name, model: { ...REF_MODEL, ffn }, train: { ...REF_TRAIN, ...train }, data: { valFraction: 0.1 } } }];
}

const TINY_MODEL = { vocab: 'bytes', d: 128, layers: 2, heads: 4, seq: 128 } as const;
const TINY_TRAIN = { batch: 8, steps: 600, lr: 2e-3, schedule: 'cosine', clip: 1, evalEvery: 100, evalBatches: 4, logEvery: 20 } as const;

export const PRESETS: Readonly<Record<string, Preset>> = Object.freeze(Object.fromEntries<Preset>([
  ['tiny', {
    description: 'dense d128 L2 h4 seq128, bytes, 600 steps: learns visibly in about a minute on 2 cores',
    config: { name: 'tiny', model: { ...TINY_MODEL, ffn: { type: 'dense' } }, train: { ...TINY_TRAIN } },
  }],
  ['tiny-moe', {
    description: 'tiny with 4 experts top-2 (hidden 256) in layer 1: a quick MoE smoke run',
    config: { name: 'tiny-moe', model: { ...TINY_MODEL, ffn: { type: 'moe', experts: 4, topk: 2, expertHidden: 256 } }, train: { ...TINY_TRAIN } },
  }],
  ['tiny-peer', {
    description: 'tiny with PEER (32^2 = 1024 experts, 4 heads x k 8, dKey 64) in both layers: a quick PEER smoke run',
    config: { name: 'tiny-peer', model: { ...TINY_MODEL, ffn: { type: 'peer', nSub: 32, heads: 4, k: 8, dKey: 64 } }, train: { ...TINY_TRAIN } },
  }],
  ref('dense-d256', 'dense GPT d256 L4 h4 seq256, MLP 4d (reference (a), 3.29M params)',
    '--ffn dense', { type: 'dense' }),
  ref('moe8-d256', '8 experts top-2 of hidden 4d in layers 1,3 (reference (b), 10.65M total / 4.35M active)',
    '--ffn moe --experts 8 --topk 2', { type: 'moe', experts: 8, topk: 2, ...REF_MOE }),
  ref('moe64-d256', '64 experts top-2 of hidden 128 in layers 1,3 (reference (c), 10.71M total / 2.54M active)',
    '--ffn moe --experts 64 --topk 2 --expert_hidden 128', { type: 'moe', experts: 64, topk: 2, expertHidden: 128, ...REF_MOE },
    // under bf16, uncentred GEMM operands kept this model closer to fp32 over 5 seeds (README, Mixed precision)
    { bf16Centering: false }),
  ref('peer65k-d256', 'PEER in all 4 layers, 256^2 = 65,536 experts, 8 heads x k 16, dKey 128 (reference (d), 136.6M / 2.63M)',
    '--ffn peer --n_sub 256 --peer_heads 8 --peer_k 16 --d_key 128', { type: 'peer', nSub: 256, heads: 8, k: 16, dKey: 128, layers: 'all' }),
  ref('peer1m-l2-d256', 'PEER with 1024^2 = 1,048,576 experts in layer 2 only, dense elsewhere (reference (e), 540.0M / 3.22M)',
    '--ffn peer --n_sub 1024 --peer_heads 8 --peer_k 16 --d_key 128 --peer_layers 2', { type: 'peer', nSub: 1024, heads: 8, k: 16, dKey: 128, layers: [2] }),
  ref('peer1m-all-d256', 'PEER with 1024^2 = 1,048,576 experts in all 4 layers (2.15B params); bf16 moments for the tables so it trains in about 19 GiB',
    '--ffn peer --n_sub 1024 --peer_heads 8 --peer_k 16 --d_key 128', { type: 'peer', nSub: 1024, heads: 8, k: 16, dKey: 128, layers: 'all', bf16Moments: true }),
]));

export const DEFAULT_PRESET = 'tiny';

export function presetNames(): string[] {
  return Object.keys(PRESETS);
}

/** A deep copy of the preset's input config, or undefined for an unknown name. */
export function getPreset(name: string): Preset | undefined {
  const p = Object.prototype.hasOwnProperty.call(PRESETS, name) ? PRESETS[name] : undefined;
  return p && { ...p, config: structuredClone(p.config) };
}
