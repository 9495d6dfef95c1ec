// Reference indexing kernels: row gather/scatter, last-axis gather/scatter, top-k, counting sort and
// the weighted embedding bag. Index checks throw RangeError like the native side.
import type { F32, I32 } from '../kernels.js';
import { ranksBefore } from './math.js';

function checkId(fn: string, id: number, hi: number): void {
  if (!(id >= 0 && id < hi)) throw new RangeError(`${fn}: index ${id} out of range [0, ${hi})`);
}

/** out[i, :] = table[ids[i], :] for i < n (table [rows, d], rows = table.length / d). */
export function indexSelect(n: number, d: number, table: F32, ids: I32, out: F32): void {
  const rows = d > 0 ? Math.floor(table.length / d) : 0;
  for (let i = 0; i < n; i++) {
    if (d > 0) checkId('indexSelect', ids[i], rows);
    for (let j = 0; j < d; j++) out[i * d + j] = table[ids[i] * d + j];
  }
}

/** dst[ids[i], :] += src[i, :] for i < n (accumulates; repeated ids add up). */
export function indexAdd(n: number, d: number, ids: I32, src: F32, dst: F32): void {
  const rows = d > 0 ? Math.floor(dst.length / d) : 0;
  for (let i = 0; i < n; i++) {
    if (d > 0) checkId('indexAdd', ids[i], rows);
    for (let j = 0; j < d; j++) dst[ids[i] * d + j] += src[i * d + j];
  }
}

/** out[r, j] = x[r, idx[r, j]] for x [rows, n], idx/out [rows, k]. */
export function gather(rows: number, n: number, k: number, x: F32, idx: I32, out: F32): void {
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < k; j++) {
      const c = idx[r * k + j];
      checkId('gather', c, n);
      out[r * k + j] = x[r * n + c];
    }
  }
}

/** dst[r, idx[r, j]] += src[r, j] for dst [rows, n], idx/src [rows, k] (accumulates). */
export function scatterAdd(rows: number, n: number, k: number, idx: I32, src: F32, dst: F32): void {
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < k; j++) {
      const c = idx[r * k + j];
      checkId('scatterAdd', c, n);
      dst[r * n + c] += src[r * k + j];
    }
  }
}

/**
 * Top-k of each row of x [rows, n]: vals/idx [rows, k] hold the k first elements of the row sorted
 * by value descending (NaN above every number), equal values by ascending index.
 */
export function topk(rows: number, n: number, k: number, x: F32, vals: F32, idx: I32): void {
  if (k > n) throw new RangeError(`topk: k (${k}) > n (${n})`);
  const order = new Array<number>(n);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < n; i++) order[i] = i;
    const row = x.subarray(r * n, r * n + n);
    order.sort((i, j) => (ranksBefore(row[i], i, row[j], j) ? -1 : ranksBefore(row[j], j, row[i], i) ? 1 : 0));
    for (let j = 0; j < k; j++) {
      idx[r * k + j] = order[j];
      vals[r * k + j] = row[order[j]];
    }
  }
}

/**
 * Stable counting sort of keys [n] in [0, numKeys): counts[key] = occurrences, and order lists the
 * positions i grouped by key ascending, positions ascending within each key.
 */
export function argsortInt(n: number, keys: I32, numKeys: number, order: I32, counts: I32): void {
  for (let c = 0; c < numKeys; c++) counts[c] = 0;
  for (let i = 0; i < n; i++) {
    checkId('argsortInt', keys[i], numKeys);
    counts[keys[i]]++;
  }
  const next = new Int32Array(numKeys);
  for (let c = 1; c < numKeys; c++) next[c] = next[c - 1] + counts[c - 1];
  for (let i = 0; i < n; i++) order[next[keys[i]]++] = i;
}

/** out[b, :] = sum_{j < per} weights[b*per+j] * table[ids[b*per+j], :] for b < bags. */
export function embeddingBag(bags: number, per: number, d: number, table: F32, ids: I32, weights: F32, out: F32): void {
  const rows = d > 0 ? Math.floor(table.length / d) : 0;
  const acc = new Float64Array(d);
  for (let b = 0; b < bags; b++) {
    acc.fill(0);
    for (let j = 0; j < per; j++) {
      const id = ids[b * per + j], w = weights[b * per + j];
      if (d > 0) checkId('embeddingBag', id, rows);
      for (let c = 0; c < d; c++) acc[c] += w * table[id * d + c];
    }
    for (let c = 0; c < d; c++) out[b * d + c] = acc[c];
  }
}

/**
 * Backward of embeddingBag():
 *   gweights[b*per+j] = gout[b, :] . table[ids[b*per+j], :]            (written)
 *   gtable[ids[b*per+j], :] += weights[b*per+j] * gout[b, :]          (accumulates; skipped if null)
 */
export function embeddingBagBackward(bags: number, per: number, d: number, table: F32, ids: I32, weights: F32,
  gout: F32, gweights: F32, gtable: F32 | null): void {
  const rows = d > 0 ? Math.floor(table.length / d) : 0;
  for (let b = 0; b < bags; b++) {
    for (let j = 0; j < per; j++) {
      const e = b * per + j, id = ids[e];
      if (d > 0) checkId('embeddingBagBackward', id, rows);
      let dot = 0;
      for (let c = 0; c < d; c++) dot += gout[b * d + c] * table[id * d + c];
      gweights[e] = dot;
      if (gtable) for (let c = 0; c < d; c++) gtable[id * d + c] += weights[e] * gout[b * d + c];
    }
  }
}
