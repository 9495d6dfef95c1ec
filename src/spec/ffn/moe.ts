// Mixture of experts: a router picks k of E experts (each a d -> hidden -> d MLP) per token, as
// class MoE of the PyTorch reference (../shared/peers/torch/moe_lm.py). Placement: layer i is MoE
// iff i % every == every - 1 (every = 2: layers 1, 3, ...), unless `layers` lists them.
// Extensions the reference lacks, counted in the same spirit:
//   granularity G  -> E*G experts of hidden/G, k*G per token (same expert parameters, same MACs)
//   shared experts -> always-active MLPs of the fine-grained expert size (params + 2*d*hidden MACs)
// Counts: active = total - (E - k) * (w1 + b1 + w2 + b2 of one expert);
//         MACs = router E*d + k*2*d*hidden + shared*2*d*hidden.
// Routing (README "Routing"): softmax or sigmoid gates; token choice, expert choice (each expert takes
// its top C = ceil(cf*T*k/E) tokens; evaluated with token choice by default, since expert choice
// looks at the whole batch and is not causal) or uniform (benchmarking); balancing by the batch- or
// sequence-level auxiliary loss and/or DeepSeek-V3's loss-free bias (buffer `expert_bias` [E]).
// Expert choice makes cf*k assignments per token on average: MACs and activations count those.
import { z } from 'zod';
import { posInt, nonNegInt, nonNegNum, layerList, checkLayerList, inLayerList, inSchemaOrder, type LayerList } from '../../config/fields.js';
import { mlpParams, mlpTensors, type FfnKind } from './kind.js';

/** Gate function on the router logits. */
export const MOE_GATES = ['softmax', 'sigmoid'] as const;
/** Who picks: each token its top-k experts, each expert its top-C tokens, or a fixed even spread. */
export const MOE_ROUTINGS = ['token-choice', 'expert-choice', 'uniform'] as const;
/** Auxiliary balancing loss: over the batch (GShard/Switch), per sequence (DeepSeek-V3), or none. */
export const MOE_BALANCES = ['aux', 'seq-aux', 'none'] as const;
export type MoeGate = (typeof MOE_GATES)[number];
export type MoeRouting = (typeof MOE_ROUTINGS)[number];
export type MoeBalance = (typeof MOE_BALANCES)[number];

const schema = z
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
    /** Capacity factor in evaluation (default: capacityFactor; 0 when expert choice evaluates by token choice). */
    evalCapacityFactor: nonNegNum.optional(),
    /** Renormalise the top-k gates to sum to 1. */
    renormalize: z.boolean().default(true),
    /** Multiplicative router-input jitter amplitude during training (0 = off). */
    jitter: nonNegNum.default(0),
    /** Load-balancing (Switch/GShard) loss coefficient. */
    auxCoef: nonNegNum.default(0.01),
    /** Router z-loss coefficient. */
    zCoef: nonNegNum.default(0.001),
    /** Gate function: softmax over experts, or per-expert sigmoid (DeepSeek-V3). */
    gate: z.enum(MOE_GATES).default('softmax'),
    /** Routing in training. Expert choice needs capacityFactor > 0 (C = ceil(cf*T*k/E) tokens per expert). */
    routing: z.enum(MOE_ROUTINGS).default('token-choice'),
    /** Routing in evaluation and generation (default: routing, but token-choice for expert choice). */
    evalRouting: z.enum(MOE_ROUTINGS).optional(),
    /** Balancing loss weighted by auxCoef (default: aux, but none for expert choice). */
    balance: z.enum(MOE_BALANCES).optional(),
    /** Auxiliary-loss-free balancing: a per-expert bias on the scores for top-k selection only. */
    expertBias: z.boolean().default(false),
    /** After each optimizer step, bias_e += biasRate * sign(mean load - load_e). */
    biasRate: nonNegNum.default(0.001),
  })
  .strict();

export interface MoeFfnConfig extends MoeRoutingSpec, MoeDispatchKnobs {
  type: 'moe';
  experts: number;
  topk: number;
  expertHidden: number;
  every: number;
  layers?: LayerList;
  granularity: number;
  sharedExperts: number;
}

/** Capacity, gate normalisation, jitter and loss weights: the same fields in the config, the spec and the layer. */
export interface MoeDispatchKnobs {
  /** Capacity factor in training: C = ceil(cf * T * k / E) slots per expert; <= 0 is dropless. */
  capacityFactor: number;
  /** Capacity factor when `!training` (for the eval routing: token choice's drops or expert choice's C). */
  evalCapacityFactor: number;
  /** Renormalise the k chosen gates to sum to 1 (the reference always does; token choice only). */
  renormalize: boolean;
  /** Multiplicative router-input jitter amplitude eps in training (0 = off). */
  jitter: number;
  /** Weight of the balancing loss in auxLoss(). */
  auxCoef: number;
  /** Weight of the router z-loss in auxLoss(). */
  zCoef: number;
}

/** How a MoE layer routes and balances (the spec's and the layer's view of the config fields). */
export interface MoeRoutingSpec {
  gate: MoeGate;
  routing: MoeRouting;
  evalRouting: MoeRouting;
  balance: MoeBalance;
  expertBias: boolean;
  biasRate: number;
}

export interface MoeFfnSpec extends MoeRoutingSpec, MoeDispatchKnobs {
  kind: 'moe';
  /** Routed experts after granularity (E*G), each d -> hidden (expertHidden/G) -> d. */
  experts: number;
  /** Routed experts per token (k*G). */
  topk: number;
  hidden: number;
  /** Always-active shared experts of width `hidden`. */
  shared: number;
  granularity: number;
  /** The configured (coarse) sizes, before granularity. */
  coarse: { experts: number; topk: number; hidden: number };
}

