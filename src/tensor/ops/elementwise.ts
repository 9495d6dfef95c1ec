/**
 * Elementwise ops with NumPy broadcasting (add, mul), and the unary activations the models use.
 * Broadcast gradients are summed back to each input's shape (sumInto with stride 0 on broadcast axes).
 */
import { backend, BinaryOp, UnaryOp, type UnaryOpName } from '../../backend/index.js';
import { Tensor, attach, numel, contiguousStrides } from '../tensor.js';
import { alloc, allocZeroed, release } from '../pool.js';

function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1, db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** t's strides aligned to outShape, 0 on axes where t is broadcast. */
function alignedStrides(t: { shape: readonly number[]; strides: readonly number[] }, outShape: readonly number[]): Int32Array {
  const n = outShape.length, off = n - t.shape.length;
  const st = new Int32Array(n);
  for (let i = off; i < n; i++) st[i] = t.shape[i - off] === 1 ? 0 : t.strides[i - off];
  return st;
}

/** Sums a gradient of shape outShape down to `shape` (the inverse of broadcasting). */
function reduceToShape(g: Float32Array, outShape: readonly number[], shape: readonly number[]): Float32Array {
  if (numel(outShape) === numel(shape) && outShape.length >= shape.length) return g;
  const dst = allocZeroed(numel(shape)); // sumInto accumulates
  const st = alignedStrides({ shape, strides: contiguousStrides(shape) }, outShape);
  backend().sumInto(Int32Array.from(outShape), g, dst, 0, st);
  return dst;
}

function needF32(t: Tensor, op: string): void {
  if (t.dtype !== 'f32') throw new Error(`${op}: expected a float32 tensor, got ${t.dtype}`);
}

function rawBinary(op: number, a: Tensor, b: Tensor, shape: readonly number[]): Float32Array {
  const out = alloc(numel(shape));
  backend().binary(op, Int32Array.from(shape), a.data as Float32Array, a.offset, alignedStrides(a, shape),
    b.data as Float32Array, b.offset, alignedStrides(b, shape), out);
  return out;
}

/** reduceToShape of a temporary: the temporary goes back to the pool once it has been summed. */
function reduced(tmp: Float32Array, outShape: readonly number[], shape: readonly number[]): Float32Array {
  const r = reduceToShape(tmp, outShape, shape);
  if (r !== tmp) release(tmp);
  return r;
}

function gradTensor(g: Float32Array, shape: readonly number[]): Tensor {
  return new Tensor(g, shape);
}

type BinName = 'add' | 'mul';

function binary(name: BinName, a: Tensor | number, b: Tensor | number): Tensor {
  const ta = typeof a === 'number' ? new Tensor(Float32Array.of(a), []) : a;
  const tb = typeof b === 'number' ? new Tensor(Float32Array.of(b), []) : b;
  needF32(ta, name);
  needF32(tb, name);
  const shape = broadcastShapes(ta.shape, tb.shape);
  const out = new Tensor(rawBinary(BinaryOp[name], ta, tb, shape), shape);
  return attach(out, [ta, tb], (g) => {
    const gt = gradTensor(g, shape);
    let ga: Float32Array | null = null, gb: Float32Array | null = null;
    switch (name) {
      case 'add':
        ga = ta.requiresGrad ? reduceToShape(g, shape, ta.shape) : null;
        gb = tb.requiresGrad ? reduceToShape(g, shape, tb.shape) : null; // may be g for both: the engine shares it
        break;
      case 'mul':
        if (ta.requiresGrad) ga = reduced(rawBinary(BinaryOp.mul, gt, tb, shape), shape, ta.shape);
        if (tb.requiresGrad) gb = reduced(rawBinary(BinaryOp.mul, gt, ta, shape), shape, tb.shape);
        break;
    }
    return [ga, gb];
  }, name);
}

/** a + b (broadcast). */
export const add = (a: Tensor | number, b: Tensor | number): Tensor => binary('add', a, b);
/** a * b (broadcast). */
export const mul = (a: Tensor | number, b: Tensor | number): Tensor => binary('mul', a, b);

function unary(name: UnaryOpName, x: Tensor): Tensor {
  needF32(x, name);
  const xc = x.contiguous();
  const out = alloc(xc.size);
  backend().unary(UnaryOp[name], xc.f32, out);
  const y = new Tensor(out, x.shape);
  return attach(y, [xc], (g) => {
    const gx = alloc(xc.size);
    backend().unaryBackward(UnaryOp[name], xc.f32, out, g, gx);
    return [gx];
  }, name);
}

/** GELU, exact: 0.5x(1 + erf(x/sqrt(2))) (PyTorch's default F.gelu). */
export const gelu = (x: Tensor): Tensor => unary('gelu_erf', x);
/** 1 / (1 + e^-x) */
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x);
