/**
 * Sampling with a KV cache: the prompt is processed once, then one token per step attends to the
 * cached keys and values. Deterministic for a fixed seed.
 */
import type { GPT } from '../nn/gpt.js';
import type { Tokenizer } from '../data/tokenizer.js';
import { Rng } from '../util/random.js';

export interface SampleOptions {
  prompt: string;
  maxTokens: number;
  temperature: number; // 0 = greedy
  topK?: number; // keep the k most likely tokens (0/undefined = all)
  topP?: number; // nucleus: smallest set with cumulative probability >= p (1/undefined = all)
  seed?: number;
}

/** Picks the next token from logits [V] under temperature / top-k / top-p. */
export function sampleToken(logits: Float32Array, o: Pick<SampleOptions, 'temperature' | 'topK' | 'topP'>, rng: Rng): number {
  const V = logits.length;
  if (o.temperature <= 0) {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  const keep = o.topK && o.topK > 0 ? Math.min(o.topK, V) : V;
  const max = logits[order[0]];
  const probs = new Float64Array(keep);
  let total = 0;
  for (let i = 0; i < keep; i++) total += probs[i] = Math.exp((logits[order[i]] - max) / o.temperature);
  let n = keep;
  if (o.topP !== undefined && o.topP < 1) {
    let cum = 0;
    for (let i = 0; i < keep; i++) {
      cum += probs[i] / total;
      if (cum >= o.topP) {
        n = i + 1;
        break;
      }
    }
    total = 0;
    for (let i = 0; i < n; i++) total += probs[i];
  }
  let u = rng.uniform() * total;
  for (let i = 0; i < n; i++) {
    u -= probs[i];
    if (u <= 0) return order[i];
  }
  return order[n - 1];
}

/** Generates up to maxTokens tokens after the prompt (stopping at the context limit); returns the new text. */
export function generate(model: GPT, tok: Tokenizer, o: SampleOptions): string {
  const wasTraining = model.training;
  model.eval();
  try {
    const rng = new Rng(o.seed ?? 0, 3);
    let ids = Int32Array.from(tok.encode(o.prompt));
    if (ids.length === 0) ids = Int32Array.of(tok.encode('\n')[0] ?? 0);
    const ctx = model.shape.seq;
    if (ids.length > ctx) ids = ids.slice(ids.length - ctx); // keep the most recent context
    const cache = model.newCache(ctx);
    let logits = model.forwardCached(ids, cache);
    const out: number[] = [];
    for (let i = 0; i < o.maxTokens && cache.len < ctx; i++) {
      const next = sampleToken(logits, o, rng);
      out.push(next);
      if (cache.len >= ctx) break;
      logits = model.forwardCached(Int32Array.of(next), cache);
    }
    return tok.decode(out);
  } finally {
    model.train(wasTraining);
  }
}
