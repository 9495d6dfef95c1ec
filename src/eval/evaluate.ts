/**
 * Held-out evaluation of text: mean cross-entropy in nats/token, perplexity and bits per byte,
 * scored over the windows of windows.ts (non-overlapping by default, sliding with a stride).
 */
import type { GPT } from '../nn/gpt.js';
import type { Tokenizer, TokenArray } from '../data/tokenizer.js';
import { loadCorpus } from '../data/corpus.js';
import { scoreTokens, WINDOW_DEFINITION, type WindowOptions } from './windows.js';

export interface EvalResult {
  file: string;
  loss: number; // nats per token
  /** exp(loss). */
  perplexity: number;
  bpb: number; // bits per UTF-8 byte of the source text
  tokens: number; // tokens scored
  /** UTF-8 bytes of the text scored (the bpb denominator). */
  bytes: number;
  /** The sliding-window stride, when one was used. */
  stride?: number;
}

export const EVAL_DEFINITION =
  `${WINDOW_DEFINITION} loss = mean -ln p (nats/token), perplexity = exp(loss), bpb = total nats / ln 2 / UTF-8 bytes of the text.`;

/** Scores a token array standing for `bytes` UTF-8 bytes; `name` labels the result and errors. */
export function evaluateTokens(model: GPT, name: string, tokens: TokenArray, bytes: number, o: WindowOptions = {}): EvalResult {
  const s = scoreTokens(model, tokens, o);
  if (s.tokens === 0) throw new Error(`${name}: too short to evaluate (needs at least 2 tokens)`);
  const loss = s.nats / s.tokens;
  if (!Number.isFinite(loss)) {
    throw new Error(`${name}: the model's loss is ${loss}: its weights have diverged (a checkpoint saved by an older moelab can hold such a state); evaluate an earlier checkpoint`);
  }
  const r: EvalResult = { file: name, loss, perplexity: Math.exp(loss), bpb: s.nats / Math.LN2 / bytes, tokens: s.tokens, bytes };
  if (o.stride !== undefined) r.stride = o.stride;
  return r;
}

/** Evaluates a text file (or folder, read as a corpus). `o` may be the batch size alone (older callers). */
export function evaluateFile(model: GPT, tok: Tokenizer, path: string, o: number | WindowOptions = 8): EvalResult {
  const opts = typeof o === 'number' ? { batch: o } : o;
  const corpus = loadCorpus([path], tok);
  return evaluateTokens(model, path, corpus.tokens, corpus.bytes, opts);
}
