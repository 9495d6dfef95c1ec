/** Reductions over one axis, and softmax / log-softmax over the last axis. */
import { backend, ReduceOp } from '../../backend/index.js';
import { Tensor, attach, numel } from '../tensor.js';
import { alloc } from '../pool.js';

function splitAt(shape: readonly number[], axis: number): [number, number, number] {
  return [numel(shape.slice(0, axis)), shape[axis], numel(shape.slice(axis + 1))];
}

function normAxis(x: Tensor, axis: number): number {
  const a = axis < 0 ? axis + x.ndim : axis;
  if (!(a >= 0 && a < x.ndim)) throw new Error(`axis ${axis} out of range for [${x.shape.join(', ')}]`);
  return a;
}

/** Broadcasts g ([outer, inner]) back over the reduced axis: gx[o, i, j] = g[o, j] * s. */
function spread(g: Float32Array, outer: number, n: number, inner: number, s: number): Float32Array {
  const gx = alloc(outer * n * inner); // every element written
  backend().copyStrided(Int32Array.of(outer, n, inner), g, 0, Int32Array.of(inner, 0, 1), gx, 0, Int32Array.of(n * inner, inner, 1));
  if (s !== 1) backend().binaryScalar(2 /* mul */, gx, s, gx);
  return gx;
}

function outShape(x: Tensor, axis: number, keepdim: boolean): number[] {
  const s = x.shape.slice();
  if (keepdim) s[axis] = 1;
  else s.splice(axis, 1);
  return s;
}

/** sum_i x[..., i, ...] over `axis`. */
export function sum(x: Tensor, axis: number, keepdim = false): Tensor {
  const a = normAxis(x, axis);
  const xc = x.contiguous();
  const [outer, n, inner] = splitAt(x.shape, a);
  const out = alloc(outer * inner);
  backend().reduce(ReduceOp.sum, outer, n, inner, xc.f32, out, null);
  return attach(new Tensor(out, outShape(x, a, keepdim)), [xc], (g) => [spread(g, outer, n, inner, 1)], 'sum');
}

/** mean over `axis`. */
export function mean(x: Tensor, axis: number, keepdim = false): Tensor {
  const a = normAxis(x, axis);
  const xc = x.contiguous();
  const [outer, n, inner] = splitAt(x.shape, a);
  const out = alloc(outer * inner);
  backend().reduce(ReduceOp.sum, outer, n, inner, xc.f32, out, null);
  backend().binaryScalar(2, out, 1 / n, out);
  return attach(new Tensor(out, outShape(x, a, keepdim)), [xc], (g) => [spread(g, outer, n, inner, 1 / n)], 'mean');
}

/** Sum of all elements, as a 0-d tensor. */
export function sumAll(x: Tensor): Tensor {
  return sum(x.reshape(-1), 0);
}

/** Mean of all elements, as a 0-d tensor. */
export function meanAll(x: Tensor): Tensor {
  return mean(x.reshape(-1), 0);
}

function softmaxImpl(x: Tensor, log: boolean): Tensor {
  const xc = x.contiguous();
  const n = x.shape[x.ndim - 1];
  const rows = x.size / n;
  const y = alloc(x.size);
  backend().softmax(rows, n, xc.f32, y, log);
  return attach(new Tensor(y, x.shape), [xc], (g) => {
    const gx = alloc(x.size);
    backend().softmaxBackward(rows, n, y, g, gx, log);
    return [gx];
  }, log ? 'logSoftmax' : 'softmax');
}

/** softmax over the last axis: y_i = e^{x_i} / sum_j e^{x_j}. */
export const softmax = (x: Tensor): Tensor => softmaxImpl(x, false);
/** log-softmax over the last axis: y_i = x_i - log sum_j e^{x_j}. */
export const logSoftmax = (x: Tensor): Tensor => softmaxImpl(x, true);
