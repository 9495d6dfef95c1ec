// Reference reductions: axis reduce (sum/max with argmax), broadcast-gradient sumInto, row softmax
// and its backward. Sums are accumulated in double precision and rounded once when stored.
import type { F32, I32 } from '../kernels.js';
import { ReduceOp } from '../kernels.js';
import { need, len } from './check.js';

/**
 * x viewed as [outer, n, inner]: out[o, j] = sum_i x[o, i, j] or max_i x[o, i, j].
 * max: NaN counts as larger than every number; argIdx[o, j] gets the first index attaining the max.
 */
export function reduce(op: number, outer: number, n: number, inner: number, x: F32, out: F32, argIdx: I32 | null): void {
  need(op === ReduceOp.sum || op === ReduceOp.max, 'reduce', `unknown reduce op ${op}`);
  need(op === ReduceOp.sum || n > 0 || outer * inner === 0, 'reduce', 'max over an empty axis');
  len('reduce', 'x', x, outer * n * inner);
  len('reduce', 'out', out, outer * inner);
  if (op === ReduceOp.max && argIdx) len('reduce', 'argIdx', argIdx, outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      const at = (i: number) => x[(o * n + i) * inner + j];
      if (op === ReduceOp.sum) {
        let s = 0;
        for (let i = 0; i < n; i++) s += at(i);
        out[o * inner + j] = s;
      } else {
        let best = at(0), arg = 0;
        for (let i = 1; i < n; i++) {
          const v = at(i);
          if (v > best || (Number.isNaN(v) && !Number.isNaN(best))) { best = v; arg = i; }
        }
        out[o * inner + j] = best;
        if (argIdx) argIdx[o * inner + j] = arg;
      }
    }
  }
}

/**
 * dst[dstOffset + i.dstStrides] += src[i] for every multi-index i over shape (src contiguous).
 * Each touched dst element receives its total in double precision, rounded once.
 */
export function sumInto(shape: I32, src: F32, dst: F32, dstOffset: number, dstStrides: I32): void {
  need(shape.length <= 8, 'sumInto', `rank ${shape.length} > 8`);
  need(dstStrides.length === shape.length, 'sumInto', `strides length ${dstStrides.length} != rank ${shape.length}`);
  need(Number.isInteger(dstOffset) && dstOffset >= 0, 'sumInto', `offset ${dstOffset} must be an integer >= 0`);
  let offs = Float64Array.of(dstOffset);
  for (let k = 0; k < shape.length; k++) {
    const n = shape[k], s = dstStrides[k];
    need(n >= 0, 'sumInto', `negative dimension ${n}`);
    const next = new Float64Array(offs.length * n);
    for (let a = 0; a < offs.length; a++) for (let i = 0; i < n; i++) next[a * n + i] = offs[a] + i * s;
    offs = next;
  }
  len('sumInto', 'src', src, offs.length);
  for (const o of offs) need(o >= 0 && o < dst.length, 'sumInto', `strided offset ${o} outside dst of ${dst.length}`);
  const acc = new Map<number, number>();
  for (let i = 0; i < offs.length; i++) acc.set(offs[i], (acc.get(offs[i]) ?? dst[offs[i]]) + src[i]);
  for (const [o, v] of acc) dst[o] = v;
}

/** y = softmax(x) row-wise over [rows, n]: e^{x-max} / sum e^{x-max}; log: x - max - log sum e^{x-max}. */
export function softmax(rows: number, n: number, x: F32, y: F32, log: boolean): void {
  len('softmax', 'x', x, rows * n);
  len('softmax', 'y', y, rows * n);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let m = -Infinity;
    for (let j = 0; j < n; j++) m = Math.max(m, x[o + j]);
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.exp(x[o + j] - m);
    const ls = Math.log(s);
    for (let j = 0; j < n; j++) y[o + j] = log ? x[o + j] - m - ls : Math.exp(x[o + j] - m) / s;
  }
}

/** softmax: gx = y * (gy - sum_j gy_j y_j);  log_softmax: gx = gy - exp(y) * sum_j gy_j. */
export function softmaxBackward(rows: number, n: number, y: F32, gy: F32, gx: F32, log: boolean): void {
  len('softmaxBackward', 'y', y, rows * n);
  len('softmaxBackward', 'gy', gy, rows * n);
  len('softmaxBackward', 'gx', gx, rows * n);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let s = 0;
    for (let j = 0; j < n; j++) s += log ? gy[o + j] : gy[o + j] * y[o + j];
    for (let j = 0; j < n; j++) gx[o + j] = log ? gy[o + j] - Math.exp(y[o + j]) * s : y[o + j] * (gy[o + j] - s);
  }
}
