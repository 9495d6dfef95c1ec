/**
 * Held-out evaluation of a text file: mean cross-entropy in nats/token and bits per byte, over
 * consecutive non-overlapping windows (window i holds tokens [i*seq, i*seq+seq+1) and predicts the
 * last seq of them; a final partial window counts too), so every token after the first is scored
 * exactly once.
 */
import type { GPT } from '../nn/gpt.js';
import type { Tokenizer } from '../data/tokenizer.js';
import { loadCorpus } from '../data/corpus.js';
import { evalBatches } from '../data/loader.js';
import { Tensor, noGrad } from '../tensor/index.js';

export interface EvalResult {
  file: string;
  loss: number; // nats per token
  bpb: number; // bits per UTF-8 byte of the source text
  tokens: number; // tokens scored
}

export const EVAL_DEFINITION =
  'Mean cross-entropy over consecutive non-overlapping windows: window i holds tokens [i*seq, i*seq+seq+1) ' +
  'and predicts the last seq of them; a final partial window counts too. bpb = total nats / ln 2 / source bytes.';

export function evaluateFile(model: GPT, tok: Tokenizer, path: string, batch = 8): EvalResult {
  const corpus = loadCorpus([path], tok);
  const seq = model.shape.seq;
  const wasTraining = model.training;
  model.eval();
  try {
    let nats = 0, count = 0;
    noGrad(() => {
      for (const b of evalBatches(corpus.tokens, seq, batch)) {
        const { loss } = model.forward(new Tensor(b.x, [b.batch, b.seq]), new Tensor(b.y, [b.batch * b.seq]));
        nats += loss!.item() * b.tokens;
        count += b.tokens;
      }
    });
    if (count === 0) throw new Error(`${path}: too short to evaluate (needs at least 2 tokens)`);
    if (!Number.isFinite(nats)) {
      throw new Error(`${path}: the model's loss is ${nats / count}: its weights have diverged (a checkpoint saved by an older moelab can hold such a state); evaluate an earlier checkpoint`);
    }
    return { file: path, loss: nats / count, bpb: nats / Math.LN2 / corpus.bytes, tokens: count };
  } finally {
    model.train(wasTraining);
  }
}
