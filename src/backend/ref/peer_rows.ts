// Reference row-sparse gradient kernels: coalescing expert ids and summing their gradient rows.
// Contracts in ../kernels/peer.ts.
import type { F32, I32 } from '../kernels.js';
import { need, dim, len } from './check.js';

/**
 * Stable counting sort of n ids in [0, N); returns U, the number of distinct ids. uniq[0..U) gets
 * them ascending; positions of uniq[i] are order[offsets[i] .. offsets[i+1]) ascending.
 */
export function peerCoalesce(n: number, N: number, ids: I32, uniq: I32, offsets: I32, order: I32): number {
  const fn = 'peerCoalesce';
  dim(fn, 'n', n); dim(fn, 'N', N, 1);
  len(fn, 'ids', ids, n); len(fn, 'uniq', uniq, n); len(fn, 'offsets', offsets, n + 1); len(fn, 'order', order, n);
  const count = new Int32Array(N);
  for (let i = 0; i < n; i++) {
    need(ids[i] >= 0 && ids[i] < N, fn, `id ${ids[i]} out of range [0, ${N})`);
    count[ids[i]]++;
  }
  let U = 0, off = 0;
  for (let id = 0; id < N; id++) {
    if (!count[id]) continue;
    uniq[U] = id;
    offsets[U++] = off;
    const c = count[id];
    count[id] = off; // becomes the write cursor
    off += c;
  }
  offsets[U] = off;
  for (let i = 0; i < n; i++) order[count[ids[i]]++] = i;
  return U;
}

/**
 * out[i, :] = sum_{p in [offsets[i], offsets[i+1])} coef[order[p]] * src[floor(order[p] / per), :]
 * for i < U (coef null means 1). Written, not accumulated.
 */
export function peerRowGrad(U: number, d: number, per: number, offsets: I32, order: I32, coef: F32 | null,
  src: F32, out: F32): void {
  const fn = 'peerRowGrad';
  dim(fn, 'U', U); dim(fn, 'd', d); dim(fn, 'per', per, 1);
  len(fn, 'offsets', offsets, U + 1); len(fn, 'out', out, U * d);
  const rows = d > 0 ? Math.floor(src.length / d) : 0;
  const acc = new Float64Array(d);
  for (let i = 0; i < U; i++) {
    const p0 = offsets[i], p1 = offsets[i + 1];
    need(p0 >= 0 && p0 <= p1 && p1 <= order.length, fn, `offsets[${i}..${i + 1}] = ${p0}..${p1} invalid`);
    acc.fill(0);
    for (let p = p0; p < p1; p++) {
      const pos = order[p];
      need(pos >= 0 && Math.floor(pos / per) < rows && (!coef || pos < coef.length), fn, `order entry ${pos} out of range`);
      const w = coef ? coef[pos] : 1, r = Math.floor(pos / per) * d;
      for (let c = 0; c < d; c++) acc[c] += w * src[r + c];
    }
    for (let c = 0; c < d; c++) out[i * d + c] = acc[c];
  }
}
