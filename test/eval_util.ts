// A tiny byte-level GPT with seeded weights for evaluation tests.
import { GPT, initGPT } from '../src/nn/gpt.js';
import { MLP } from '../src/nn/mlp.js';
import { Rng } from '../src/util/random.js';

export function tinyModel(seq = 16, seed = 3): GPT {
  const m = new GPT({ vocabSize: 256, d: 16, layers: 2, heads: 2, seq, dropout: 0, lnEps: 1e-5 }, () => new MLP(16, 64));
  initGPT(m, new Rng(seed, 2));
  m.eval();
  return m;
}
