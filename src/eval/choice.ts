/**
 * Log-likelihood of candidate continuations given a context, as lm-evaluation-harness computes it
 * (`loglikelihood` requests):
 *  - whitespace at the end of the context moves to the front of each continuation;
 *  - context tokens = encode(context), continuation tokens = encode(context + continuation) minus
 *    the first |context tokens| (so BPE merges across the boundary count for the continuation);
 *  - an empty context is replaced by "\n" (the harness uses its end-of-text token; we have none);
 *  - the model reads (context + continuation) without its last token and the log-probs of the
 *    continuation tokens are summed: ll = sum_t log p(cont_t | everything before it).
 * Longer than the window: the input keeps its last `seq` tokens (truncated from the left, as the
 * harness does) and the request is counted as truncated. A continuation of more than `seq` tokens
 * is scored in blocks of seq targets, each read with the seq tokens before its last target (so every
 * continuation token is scored once, with as much context as the window allows).
 *
 * Batching. Where every choice fits the window (nothing cut), the context is computed once into a
 * KV cache and each continuation is scored from it (GPT.forwardCached / cachedTokenLogProbs).
 * Otherwise each request's choices are rows of one forward, and whole requests are packed into one
 * forward while rows x longest row stays within `batchTokens`, longest requests first; rows are
 * right-padded and padding is masked out (causal attention: it cannot reach earlier positions). Caveat: an MoE with a capacity limit at evaluation
 * (`evalCapacityFactor` > 0) drops tokens per batch, so its scores then depend on the batching.
 */
import type { GPT, KVCache } from '../nn/gpt.js';
import type { Tokenizer } from '../data/tokenizer.js';
import { Tensor, noGrad } from '../tensor/index.js';

export interface ChoiceRequest {
  context: string;
  /** Continuations to score, delimiter included (e.g. " Paris"). */
  continuations: string[];
}

export interface ChoiceScore {
  /** The context and continuation strings exactly as encoded (after the whitespace move). */
  context: string;
  continuation: string;
  /** Sum of log p over the continuation's tokens (nats, <= 0). */
  logLik: number;
  /** Continuation tokens scored. */
  tokens: number;
  /** True when the input was cut from the left to fit the window. */
  truncated: boolean;
}

export interface ScoreOptions {
  /** Bound on rows x padded length of one forward (default 4096); one request always fits alone. */
  batchTokens?: number;
  /** Share the context through a KV cache where every choice fits the window (default true). */
  kvCache?: boolean;
}

interface Row {
  input: Int32Array; // model input (context + continuation without its last token), truncated
  target: Int32Array; // next tokens
  scoreFrom: number; // first scored position
  req: number;
  choice: number;
}

/** The encoded rows of one request (throws on an empty continuation).  */
interface Encoded {
  rows: Omit<Row, 'req'>[];
  scores: Omit<ChoiceScore, 'logLik'>[];
  ctx: Int32Array;
  conts: Int32Array[];
  /** Every choice fits the window whole (one row each, nothing cut): the context can be shared. */
  shareable: boolean;
}

function encodeRequest(tok: Tokenizer, req: ChoiceRequest, seq: number, index: number): Encoded {
  const context = req.context.replace(/\s+$/u, '');
  const moved = req.context.slice(context.length);
  if (!req.continuations.length) throw new Error(`request ${index}: no continuations to score`);
  let ctxIds = tok.encode(context);
  let prefix = '';
  if (ctxIds.length === 0) {
    prefix = '\n';
    ctxIds = tok.encode(prefix);
  }
  const rows: Omit<Row, 'req'>[] = [];
  const scores: Omit<ChoiceScore, 'logLik'>[] = [];
  const conts: Int32Array[] = [];
  let shareable = true;
  req.continuations.forEach((c, choice) => {
    const cont = moved + c;
    const whole = tok.encode(prefix + context + cont);
    const n = whole.length - ctxIds.length;
    if (n <= 0) throw new Error(`request ${index}, choice ${choice}: the continuation ${JSON.stringify(cont)} encodes to no tokens`);
    // the model reads encode(context) + the continuation's tokens, as the harness does
    const all = new Int32Array(ctxIds.length + n);
    all.set(ctxIds);
    all.set(whole.subarray(ctxIds.length), ctxIds.length);
    conts.push(all.slice(ctxIds.length));
    if (all.length - 1 > seq) shareable = false;
    // blocks of at most seq continuation targets; each read with the seq tokens before its last target
    let truncated = false;
    for (let f = all.length - n; f < all.length; f += seq) {
      const e = Math.min(f + seq, all.length) - 1; // first and last target index of the block
      const start = Math.max(0, e - seq);
      if (f === all.length - n && start > 0) truncated = true;
      const input = all.slice(start, e), target = all.slice(start + 1, e + 1);
      rows.push({ input, target, scoreFrom: f - 1 - start, choice });
    }
    scores.push({ context: prefix + context, continuation: cont, tokens: n, truncated });
  });
  return { rows, scores, ctx: Int32Array.from(ctxIds), conts, shareable };
}

