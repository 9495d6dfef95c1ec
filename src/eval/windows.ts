/**
 * Perplexity of a token array, scored with GPT.tokenLogProbs over windows of the model's context.
 *
 * Two windowings (targets are tokens 1..n-1; token 0 is never predicted):
 *  - non-overlapping (default): window i holds tokens [i*seq, i*seq + seq + 1) and predicts the
 *    last seq of them; a final partial window counts too. Early tokens of each window see little
 *    context, so this is an upper bound on what the model can do.
 *  - sliding (stride S, 1 <= S <= seq): the first window predicts tokens 1..min(seq, n-1); every
 *    later window is the seq tokens before its last target and predicts only its last S targets
 *    (fewer in the final one), so every token after the first window is predicted with at least
 *    seq - S tokens of context. S = 1 is exact full-context scoring, at seq times the cost.
 * Both score every target exactly once: nats/token = total nats / targets.
 */
import type { GPT } from '../nn/gpt.js';
import type { TokenArray } from '../data/tokenizer.js';
import { Tensor, noGrad } from '../tensor/index.js';

/** One window: inputs tokens[start, start+len), targets tokens[start+1, start+len+1), positions >= skip scored. */
export interface ScoreWindow {
  start: number;
  len: number;
  skip: number;
}

export interface WindowOptions {
  /** Windows per forward (default 8). */
  batch?: number;
  /** Sliding-window stride; undefined = non-overlapping windows. */
  stride?: number;
}

export interface TokenScore {
  /** Sum of -log p over the scored targets (nats). */
  nats: number;
  /** Targets scored (n - 1 for n tokens). */
  tokens: number;
}

export const WINDOW_DEFINITION =
  'Non-overlapping (default): window i holds tokens [i*seq, i*seq+seq+1) and predicts the last seq of them, a final partial window counts too. ' +
  'Sliding (--stride S): the first window predicts its seq targets; each later window is the seq tokens before its last target and predicts only its last S, ' +
  'so every later token has at least seq-S tokens of context. Either way every token after the first is predicted exactly once.';

function checkInt(v: number, what: string, lo: number, hi: number): void {
  if (!(Number.isSafeInteger(v) && v >= lo && v <= hi)) throw new RangeError(`${what} must be an integer in [${lo}, ${hi}], got ${v}`);
}

/** The windows that score n tokens under context `seq` (see the file comment). */
export function planWindows(n: number, seq: number, stride?: number): ScoreWindow[] {
  checkInt(seq, 'seq', 1, Number.MAX_SAFE_INTEGER);
  if (stride !== undefined) checkInt(stride, 'stride', 1, seq);
  const out: ScoreWindow[] = [];
  if (n < 2) return out;
  if (stride === undefined) {
    for (let start = 0; start + 1 < n; start += seq) out.push({ start, len: Math.min(seq, n - 1 - start), skip: 0 });
    return out;
  }
  let scored = Math.min(seq, n - 1); // targets 1..scored are done
  out.push({ start: 0, len: scored, skip: 0 });
  while (scored < n - 1) {
    const end = Math.min(scored + stride, n - 1); // last target of this window
    out.push({ start: end - seq, len: seq, skip: seq - (end - scored) });
    scored = end;
  }
  return out;
}

/** Total nats and targets of `tokens` under the model (eval mode, no graph). */
export function scoreTokens(model: GPT, tokens: TokenArray, o: WindowOptions = {}): TokenScore {
  const batch = o.batch ?? 8;
  checkInt(batch, 'batch', 1, 1 << 20);
  const windows = planWindows(tokens.length, model.shape.seq, o.stride);
  const wasTraining = model.training;
  model.eval();
  try {
    let nats = 0, count = 0;
    noGrad(() => {
      for (let i = 0; i < windows.length;) {
        // rows of one forward share a length: full windows batch together, a short final one goes alone
        const len = windows[i].len;
        let j = i;
        while (j < windows.length && j - i < batch && windows[j].len === len) j++;
        const rows = j - i;
        const x = new Int32Array(rows * len), y = new Int32Array(rows * len), mask = new Float32Array(rows * len);
        for (let r = 0; r < rows; r++) {
          const w = windows[i + r];
          for (let t = 0; t < len; t++) {
            x[r * len + t] = tokens[w.start + t];
            y[r * len + t] = tokens[w.start + t + 1];
            if (t >= w.skip) mask[r * len + t] = 1;
          }
          count += len - w.skip;
        }
        const lp = model.tokenLogProbs(new Tensor(x, [rows, len]), new Tensor(y, [rows, len]), mask).f32;
        for (let k = 0; k < lp.length; k++) nats -= lp[k];
        i = j;
      }
    });
    return { nats, tokens: count };
  } finally {
    model.train(wasTraining);
  }
}
