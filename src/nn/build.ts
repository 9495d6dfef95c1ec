/** Builds and initialises the model a spec describes: one GPT with each layer's feed-forward block. */
import type { ModelConfig } from '../config/schema.js';
import { specOf, type ModelSpec } from '../spec/model.js';
import type { FfnSpec, FfnType } from '../spec/ffn/index.js';
import { Rng } from '../util/random.js';
import { GPT, initGPT } from './gpt.js';
import type { FeedForward } from './ffn.js';
import { MLP } from './mlp.js';
import { MoE } from './moe.js';
import { PEER } from './peer.js';

interface BuildContext {
  d: number;
  layer: number;
  seed: number;
  /** Weight-init stream, drawn from in layer order. */
  rng: Rng;
}

/** One module builder per feed-forward kind (the compiler requires an entry for every kind). */
const BUILDERS: { [K in FfnType]: (s: Extract<FfnSpec, { kind: K }>, c: BuildContext) => FeedForward } = {
  dense: (s, c) => new MLP(c.d, s.hidden),
  moe: (s, c) => new MoE(c.d, {
    experts: s.coarse.experts, topk: s.coarse.topk, hidden: s.coarse.hidden, granularity: s.granularity,
    sharedExperts: s.shared, capacityFactor: s.capacityFactor, evalCapacityFactor: s.evalCapacityFactor,
    renormalize: s.renormalize, jitter: s.jitter, auxCoef: s.auxCoef, zCoef: s.zCoef,
    gate: s.gate, routing: s.routing, evalRouting: s.evalRouting, balance: s.balance, expertBias: s.expertBias, biasRate: s.biasRate,
  }),
  peer: (s, c) => new PEER(c.d, s, c.rng),
};

function buildFfn(s: FfnSpec, c: BuildContext): FeedForward {
  return (BUILDERS[s.kind] as (s: FfnSpec, c: BuildContext) => FeedForward)(s, c);
}

/**
 * `init: false` skips initGPT's random draws (weights stay zero) for a caller that overwrites every
 * parameter right away (loading a checkpoint); constructors' own draws (PEER keys) still happen.
 */
export function buildModel(model: ModelConfig | ModelSpec, seed = 0, o: { init?: boolean } = {}): GPT {
  const spec = specOf(model);
  const rng = new Rng(seed, 2); // stream 2: weight init (stream 1 is data sampling)
  const d = spec.d;
  const gpt = new GPT({
    vocabSize: spec.vocabSize, d, layers: spec.layers.length, heads: spec.heads, seq: spec.seq, dropout: spec.dropout, lnEps: spec.lnEps,
  }, (i) => buildFfn(spec.layers[i].ffn, { d, layer: i, seed, rng }), seed);
  if (o.init !== false) initGPT(gpt, rng);
  return gpt;
}
