/** Builds and initialises the model a config describes: one GPT with a feed-forward kind per layer. */
import type { ModelConfig } from '../config/schema.js';
import { ffnKindOfLayer, denseHidden, vocabSize } from '../config/schema.js';
import { Rng } from '../util/random.js';
import { GPT, initGPT } from './gpt.js';
import type { FeedForward } from './ffn.js';
import { MLP } from './mlp.js';
import { MoE } from './moe.js';
import { PEER } from './peer.js';

export function buildModel(cfg: ModelConfig, seed = 0): GPT {
  const rng = new Rng(seed, 2); // stream 2: weight init (stream 1 is data sampling)
  const d = cfg.d;
  const makeFfn = (i: number): FeedForward => {
    const kind = ffnKindOfLayer(cfg, i);
    const f = cfg.ffn;
    if (kind === 'moe' && f.type === 'moe') {
      return new MoE(d, {
        experts: f.experts, topk: f.topk, hidden: f.expertHidden, granularity: f.granularity,
        sharedExperts: f.sharedExperts, capacityFactor: f.capacityFactor, evalCapacityFactor: f.evalCapacityFactor,
        renormalize: f.renormalize, jitter: f.jitter, auxCoef: f.auxCoef, zCoef: f.zCoef,
      });
    }
    if (kind === 'peer' && f.type === 'peer') {
      return new PEER(d, { nSub: f.nSub, heads: f.heads, k: f.k, dKey: f.dKey, bn: f.bn, activation: f.activation, pkm: f.pkm }, rng);
    }
    return new MLP(d, denseHidden(cfg));
  };
  const model = new GPT({
    vocabSize: vocabSize(cfg), d, layers: cfg.layers, heads: cfg.heads, seq: cfg.seq, dropout: cfg.dropout, lnEps: cfg.lnEps,
  }, makeFfn, seed);
  initGPT(model, rng);
  return model;
}
