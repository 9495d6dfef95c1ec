// Reference LayerNorm forward and backward, in double precision (rounded once when stored).
import type { F32 } from '../kernels.js';
import { len } from './check.js';

/**
 * Over the last axis of [rows, d]: mean = sum x / d, var = sum (x-mean)^2 / d, rstd = 1/sqrt(var+eps),
 * y = (x - mean) * rstd * w + b; mean and rstd ([rows]) are saved for backward.
 */
export function layerNorm(rows: number, d: number, eps: number, x: F32, w: F32, b: F32, y: F32, mean: F32, rstd: F32): void {
  const fn = 'layerNorm';
  len(fn, 'x', x, rows * d); len(fn, 'y', y, rows * d);
  len(fn, 'w', w, d); len(fn, 'b', b, d);
  len(fn, 'mean', mean, rows); len(fn, 'rstd', rstd, rows);
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    let s = 0;
    for (let j = 0; j < d; j++) s += x[o + j];
    const mu = s / d;
    let v = 0;
    for (let j = 0; j < d; j++) v += (x[o + j] - mu) ** 2;
    const rs = 1 / Math.sqrt(v / d + eps);
    for (let j = 0; j < d; j++) y[o + j] = (x[o + j] - mu) * rs * w[j] + b[j];
    mean[r] = mu;
    rstd[r] = rs;
  }
}

/**
 * xhat = (x - mean) * rstd, g = gy * w:
 *   gx = rstd * (g - mean_j(g) - xhat * mean_j(g * xhat))   (written)
 *   gw += sum_r gy * xhat,  gb += sum_r gy                   (accumulated, in double, rounded once)
 */
export function layerNormBackward(rows: number, d: number, x: F32, w: F32, mean: F32, rstd: F32, gy: F32, gx: F32, gw: F32, gb: F32): void {
  const fn = 'layerNormBackward';
  len(fn, 'x', x, rows * d); len(fn, 'gy', gy, rows * d); len(fn, 'gx', gx, rows * d);
  len(fn, 'w', w, d); len(fn, 'gw', gw, d); len(fn, 'gb', gb, d);
  len(fn, 'mean', mean, rows); len(fn, 'rstd', rstd, rows);
  const sw = new Float64Array(d), sb = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    const o = r * d, mu = mean[r], rs = rstd[r];
    let mg = 0, mgx = 0;
    for (let j = 0; j < d; j++) {
      const xh = (x[o + j] - mu) * rs, g = gy[o + j] * w[j];
      mg += g;
      mgx += g * xh;
      sw[j] += gy[o + j] * xh;
      sb[j] += gy[o + j];
    }
    mg /= d;
    mgx /= d;
    for (let j = 0; j < d; j++) {
      const xh = (x[o + j] - mu) * rs, g = gy[o + j] * w[j];
      gx[o + j] = rs * (g - mg - xh * mgx);
    }
  }
  for (let j = 0; j < d; j++) {
    gw[j] += sw[j];
    gb[j] += sb[j];
  }
}
