/**
 * Log-likelihood of candidate continuations given a context, as lm-evaluation-harness computes it
 * (`loglikelihood` requests):
 *  - whitespace at the end of the context moves to the front of each continuation;
 *  - context tokens = encode(context), continuation tokens = encode(context + continuation) minus
 *    the first |context tokens| (so BPE merges across the boundary count for the continuation);
 *  - an empty context is replaced by "\n" (the harness uses its end-of-text token; we have none);
 *  - the model reads (context + continuation) without its last token and the log-probs of the
 *    continuation tokens are summed: ll = sum_t log p(cont_t | everything before it).
 * Rows, longer than the window: the input keeps its last `seq` tokens (truncated from the left per
 * choice, as the harness does) and the request is counted as truncated. A continuation of more
 * than `seq` tokens is scored in blocks of seq targets, each read with the seq tokens before its
 * last target (so every continuation token is scored once, with as much context as the window
 * allows).
 *
 * Shared context (the default; `kvCache: false` turns it off). A request with several choices whose
 * longest continuation (n_max tokens) fits the window is scored from one context computed once into
 * a KV cache: all its continuations are then rows of one forward (GPT.cachedBranchLogProbs), each
 * attending to the cached context and to its own earlier tokens. Several requests go together:
 * their contexts, longest first, fill their caches in one padded forward (GPT.forwardCachedBatch)
 * while requests x longest context stays within `batchTokens`, and their continuations are scored
 * in branch forwards of at most `batchTokens` tokens. When context + longest continuation exceed the window, the context
 * is cut from the left ONCE, to its last seq + 1 - n_max tokens (moved 1-3 tokens further right if
 * the cut would split a UTF-8 character, so the logged context string is exactly what was read),
 * and every choice reads that same cut context; every choice of such a request is counted as
 * truncated and reports the cut context string. This is the only difference from
 * lm-evaluation-harness: the harness cuts per choice (choice k keeps the last seq + 1 - n_k context
 * tokens), so a choice shorter than the longest keeps n_max - n_k more context tokens there. The
 * longest choice, and every request where nothing is cut, score identically.
 * `kvCache: false` is the harness's per-choice behaviour exactly.
 *
 * Rows. Otherwise (one choice, a continuation longer than the window, or kvCache: false) each
 * request's choices are rows of one forward, and whole requests are packed into one
 * forward while rows x longest row stays within `batchTokens`, longest requests first; rows are
 * right-padded and padding is masked out (causal attention: it cannot reach earlier positions).
 * Caveat (both paths): an MoE with a capacity limit at evaluation (`evalCapacityFactor` > 0) drops
 * tokens per batch, and one routing by expert choice at evaluation picks tokens per batch, so its
 * scores then depend on the batching (padding included); token-choice routing does not.
 */
import type { GPT, KVCache, CachedBranch } from '../nn/gpt.js';
import type { Tokenizer } from '../data/tokenizer.js';
import { Tensor, noGrad, stepScope } from '../tensor/index.js';

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
  /**
   * Bound on rows x padded length of one forward (default 4096 for the row path, 1024 for the shared
   * contexts' prefill, measured fastest there at seq 256); one request always fits alone.
   */
  batchTokens?: number;
  /** Share each request's (possibly cut) context among its choices through a KV cache (default true; see the header). */
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
  /** The longest continuation fits the window: the context can be shared (cut if need be). */
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
  return { rows, scores, ctx: Int32Array.from(ctxIds), conts, shareable: Math.max(...conts.map((c) => c.length)) <= seq };
}

