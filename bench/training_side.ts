/**
 * One side of an interleaved training A/B: a model and optimizer of `cfg` with random token
 * batches (a fixed seed, so two sides see the same data), as a function that runs one training
 * step and returns its time in ms. Build each side under the backend it should record with.
 */
import { buildTraining, trainStep, type Config } from '../src/index.js';
import { getTokenizer } from '../src/data/tokenizer.js';
import { Rng } from '../src/util/random.js';

export function trainingSide(cfg: Config): () => number {
  const B = cfg.train.batch, S = cfg.model.seq, V = getTokenizer(cfg.model.vocab).vocabSize;
  const { model, optimizer } = buildTraining(cfg);
  const rng = new Rng(cfg.train.seed, 1);
  const nextBatch = () => {
    const x = new Int32Array(B * S), y = new Int32Array(B * S);
    for (let i = 0; i < B * S; i++) { x[i] = rng.int(V); y[i] = rng.int(V); }
    return { x, y, batch: B, seq: S };
  };
  let it = 0;
  return () => trainStep({ model, optimizer, train: cfg.train, nextBatch }, it++).ms.total;
}
