// The resolved model spec: a model config turned, once, into what each layer holds. Building the
// modules (nn/build.ts), counting parameters and FLOPs (spec/count.ts), the memory estimate
// (spec/memory.ts) and checkpoint tensor names and shapes all read this, never the config's
// feed-forward section. Layer placement is the kind's (spec/ffn/*.ts); the layers a kind leaves
// out get a dense MLP d -> 4d -> d, as in the PyTorch reference.
import { vocabSize, type ModelConfig, type TokenizerName } from '../config/schema.js';
import { ffnKind, type FfnSpec, type FfnType } from './ffn/index.js';
import { denseLayer } from './ffn/dense.js';

export interface LayerSpec {
  index: number;
  /** The feed-forward block with its effective sizes (a discriminated union on `kind`). */
  ffn: FfnSpec;
}

export interface ModelSpec {
  vocab: TokenizerName;
  vocabSize: number;
  d: number;
  heads: number;
  /** Context length (position embeddings). */
  seq: number;
  dropout: number;
  lnEps: number;
  layers: LayerSpec[];
}

export function resolveModelSpec(model: ModelConfig): ModelSpec {
  const kind = ffnKind(model.ffn.type);
  const layers: LayerSpec[] = [];
  for (let i = 0; i < model.layers; i++) {
    layers.push({ index: i, ffn: kind.inLayer(model.ffn, i) ? kind.layer(model.ffn, model.d) : denseLayer(4 * model.d) });
  }
  return { vocab: model.vocab, vocabSize: vocabSize(model), d: model.d, heads: model.heads, seq: model.seq, dropout: model.dropout, lnEps: model.lnEps, layers };
}

export function isModelSpec(m: ModelConfig | ModelSpec): m is ModelSpec {
  return Array.isArray(m.layers);
}

/** The spec of a model given either way (consumers accept a config or an already resolved spec). */
export function specOf(m: ModelConfig | ModelSpec): ModelSpec {
  return isModelSpec(m) ? m : resolveModelSpec(m);
}

/** Which feed-forward kind layer i gets. */
export function ffnKindOfLayer(model: ModelConfig | ModelSpec, i: number): FfnType {
  const s = specOf(model);
  if (!Number.isInteger(i) || i < 0 || i >= s.layers.length) throw new RangeError(`layer ${i} out of range 0..${s.layers.length - 1}`);
  return s.layers[i].ffn.kind;
}

/** Kind of every layer, in order. */
export function layerKinds(model: ModelConfig | ModelSpec): FfnType[] {
  return specOf(model).layers.map((l) => l.ffn.kind);
}