/** Per request, per continuation: the summed log-likelihood and what was scored. */
export function scoreChoices(model: GPT, tok: Tokenizer, requests: ChoiceRequest[], o: ScoreOptions = {}): ChoiceScore[][] {
  const budget = o.batchTokens ?? 4096;
  if (!(Number.isSafeInteger(budget) && budget >= 1)) throw new RangeError(`batchTokens must be a positive integer, got ${budget}`);
  const seq = model.shape.seq;
  const groups = requests.map((r, i) => {
    const e = encodeRequest(tok, r, seq, i);
    return { ...e, req: i, rows: e.rows.map((row) => ({ ...row, req: i })), scores: e.scores.map((s) => ({ ...s, logLik: 0 })), len: Math.max(...e.rows.map((row) => row.input.length)) };
  });
  const shared = o.kvCache === false ? [] : groups.filter((g) => g.shareable && g.conts.length > 1);
  const order = groups.filter((g) => !shared.includes(g)).sort((a, b) => b.len - a.len || a.req - b.req);
  const wasTraining = model.training;
  model.eval();
  try {
    const cache = shared.length ? model.newCache(seq) : null;
    for (const g of shared) scoreShared(model, g.ctx, g.conts, g.scores, cache!);
    noGrad(() => {
      for (let i = 0; i < order.length;) {
        const len = order[i].len; // longest first: the first group of a pack sets its width
        const pack: Row[] = [...order[i].rows];
        let j = i + 1;
        while (j < order.length && (pack.length + order[j].rows.length) * len <= budget) pack.push(...order[j++].rows);
        forwardRows(model, pack, len, groups);
        i = j;
      }
    });
  } finally {
    model.train(wasTraining);
  }
  return groups.map((g) => g.scores);
}

/**
 * The context once into a KV cache, then each continuation from the cached state: the first
 * continuation token's log-prob comes from the context's last logits (log-softmax in float64), the
 * rest from cachedTokenLogProbs; the cache is rewound to the context between choices.
 */
function scoreShared(model: GPT, ctx: Int32Array, conts: Int32Array[], scores: ChoiceScore[], cache: KVCache): void {
  cache.len = 0;
  const logits = model.forwardCached(ctx, cache);
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let z = 0;
  for (const v of logits) z += Math.exp(v - max);
  const lse = max + Math.log(z);
  const L = cache.len;
  conts.forEach((c, k) => {
    let s = logits[c[0]] - lse;
    if (c.length > 1) {
      cache.len = L;
      for (const v of model.cachedTokenLogProbs(c.subarray(0, c.length - 1), c.subarray(1), cache)) s += v;
    }
    scores[k].logLik = s;
  });
}

function forwardRows(model: GPT, rows: Row[], len: number, groups: { scores: ChoiceScore[] }[]): void {
  const B = rows.length;
  const x = new Int32Array(B * len), y = new Int32Array(B * len), mask = new Float32Array(B * len);
  rows.forEach((r, b) => {
    x.set(r.input, b * len);
    y.set(r.target, b * len);
    mask.fill(1, b * len + r.scoreFrom, b * len + r.input.length);
  });
  const lp = model.tokenLogProbs(new Tensor(x, [B, len]), new Tensor(y, [B, len]), mask).f32;
  rows.forEach((r, b) => {
    let s = 0;
    for (let t = r.scoreFrom; t < r.input.length; t++) s += lp[b * len + t];
    groups[r.req].scores[r.choice].logLik += s;
  });
}
