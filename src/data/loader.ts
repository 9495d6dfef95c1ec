// Batches for training and evaluation.
//   splitTokens     first (1 - valFraction) of the tokens train, the rest validation (the
//                   reference: split = int(0.9 * len)).
//   BatchSampler    random windows of seq + 1 tokens from a seeded generator; x = first seq,
//                   y = last seq. Its state is serialisable, so a resumed run draws the same batches.
//   fixedValBatches the periodic-eval batches: fixed for the whole run (own seeds), independent of
//                   the training stream.
//   evalWindows     full evaluation: consecutive non-overlapping windows covering every token once.
import { Rng, type RngState } from '../util/random.js';
import type { TokenArray } from './tokenizer.js';

export interface Batch {
  /** Inputs, row-major [batch, seq]. */
  x: Int32Array;
  /** Targets (inputs shifted by one), [batch, seq]. */
  y: Int32Array;
  batch: number;
  seq: number;
}

export interface Split {
  train: TokenArray;
  val: TokenArray;
}

/** Views (no copies) of the train and validation parts. */
export function splitTokens(tokens: TokenArray, valFraction: number): Split {
  if (!(valFraction > 0 && valFraction < 1)) throw new RangeError(`valFraction must be in (0, 1), got ${valFraction}`);
  const cut = Math.floor((1 - valFraction) * tokens.length);
  return { train: tokens.subarray(0, cut), val: tokens.subarray(cut) };
}

/** Throws a clear error when a split is too short for windows of seq + 1 tokens. */
export function checkSplit(split: Split, seq: number): void {
  for (const [name, part] of [['train', split.train], ['validation', split.val]] as const) {
    if (part.length < seq + 1) {
      throw new Error(`corpus too small: the ${name} split has ${part.length} tokens, a window needs seq + 1 = ${seq + 1}; use more data or a shorter seq`);
    }
  }
}

function fillWindow(tokens: TokenArray, start: number, seq: number, x: Int32Array, y: Int32Array, row: number): void {
  const o = row * seq;
  for (let t = 0; t < seq; t++) {
    x[o + t] = tokens[start + t];
    y[o + t] = tokens[start + t + 1];
  }
}

export interface SamplerState {
  rng: RngState;
  /** Batches drawn so far (informational). */
  drawn: number;
}

export class BatchSampler {
  private rng: Rng;
  private drawn = 0;

  /**
   * @param tokens the training tokens
   * @param seed   seeds the window positions (stream 1 of Rng, separate from init)
   */
  constructor(readonly tokens: TokenArray, readonly batch: number, readonly seq: number, seed = 0) {
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be a positive integer, got ${batch}`);
    if (!Number.isInteger(seq) || seq < 1) throw new RangeError(`seq must be a positive integer, got ${seq}`);
    if (tokens.length < seq + 1) throw new Error(`corpus too small: ${tokens.length} tokens, a window needs seq + 1 = ${seq + 1}`);
    this.rng = new Rng(seed, 1);
  }

  /** Number of distinct window start positions. */
  get positions(): number {
    return this.tokens.length - this.seq;
  }

  /** The next batch; each row starts at a uniform position in [0, len - seq - 1]. */
  next(): Batch {
    const { batch, seq, tokens } = this;
    const x = new Int32Array(batch * seq);
    const y = new Int32Array(batch * seq);
    for (let b = 0; b < batch; b++) fillWindow(tokens, this.rng.int(this.positions), seq, x, y, b);
    this.drawn++;
    return { x, y, batch, seq };
  }

  getState(): SamplerState {
    return { rng: this.rng.getState(), drawn: this.drawn };
  }

  setState(s: SamplerState): void {
    this.rng.setState(s.rng);
    this.drawn = s.drawn;
  }
}

/**
 * `count` fixed validation batches: batch i uses its own generator seeded 1234 + i (as the
 * reference does), so the set is the same at every evaluation and in every run over the same data.
 */
export function fixedValBatches(val: TokenArray, batch: number, seq: number, count: number): Batch[] {
  if (val.length < seq + 1) throw new Error(`validation split too small: ${val.length} tokens, a window needs seq + 1 = ${seq + 1}`);
  const out: Batch[] = [];
  for (let i = 0; i < count; i++) {
    const rng = new Rng(1234 + i, 1);
    const x = new Int32Array(batch * seq);
    const y = new Int32Array(batch * seq);
    for (let b = 0; b < batch; b++) fillWindow(val, rng.int(val.length - seq), seq, x, y, b);
    out.push({ x, y, batch, seq });
  }
  return out;
}

export interface EvalWindow {
  /** Index of the window's first input token in the token array. */
  start: number;
  /** Number of predicted tokens (seq, or fewer for the final window). */
  length: number;
  x: Int32Array;
  y: Int32Array;
}

/** Number of windows evalWindows yields: ceil((n - 1) / seq). */
export function evalWindowCount(n: number, seq: number): number {
  return n < 2 ? 0 : Math.ceil((n - 1) / seq);
}

/**
 * Consecutive non-overlapping windows: window i holds tokens [i*seq, i*seq + seq + 1) and predicts
 * the last seq of them, so every token after the first is predicted exactly once. The final window
 * may be shorter. Yielded lazily (a large validation set need not be materialised).
 */
export function* evalWindows(tokens: TokenArray, seq: number): Generator<EvalWindow> {
  if (!Number.isInteger(seq) || seq < 1) throw new RangeError(`seq must be a positive integer, got ${seq}`);
  const n = tokens.length;
  for (let start = 0; start + 1 < n; start += seq) {
    const length = Math.min(seq, n - 1 - start);
    const x = new Int32Array(length);
    const y = new Int32Array(length);
    for (let t = 0; t < length; t++) {
      x[t] = tokens[start + t];
      y[t] = tokens[start + t + 1];
    }
    yield { start, length, x, y };
  }
}

/**
 * evalWindows grouped into batches of up to `batch` full windows ([rows, seq] row-major); the
 * final shorter window, if any, comes alone as a batch with seq = its length.
 */
export function* evalBatches(tokens: TokenArray, seq: number, batch: number): Generator<Batch & { tokens: number }> {
  let rows: EvalWindow[] = [];
  const flush = function* (): Generator<Batch & { tokens: number }> {
    if (!rows.length) return;
    const x = new Int32Array(rows.length * seq);
    const y = new Int32Array(rows.length * seq);
    rows.forEach((w, r) => {
      x.set(w.x, r * seq);
      y.set(w.y, r * seq);
    });
    yield { x, y, batch: rows.length, seq, tokens: rows.length * seq };
    rows = [];
  };
  for (const w of evalWindows(tokens, seq)) {
    if (w.length < seq) {
      yield* flush();
      yield { x: w.x, y: w.y, batch: 1, seq: w.length, tokens: w.length };
      continue;
    }
    rows.push(w);
    if (rows.length === batch) yield* flush();
  }
  yield* flush();
}
