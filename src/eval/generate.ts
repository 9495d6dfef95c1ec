/**
 * Sampling with a KV cache: the prompt is processed once, then one token per step attends to the
 * cached keys and values. Deterministic for a fixed seed.
 *
 * Sliding window. The model sees at most `seq` (its context) positions. When the cache is full,
 * a fresh cache is primed with the last `seq - margin` tokens, margin = floor(seq / 2), and
 * sampling continues; so `maxTokens` tokens are always produced, each conditioned on at least
 * the last ceil(seq / 2) tokens, at the cost of one batched forward of ceil(seq / 2) tokens every
 * floor(seq / 2) generated tokens. A prompt longer than the context keeps its last `seq` tokens.
 * Both events are reported once through `onNotice` (no console output here).
 */
import type { GPT } from '../nn/gpt.js';
import type { Tokenizer } from '../data/tokenizer.js';
import { Rng } from '../util/random.js';

export interface SamplingOptions {
  /** Softmax temperature, finite and >= 0; 0 = greedy (always the most likely token). */
  temperature: number;
  /** Keep the k most likely tokens; integer >= 0, 0/undefined = all. */
  topK?: number;
  /** Nucleus: smallest set with cumulative probability >= p; in (0, 1], 1/undefined = all. */
  topP?: number;
}

export interface SampleOptions extends SamplingOptions {
  prompt: string;
  /** Tokens to generate, integer >= 0; always produced in full (sliding window). */
  maxTokens: number;
  /** Seed of the sampling generator, integer >= 0 (default 0). */
  seed?: number;
  /** Told once when the prompt is cut to the context and once when the window starts sliding. */
  onNotice?: (message: string) => void;
}

/** Throws a RangeError naming the bad option and its allowed range. */
export function validateSampling(o: SamplingOptions & { maxTokens?: number; seed?: number }): void {
  const bad = (what: string, v: unknown, rule: string): never => {
    throw new RangeError(`${what} must be ${rule}, got ${v}`);
  };
  if (typeof o.temperature !== 'number' || !Number.isFinite(o.temperature) || o.temperature < 0) bad('temperature', o.temperature, 'a finite number >= 0 (0 = greedy)');
  if (o.topK !== undefined && !(Number.isSafeInteger(o.topK) && o.topK >= 0)) bad('top-k', o.topK, 'an integer >= 0 (0 = all tokens)');
  if (o.topP !== undefined && !(typeof o.topP === 'number' && o.topP > 0 && o.topP <= 1)) bad('top-p', o.topP, 'a number in (0, 1] (1 = off)');
  if (o.maxTokens !== undefined && !(Number.isSafeInteger(o.maxTokens) && o.maxTokens >= 0)) bad('max tokens', o.maxTokens, 'an integer >= 0');
  if (o.seed !== undefined && !(Number.isSafeInteger(o.seed) && o.seed >= 0)) bad('seed', o.seed, 'an integer >= 0');
}

/** Picks the next token from logits [V] under temperature / top-k / top-p (options as validateSampling checks). */
export function sampleToken(logits: Float32Array, o: SamplingOptions, rng: Rng): number {
  validateSampling(o);
  const V = logits.length;
  if (o.temperature === 0) {
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

/** Tokens the window keeps when it slides: seq - floor(seq / 2). */
export function slideKeep(seq: number): number {
  return seq - Math.floor(seq / 2);
}

/** Generates exactly maxTokens token ids after `promptIds` (non-empty). */
export function generateIds(model: GPT, promptIds: ArrayLike<number>, o: Omit<SampleOptions, 'prompt'>): number[] {
  validateSampling(o);
  if (promptIds.length === 0) throw new RangeError('generate needs at least one prompt token');
  const wasTraining = model.training;
  model.eval();
  try {
    const rng = new Rng(o.seed ?? 0, 3);
    const ctx = model.shape.seq;
    let context = Array.from(promptIds);
    if (context.length > ctx) {
      o.onNotice?.(`the prompt has ${context.length} tokens but the model's context is ${ctx}: only its last ${ctx} tokens are used`);
      context = context.slice(context.length - ctx);
    }
    const out: number[] = [];
    if (o.maxTokens === 0) return out;
    let cache = model.newCache(ctx);
    let logits = model.forwardCached(Int32Array.from(context), cache);
    let slid = false;
    for (;;) {
      const next = sampleToken(logits, o, rng);
      out.push(next);
      if (out.length === o.maxTokens) return out;
      context.push(next);
      if (cache.len < ctx) {
        logits = model.forwardCached(Int32Array.of(next), cache);
        continue;
      }
      if (!slid) {
        o.onNotice?.(`generation reached the context of ${ctx} tokens: continuing with a sliding window (the last ${slideKeep(ctx)} tokens are re-read whenever it fills)`);
        slid = true;
      }
      context = context.slice(context.length - slideKeep(ctx));
      cache = model.newCache(ctx); // positions restart at 0, as in training windows
      logits = model.forwardCached(Int32Array.from(context), cache);
    }
  } finally {
    model.train(wasTraining);
  }
}

/** Generates exactly maxTokens tokens after the prompt (sliding window past the context); returns the new text. */
export function generate(model: GPT, tok: Tokenizer, o: SampleOptions): string {
  validateSampling(o);
  let ids: ArrayLike<number> = tok.encode(o.prompt);
  if (ids.length === 0) ids = [tok.encode('\n')[0] ?? 0];
  return tok.decode(generateIds(model, ids, o));
}