/** Expert assignments per token in training: k, or cf * k for expert choice (E * C over T tokens). */
const assignments = (s: MoeFfnSpec): number => (s.routing === 'expert-choice' ? s.capacityFactor * s.topk : s.topk);

export const moeKind: FfnKind<typeof schema, MoeFfnConfig, MoeFfnSpec> = {
  type: 'moe',
  schema,
  derivable: ['expertHidden', 'evalCapacityFactor', 'evalRouting', 'balance'],
  trainingOnly: ['capacityFactor', 'evalCapacityFactor', 'jitter', 'auxCoef', 'zCoef', 'balance', 'biasRate'],
  check(f, m, issue) {
    if (f.topk > f.experts) issue(['topk'], `topk (${f.topk}) must be <= experts (${f.experts})`);
    const hidden = f.expertHidden ?? 4 * m.d;
    if (hidden % f.granularity !== 0) issue(['granularity'], `expert hidden width (${hidden}) must be divisible by granularity (${f.granularity})`);
    checkLayerList(issue, f.layers, m.layers, ['layers']);
    const cfOf = (r: MoeRouting, cf: number | undefined) => r === 'expert-choice' && !(cf! > 0);
    if (cfOf(f.routing, f.capacityFactor)) {
      issue(['capacityFactor'], 'expert-choice routing needs capacityFactor > 0: each expert takes C = ceil(capacityFactor * T * topk / experts) tokens (1 gives every token topk experts on average)');
    }
    if (cfOf(f.evalRouting ?? (f.routing === 'expert-choice' ? 'token-choice' : f.routing), f.evalCapacityFactor ?? f.capacityFactor)) {
      issue(['evalCapacityFactor'], 'evalRouting expert-choice needs evalCapacityFactor (or capacityFactor) > 0');
    }
    if (f.expertBias && (f.routing === 'expert-choice' || f.evalRouting === 'expert-choice')) {
      issue(['expertBias'], 'expertBias balances token-choice selection; expert choice is balanced by construction: drop expertBias or use routing token-choice');
    }
    if (f.routing === 'expert-choice' && f.balance !== undefined && f.balance !== 'none') {
      issue(['balance'], `balance '${f.balance}' needs token-choice routing (it weighs each expert's share of the tokens' choices); expert choice is balanced by construction: use balance 'none'`);
    }
    if (f.layers === undefined && f.every > m.layers) {
      issue(['every'], `every = ${f.every} places no MoE layer in a ${m.layers}-layer model (MoE layers are i % every == every - 1)`);
    }
  },
  resolve: (f, m) => {
    const evalRouting = f.evalRouting ?? (f.routing === 'expert-choice' ? 'token-choice' : f.routing);
    // expert choice's capacity factor sizes its own selection; its token-choice evaluation is dropless
    const evalCf = f.routing === 'expert-choice' && evalRouting !== 'expert-choice' ? 0 : f.capacityFactor;
    return inSchemaOrder<MoeFfnConfig>({
      ...f, expertHidden: f.expertHidden ?? 4 * m.d, evalCapacityFactor: f.evalCapacityFactor ?? evalCf, evalRouting,
      balance: f.balance ?? (f.routing === 'expert-choice' ? 'none' : 'aux'),
    }, schema);
  },
  inLayer: (cfg, i) => (cfg.layers === undefined ? i % cfg.every === cfg.every - 1 : inLayerList(cfg.layers, i)),
  layer(cfg) {
    const g = cfg.granularity;
    return {
      kind: 'moe', experts: cfg.experts * g, topk: cfg.topk * g, hidden: cfg.expertHidden / g, shared: cfg.sharedExperts, granularity: g,
      coarse: { experts: cfg.experts, topk: cfg.topk, hidden: cfg.expertHidden },
      capacityFactor: cfg.capacityFactor, evalCapacityFactor: cfg.evalCapacityFactor, renormalize: cfg.renormalize,
      jitter: cfg.jitter, auxCoef: cfg.auxCoef, zCoef: cfg.zCoef,
      gate: cfg.gate, routing: cfg.routing, evalRouting: cfg.evalRouting, balance: cfg.balance, expertBias: cfg.expertBias, biasRate: cfg.biasRate,
    };
  },
  // expert weights are [E, in, out]
  parameters: (s, d) => [
    { name: 'w1', shape: [s.experts, d, s.hidden], expert: true },
    { name: 'b1', shape: [s.experts, s.hidden], expert: true },
    { name: 'w2', shape: [s.experts, s.hidden, d], expert: true },
    { name: 'b2', shape: [s.experts, d], expert: true },
    { name: 'router.weight', shape: [s.experts, d] },
    ...Array.from({ length: s.shared }, (_, j) => mlpTensors(`shared.${j}`, d, s.hidden)).flat(),
  ],
  // the loss-free balancing bias, updated after each step (not by gradients) and checkpointed
  buffers: (s) => (s.expertBias ? [{ name: 'expert_bias', shape: [s.experts], dtype: 'F32' }] : []),
  expertActive: (s, d) => s.topk * mlpParams(d, s.hidden),
  macs: (s, d) => s.experts * d + assignments(s) * 2 * d * s.hidden + s.shared * 2 * d * s.hidden,
  // router logits + probs, gathered inputs, expert hidden pre/post activation, expert outputs,
  // shared experts, output
  activationFloats: (s, d) => 2 * s.experts + assignments(s) * (d + 2 * s.hidden + d) + s.shared * (2 * s.hidden + d) + d,
  shrinkHint: (s) => `fewer or smaller experts (model.ffn.experts ${s.coarse.experts}, model.ffn.expertHidden ${s.coarse.hidden}) or a smaller model.d`,
};
