// Reference fused softmax cross-entropy, forward and backward, in double precision.
import type { F32, I32 } from '../kernels.js';
import { len } from './check.js';

/** Every target must be < V (negative targets mean "ignore this row"). */
function checkTargets(fn: string, rows: number, V: number, targets: I32): void {
  for (let r = 0; r < rows; r++) {
    if (targets[r] >= V) throw new RangeError(`${fn}: target ${targets[r]} at row ${r} out of range [0, ${V})`);
  }
}

/**
 * lse[r] = m + log sum_j exp(logits[r,j] - m) with m the row max;
 * losses[r] = lse[r] - logits[r, t_r], or 0 when t_r < 0 (ignored row).
 */
export function crossEntropy(rows: number, V: number, logits: F32, targets: I32, losses: F32, lse: F32): void {
  const fn = 'crossEntropy';
  len(fn, 'logits', logits, rows * V); len(fn, 'targets', targets, rows);
  len(fn, 'losses', losses, rows); len(fn, 'lse', lse, rows);
  checkTargets(fn, rows, V, targets);
  for (let r = 0; r < rows; r++) {
    const o = r * V;
    let m = -Infinity;
    for (let j = 0; j < V; j++) m = Math.max(m, logits[o + j]);
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp(logits[o + j] - m);
    const l = m + Math.log(s);
    lse[r] = l;
    const t = targets[r];
    losses[r] = t < 0 ? 0 : l - logits[o + t];
  }
}

/** glogits[r,j] = gLoss[r] * (exp(logits[r,j] - lse[r]) - [j == t_r]); ignored rows (t_r < 0) get 0. */
export function crossEntropyBackward(rows: number, V: number, logits: F32, targets: I32, lse: F32, gLoss: F32, glogits: F32): void {
  const fn = 'crossEntropyBackward';
  len(fn, 'logits', logits, rows * V); len(fn, 'targets', targets, rows);
  len(fn, 'lse', lse, rows); len(fn, 'gLoss', gLoss, rows); len(fn, 'glogits', glogits, rows * V);
  checkTargets(fn, rows, V, targets);
  for (let r = 0; r < rows; r++) {
    const o = r * V, t = targets[r], g = gLoss[r];
    for (let j = 0; j < V; j++) {
      glogits[o + j] = t < 0 ? 0 : g * (Math.exp(logits[o + j] - lse[r]) - (j === t ? 1 : 0));
    }
  }
}