/** Per request, per continuation: the summed log-likelihood and what was scored. */
export function scoreChoices(model: GPT, tok: Tokenizer, requests: ChoiceRequest[], o: ScoreOptions = {}): ChoiceScore[][] {
  const budget = o.batchTokens ?? 4096, sharedBudget = o.batchTokens ?? 1024;
  if (!(Number.isSafeInteger(budget) && budget >= 1)) throw new RangeError(`batchTokens must be a positive integer, got ${budget}`);
  const seq = model.shape.seq;
  const groups = requests.map((r, i) => {
    const e = encodeRequest(tok, r, seq, i);
    return { ...e, req: i, rows: e.rows.map((row) => ({ ...row, req: i })), scores: e.scores.map((s) => ({ ...s, logLik: 0 })), len: Math.max(...e.rows.map((row) => row.input.length)) };
  });
  const shared = o.kvCache === false ? [] : groups.filter((g) => g.shareable && g.conts.length > 1);
  const isShared = new Set(shared);
  const order = groups.filter((g) => !isShared.has(g)).sort((a, b) => b.len - a.len || a.req - b.req);
  const wasTraining = model.training;
  model.eval();
  try {
    // shared requests, longest context first, in batches of requests x longest context <= sharedBudget
    const items: SharedItem[] = shared.map((g) => {
      const cut = sharedContext(tok, g.ctx, g.conts, seq);
      if (cut) for (const sc of g.scores) Object.assign(sc, { context: cut.text, truncated: true });
      return { ctx: cut ? cut.ids : g.ctx, conts: g.conts, scores: g.scores };
    }).sort((a, b) => b.ctx.length - a.ctx.length);
    const caches: KVCache[] = [];
    for (let i = 0; i < items.length;) {
      let j = i + 1;
      while (j < items.length && (j - i + 1) * items[i].ctx.length <= sharedBudget) j++;
      while (caches.length < j - i) caches.push(model.newCache(seq));
      scoreShared(model, items.slice(i, j), caches.slice(0, j - i), sharedBudget);
      i = j;
    }
    noGrad(() => {
      for (let i = 0; i < order.length;) {
        const len = order[i].len; // longest first: the first group of a pack sets its width
        const pack: Row[] = [...order[i].rows];
        let j = i + 1;
        while (j < order.length && (pack.length + order[j].rows.length) * len <= budget) pack.push(...order[j++].rows);
        stepScope(() => forwardRows(model, pack, len, groups));
        i = j;
      }
    });
  } finally {
    model.train(wasTraining);
  }
  return groups.map((g) => g.scores);
}

/**
 * The context tokens every choice reads: all of them when context + longest continuation fit the
 * window, else the last seq + 1 - n_max, moved right (at most 3 tokens) past a split UTF-8 character.
 */
function sharedContext(tok: Tokenizer, ctx: Int32Array, conts: Int32Array[], seq: number): { ids: Int32Array; text: string } | null {
  const keep = seq + 1 - Math.max(...conts.map((c) => c.length));
  if (keep >= ctx.length) return null;
  let from = ctx.length - keep;
  let text = tok.decode(ctx.subarray(from));
  for (let extra = 0; extra < 3 && text.startsWith('\uFFFD') && from + 1 < ctx.length; extra++) text = tok.decode(ctx.subarray(++from));
  return { ids: ctx.slice(from), text };
}

interface SharedItem {
  ctx: Int32Array; // the (cut) context every choice reads
  conts: Int32Array[];
  scores: ChoiceScore[];
}

/**
 * A batch of requests: their contexts in one prefill forward into their KV caches, then their
 * continuations as branches of cached forwards of at most `budget` tokens. The first continuation token's
 * log-prob comes from its context's last logits (log-softmax in float64), the rest from
 * cachedBranchLogProbs.
 */
function scoreShared(model: GPT, batch: SharedItem[], caches: KVCache[], budget: number): void {
  const logits = stepScope(() => model.forwardCachedBatch(batch.map((b) => b.ctx), caches));
  const branches: CachedBranch[] = batch.flatMap((b, j) => b.conts.map((c) => ({ ids: c.subarray(0, c.length - 1), targets: c.subarray(1), cache: caches[j] })));
  // branch forwards of at most `budget` tokens (a longer branch alone), each in a pool scope, so
  // memory stays bounded and same-sized buffers are reused (fresh pages cost more than the math)
  const rest: Float32Array[] = [];
  for (let i = 0; i < branches.length;) {
    let j = i + 1, n = branches[i].ids.length;
    while (j < branches.length && n + branches[j].ids.length <= budget) n += branches[j++].ids.length;
    rest.push(...stepScope(() => model.cachedBranchLogProbs(branches.slice(i, j))));
    i = j;
  }
  let r = 0;
  batch.forEach((b, j) => {
    const lg = logits[j];
    let max = -Infinity;
    for (const v of lg) if (v > max) max = v;
    let z = 0;
    for (const v of lg) z += Math.exp(v - max);
    const lse = max + Math.log(z);
    b.conts.forEach((c, k) => {
      let s = lg[c[0]] - lse;
      for (const v of rest[r++]) s += v;
      b.scores[k].logLik = s;
    });
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
