/** Indexing ops: top-k, last-axis gather, row gather. */
import { backend } from '../../backend/index.js';
import { Tensor, attach } from '../tensor.js';
import { alloc, allocZeroed } from '../pool.js';

/** Top-k over the last axis (descending; ties keep the lower index). Gradient flows to the picked values. */
export function topk(x: Tensor, k: number): { values: Tensor; indices: Tensor } {
  const n = x.shape[x.ndim - 1];
  if (!(Number.isInteger(k) && k >= 0 && k <= n)) throw new Error(`topk: k=${k} must be in [0, ${n}]`);
  const xc = x.contiguous();
  const rows = x.size / n;
  const vals = alloc(rows * k), idx = new Int32Array(rows * k);
  const kern = backend();
  kern.topk(rows, n, k, xc.f32, vals, idx);
  const shape = [...x.shape.slice(0, -1), k];
  const values = attach(new Tensor(vals, shape), [xc], (g) => {
    const gx = allocZeroed(x.size); // scatterAdd accumulates
    kern.scatterAdd(rows, n, k, idx, g, gx);
    return [gx];
  }, 'topk');
  return { values, indices: new Tensor(idx, shape) };
}

/** Last-axis gather: out[..., j] = x[..., idx[..., j]]. */
export function gather(x: Tensor, idx: Tensor): Tensor {
  const n = x.shape[x.ndim - 1], k = idx.shape[idx.ndim - 1];
  const rows = x.size / n;
  if (idx.dtype !== 'i32' || idx.size !== rows * k) throw new Error('gather: idx must be int32 with the leading shape of x');
  const xc = x.contiguous(), ic = idx.contiguous();
  const out = alloc(rows * k);
  const kern = backend();
  kern.gather(rows, n, k, xc.f32, ic.i32, out);
  return attach(new Tensor(out, [...x.shape.slice(0, -1), k]), [xc], (g) => {
    const gx = allocZeroed(x.size); // scatterAdd accumulates
    kern.scatterAdd(rows, n, k, ic.i32, g, gx);
    return [gx];
  }, 'gather');
}

/** Row gather along axis 0: out[i, ...] = x[idx[i], ...]. */
export function indexSelect(x: Tensor, idx: Tensor): Tensor {
  if (idx.dtype !== 'i32' || idx.ndim !== 1) throw new Error('indexSelect: idx must be a 1-d int32 tensor');
  const xc = x.contiguous(), ic = idx.contiguous();
  const d = x.size / x.shape[0], n = idx.size;
  const out = alloc(n * d);
  const kern = backend();
  kern.indexSelect(n, d, xc.f32, ic.i32, out);
  return attach(new Tensor(out, [n, ...x.shape.slice(1)]), [xc], (g) => {
    const gx = allocZeroed(x.size); // indexAdd accumulates
    kern.indexAdd(n, d, ic.i32, g, gx);
    return [gx];
  }, 'indexSelect');
}
