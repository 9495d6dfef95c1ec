/** Indexing ops: top-k, gathers and scatters, embedding-bag, concat/split, masks, integer argsort. */
import { backend } from '../../backend/index.js';
import { Tensor, attach, contiguousStrides, numel } from '../tensor.js';

/** Top-k over the last axis (descending; ties keep the lower index). Gradient flows to the picked values. */
export function topk(x: Tensor, k: number): { values: Tensor; indices: Tensor } {
  const n = x.shape[x.ndim - 1];
  if (!(Number.isInteger(k) && k >= 0 && k <= n)) throw new Error(`topk: k=${k} must be in [0, ${n}]`);
  const xc = x.contiguous();
  const rows = x.size / n;
  const vals = new Float32Array(rows * k), idx = new Int32Array(rows * k);
  const kern = backend();
  kern.topk(rows, n, k, xc.f32, vals, idx);
  const shape = [...x.shape.slice(0, -1), k];
  const values = attach(new Tensor(vals, shape), [xc], (g) => {
    const gx = new Float32Array(x.size);
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
  const out = new Float32Array(rows * k);
  const kern = backend();
  kern.gather(rows, n, k, xc.f32, ic.i32, out);
  return attach(new Tensor(out, [...x.shape.slice(0, -1), k]), [xc], (g) => {
    const gx = new Float32Array(x.size);
    kern.scatterAdd(rows, n, k, ic.i32, g, gx);
    return [gx];
  }, 'gather');
}

/** Row gather along axis 0: out[i, ...] = x[idx[i], ...]. */
export function indexSelect(x: Tensor, idx: Tensor): Tensor {
  if (idx.dtype !== 'i32' || idx.ndim !== 1) throw new Error('indexSelect: idx must be a 1-d int32 tensor');
  const xc = x.contiguous(), ic = idx.contiguous();
  const d = x.size / x.shape[0], n = idx.size;
  const out = new Float32Array(n * d);
  const kern = backend();
  kern.indexSelect(n, d, xc.f32, ic.i32, out);
  return attach(new Tensor(out, [n, ...x.shape.slice(1)]), [xc], (g) => {
    const gx = new Float32Array(x.size);
    kern.indexAdd(n, d, ic.i32, g, gx);
    return [gx];
  }, 'indexSelect');
}

/** Scatter-add rows into a zero tensor of `rows` rows: out[idx[i], ...] += src[i, ...]. */
export function indexAdd(rows: number, idx: Tensor, src: Tensor): Tensor {
  if (idx.dtype !== 'i32' || idx.ndim !== 1 || idx.size !== src.shape[0]) throw new Error('indexAdd: idx must be 1-d int32 with one entry per row of src');
  const sc = src.contiguous(), ic = idx.contiguous();
  const d = src.size / src.shape[0], n = idx.size;
  const out = new Float32Array(rows * d);
  const kern = backend();
  kern.indexAdd(n, d, ic.i32, sc.f32, out);
  return attach(new Tensor(out, [rows, ...src.shape.slice(1)]), [sc], (g) => {
    const gs = new Float32Array(sc.size);
    kern.indexSelect(n, d, g, ic.i32, gs);
    return [gs];
  }, 'indexAdd');
}

/**
 * Embedding bag with per-sample weights: out[b, :] = sum_j w[b, j] * table[ids[b, j], :].
 * table [N, d], ids and w [bags, per]. Differentiable in table and w.
 */
export function embeddingBag(table: Tensor, ids: Tensor, w: Tensor): Tensor {
  const [, d] = table.shape;
  const [bags, per] = ids.shape;
  if (ids.dtype !== 'i32' || ids.ndim !== 2 || w.size !== ids.size) throw new Error('embeddingBag: ids [bags, per] int32 and w of the same shape expected');
  const ic = ids.contiguous(), wc = w.contiguous();
  const out = new Float32Array(bags * d);
  const kern = backend();
  kern.embeddingBag(bags, per, d, table.f32, ic.i32, wc.f32, out);
  return attach(new Tensor(out, [bags, d]), [table, wc], (g) => {
    const gw = new Float32Array(bags * per);
    const gt = table.requiresGrad ? new Float32Array(table.size) : null;
    kern.embeddingBagBackward(bags, per, d, table.f32, ic.i32, wc.f32, g, gw, gt);
    return [gt, gw];
  }, 'embeddingBag');
}

/** Concatenation along `axis`. */
export function concat(xs: Tensor[], axis: number): Tensor {
  if (!xs.length) throw new Error('concat: no tensors');
  const nd = xs[0].ndim;
  const a = axis < 0 ? axis + nd : axis;
  for (const x of xs) {
    if (x.ndim !== nd || x.shape.some((s, i) => i !== a && s !== xs[0].shape[i])) throw new Error('concat: shapes differ off the concat axis');
  }
  const shape = xs[0].shape.slice();
  shape[a] = xs.reduce((s, x) => s + x.shape[a], 0);
  const out = new Float32Array(numel(shape));
  const ost = contiguousStrides(shape);
  const kern = backend();
  const starts: number[] = [];
  let at = 0;
  for (const x of xs) {
    starts.push(at);
    kern.copyStrided(Int32Array.from(x.shape), x.data as Float32Array, x.offset, Int32Array.from(x.strides), out, at * ost[a], Int32Array.from(ost));
    at += x.shape[a];
  }
  return attach(new Tensor(out, shape), xs, (g) => xs.map((x, i) => {
    if (!x.requiresGrad) return null;
    const gx = new Float32Array(x.size);
    kern.copyStrided(Int32Array.from(x.shape), g, starts[i] * ost[a], Int32Array.from(ost), gx, 0, Int32Array.from(contiguousStrides(x.shape)));
    return gx;
  }), 'concat');
}

/** Splits along `axis` into pieces of the given sizes (contiguous copies). */
export function split(x: Tensor, sizes: number[], axis: number): Tensor[] {
  const a = axis < 0 ? axis + x.ndim : axis;
  if (sizes.reduce((s, v) => s + v, 0) !== x.shape[a]) throw new Error(`split: sizes ${sizes} do not sum to ${x.shape[a]}`);
  const out: Tensor[] = [];
  let at = 0;
  for (const s of sizes) {
    const shape = x.shape.slice();
    shape[a] = s;
    const view = new Tensor(x.data, shape, { strides: x.strides, offset: x.offset + at * x.strides[a] });
    const start = at;
    const piece = attach(view, [x], (g) => {
      const gx = new Float32Array(x.size);
      const xs = contiguousStrides(x.shape);
      backend().copyStrided(Int32Array.from(shape), g, 0, Int32Array.from(contiguousStrides(shape)), gx, start * xs[a], Int32Array.from(xs));
      return [gx];
    }, 'split');
    out.push(piece.contiguous());
    at += s;
  }
  return out;
}

/** out = mask ? value : x (mask: Uint8Array of x's size). Gradient is zero where masked. */
export function maskedFill(x: Tensor, mask: Uint8Array, value: number): Tensor {
  if (mask.length !== x.size) throw new Error(`maskedFill: mask has ${mask.length} elements, x has ${x.size}`);
  const xc = x.contiguous();
  const out = new Float32Array(x.size);
  const kern = backend();
  kern.maskedFill(xc.f32, mask, value, out);
  return attach(new Tensor(out, x.shape), [xc], (g) => {
    kern.maskedFill(g, mask, 0, g);
    return [g];
  }, 'maskedFill');
}

/** Stable counting sort of integer keys in [0, numKeys): positions grouped by key, and per-key counts. */
export function argsortInt(keys: Int32Array, numKeys: number): { order: Int32Array; counts: Int32Array } {
  const order = new Int32Array(keys.length), counts = new Int32Array(numKeys);
  backend().argsortInt(keys.length, keys, numKeys, order, counts);
  return { order, counts };
}
