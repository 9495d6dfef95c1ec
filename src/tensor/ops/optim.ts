/**
 * Optimizer update ops: in-place arithmetic on parameters, their gradients and optimizer moments
 * (no autograd). The optimizers in ../../optim/ keep the state and call these; they never call the
 * backend themselves. All arrays are owned by the caller and updated in place where the doc says so.
 */
import { backend, BinaryOp } from '../../backend/index.js';
import type { RowSparseGrad } from '../tensor.js';
import { release, scratch } from '../pool.js';

/** sum_i x[i]^2, accumulated in double precision (gradient norms). */
export function sumOfSquares(x: Float32Array): number {
  return backend().sumSquares(x);
}

/** x[i] *= s for every i, in place (gradient clipping and accumulation averaging). */
export function scaleInPlace(x: Float32Array, s: number): void {
  backend().binaryScalar(BinaryOp.mul, x, s, x);
}

/** Hyperparameters of one Adam step; bc1 = 1 - beta1^t and bc2 = 1 - beta2^t for step t >= 1. */
export interface AdamStep {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  bc1: number;
  bc2: number;
}

/**
 * One fused AdamW step over every element of p (PyTorch semantics), updating p, m and v in place:
 *   m = beta1 m + (1-beta1) g;  v = beta2 v + (1-beta2) g^2;
 *   p = p (1 - lr wd) - (lr/bc1) m / (sqrt(v)/sqrt(bc2) + eps)
 */
export function adamwUpdate(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: AdamStep, weightDecay: number): void {
  backend().adamw(p, g, m, v, h.lr, h.beta1, h.beta2, h.eps, weightDecay, h.bc1, h.bc2);
}

/**
 * Rows [i0, i1) of a row-sparse gradient chunk as a [(i1-i0), d] array: a view of values, or for a
 * factored chunk the rows formed into out (or a fresh array).
 */
export function rowGradValues(c: RowSparseGrad, d: number, i0 = 0, i1 = c.ids.length, out?: Float32Array): Float32Array {
  if (!c.factors) return c.values.subarray(i0 * d, i1 * d);
  const f = c.factors, o = out ? out.subarray(0, (i1 - i0) * d) : new Float32Array((i1 - i0) * d);
  backend().peerRowGrad(i1 - i0, d, f.per, f.offsets.subarray(i0, i1 + 1), f.order, f.coef, f.src, o);
  return o;
}

/**
 * Sums row-sparse gradient chunks of a [rows, d] table into one chunk with unique ascending ids
 * (duplicate ids, within and across chunks, added up). Fresh arrays; the chunks are not modified.
 */
export function coalesceRows(chunks: readonly RowSparseGrad[], rows: number, d: number): RowSparseGrad {
  let n = 0;
  for (const c of chunks) {
    if (c.values.length !== c.ids.length * d) throw new Error(`coalesceRows: a chunk of ${c.ids.length} ids has ${c.values.length} values, expected ${c.ids.length * d}`);
    n += c.ids.length;
  }
  const ids = new Int32Array(n), vals = scratch(n * d);
  let o = 0;
  for (const c of chunks) {
    ids.set(c.ids, o);
    vals.set(c.values, o * d);
    o += c.ids.length;
  }
  const K = backend();
  const uniq = new Int32Array(n), offsets = new Int32Array(n + 1), order = new Int32Array(n);
  const U = K.peerCoalesce(n, rows, ids, uniq, offsets, order);
  const out = new Float32Array(U * d);
  K.peerRowGrad(U, d, 1, offsets, order, null, vals, out);
  release(vals);
  return { ids: uniq.slice(0, U), values: out };
}

/**
 * Lazy Adam (PyTorch SparseAdam, no weight decay) on the rows g.ids (strictly increasing) of the
 * table p [rows, d], with coalesced gradient rows g.values [U, d]; p, m and v updated in place on
 * those rows only:
 *   m += (1-beta1)(g - m);  v += (1-beta2)(g^2 - v);  p -= lr sqrt(bc2)/bc1 m / (sqrt(v) + eps)
 * m, v: [rows, d] as float32, or bfloat16 bits in Uint16Arrays (updated in float32, stored rounded).
 * p as bfloat16 bits (a bf16 table): the new weight is computed in float32 and stored with
 * stochastic rounding keyed by h.seed (a uint32, required then; kernel contract in
 * backend/kernels/peer.ts).
 */
export function sparseAdamUpdate(p: Float32Array | Uint16Array, d: number, g: RowSparseGrad, m: Float32Array | Uint16Array,
  v: Float32Array | Uint16Array, h: AdamStep & { seed?: number }): void {
  if (p instanceof Uint16Array && h.seed === undefined) throw new Error('sparseAdamUpdate: a bf16 table needs the rounding seed (h.seed)');
  backend().sparseAdam(g.ids.length, d, g.ids, g.values, p, m, v, h.lr, h.beta1, h.beta2, h.eps, h.bc1, h.bc2, h.seed);
}
