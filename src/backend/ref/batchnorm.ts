// Reference BatchNorm1d over rows (PEER's query BatchNorm); statistics in double precision.
// Contracts in ../kernels/peer.ts.
import type { F32, I32 } from '../kernels.js';
import { need, dim, len } from './check.js';

/** BatchNorm1d forward over the rows of x [T, C]; see Kernels.peerBatchNorm. */
export function peerBatchNorm(T: number, C: number, training: boolean, eps: number, momentum: number,
  x: F32, w: F32, b: F32, runMean: F32, runVar: F32, y: F32, mean: F32, rstd: F32): void {
  const fn = 'peerBatchNorm';
  dim(fn, 'T', T); dim(fn, 'C', C, 1);
  need(eps >= 0 && momentum >= 0 && momentum <= 1, fn, 'eps must be >= 0 and momentum in [0, 1]');
  need(!training || T >= 2, fn, 'training needs more than 1 value per channel');
  len(fn, 'x', x, T * C); len(fn, 'y', y, T * C);
  for (const [n, a] of [['w', w], ['b', b], ['runMean', runMean], ['runVar', runVar], ['mean', mean], ['rstd', rstd]] as const) len(fn, n, a, C);
  for (let c = 0; c < C; c++) {
    if (training) {
      let s = 0, q = 0;
      for (let t = 0; t < T; t++) s += x[t * C + c];
      const m = s / T;
      for (let t = 0; t < T; t++) q += (x[t * C + c] - m) ** 2;
      mean[c] = m;
      rstd[c] = 1 / Math.sqrt(q / T + eps);
      runMean[c] = (1 - momentum) * runMean[c] + momentum * m;
      runVar[c] = (1 - momentum) * runVar[c] + momentum * (q / (T - 1));
    } else {
      mean[c] = runMean[c];
      rstd[c] = 1 / Math.sqrt(runVar[c] + eps);
    }
    for (let t = 0; t < T; t++) y[t * C + c] = (x[t * C + c] - mean[c]) * rstd[c] * w[c] + b[c];
  }
}

/** BatchNorm1d backward; see Kernels.peerBatchNormBackward. */
export function peerBatchNormBackward(T: number, C: number, training: boolean, x: F32, w: F32, mean: F32, rstd: F32,
  gy: F32, gx: F32, gw: F32, gb: F32): void {
  const fn = 'peerBatchNormBackward';
  dim(fn, 'T', T); dim(fn, 'C', C, 1);
  len(fn, 'x', x, T * C); len(fn, 'gy', gy, T * C); len(fn, 'gx', gx, T * C);
  for (const [n, a] of [['w', w], ['mean', mean], ['rstd', rstd], ['gw', gw], ['gb', gb]] as const) len(fn, n, a, C);
  for (let c = 0; c < C; c++) {
    let sw = 0, sb = 0;
    for (let t = 0; t < T; t++) {
      const o = t * C + c;
      sw += gy[o] * (x[o] - mean[c]) * rstd[c];
      sb += gy[o];
    }
    gw[c] = sw;
    gb[c] = sb;
    for (let t = 0; t < T; t++) {
      const o = t * C + c, xh = (x[o] - mean[c]) * rstd[c];
      // training: the batch statistics depend on x too
      gx[o] = training ? w[c] * rstd[c] * (gy[o] - sb / T - (xh * sw) / T) : w[c] * rstd[c] * gy[o];
    }
  }
}
