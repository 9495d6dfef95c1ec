/**
 * Elementwise ops with NumPy broadcasting, and the unary activations.
 * Broadcast gradients are summed back to each input's shape (sumInto with stride 0 on broadcast axes).
 */
import { backend, BinaryOp, UnaryOp, type UnaryOpName } from '../../backend/index.js';
import { Tensor, attach, numel, contiguousStrides } from '../tensor.js';

export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
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
export function reduceToShape(g: Float32Array, outShape: readonly number[], shape: readonly number[]): Float32Array {
  if (numel(outShape) === numel(shape) && outShape.length >= shape.length) return g;
  const dst = new Float32Array(numel(shape));
  const st = alignedStrides({ shape, strides: contiguousStrides(shape) }, outShape);
  backend().sumInto(Int32Array.from(outShape), g, dst, 0, st);
  return dst;
}

function needF32(t: Tensor, op: string): void {
  if (t.dtype !== 'f32') throw new Error(`${op}: expected a float32 tensor, got ${t.dtype}`);
}

function rawBinary(op: number, a: Tensor, b: Tensor, shape: readonly number[]): Float32Array {
  const out = new Float32Array(numel(shape));
  backend().binary(op, Int32Array.from(shape), a.data as Float32Array, a.offset, alignedStrides(a, shape),
    b.data as Float32Array, b.offset, alignedStrides(b, shape), out);
  return out;
}

function gradTensor(g: Float32Array, shape: readonly number[]): Tensor {
  return new Tensor(g, shape);
}

type BinName = 'add' | 'sub' | 'mul' | 'div';

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
        gb = tb.requiresGrad ? reduceToShape(ga === g ? g.slice() : g, shape, tb.shape) : null;
        break;
      case 'sub':
        ga = ta.requiresGrad ? reduceToShape(g, shape, ta.shape) : null;
        if (tb.requiresGrad) {
          gb = reduceToShape(g === ga ? g.slice() : g, shape, tb.shape);
          if (gb === g) gb = g.slice();
          backend().binaryScalar(BinaryOp.mul, gb, -1, gb);
        }
        break;
      case 'mul':
        if (ta.requiresGrad) ga = reduceToShape(rawBinary(BinaryOp.mul, gt, tb, shape), shape, ta.shape);
        if (tb.requiresGrad) gb = reduceToShape(rawBinary(BinaryOp.mul, gt, ta, shape), shape, tb.shape);
        break;
      case 'div': {
        if (ta.requiresGrad) ga = reduceToShape(rawBinary(BinaryOp.div, gt, tb, shape), shape, ta.shape);
        if (tb.requiresGrad) {
          // d(a/b)/db = -a/b^2 = -out/b
          const q = new Tensor(rawBinary(BinaryOp.div, out.detach(), tb, shape), shape);
          const t = rawBinary(BinaryOp.mul, q, gt, shape);
          backend().binaryScalar(BinaryOp.mul, t, -1, t);
          gb = reduceToShape(t, shape, tb.shape);
        }
        break;
      }
    }
    return [ga, gb];
  }, name);
}

/** a + b (broadcast). */
export const add = (a: Tensor | number, b: Tensor | number): Tensor => binary('add', a, b);
/** a - b (broadcast). */
export const sub = (a: Tensor | number, b: Tensor | number): Tensor => binary('sub', a, b);
/** a * b (broadcast). */
export const mul = (a: Tensor | number, b: Tensor | number): Tensor => binary('mul', a, b);
/** a / b (broadcast). */
export const div = (a: Tensor | number, b: Tensor | number): Tensor => binary('div', a, b);

/** x * s for a scalar s. */
export function scale(x: Tensor, s: number): Tensor {
  needF32(x, 'scale');
  const xc = x.contiguous();
  const out = new Float32Array(xc.size);
  backend().binaryScalar(BinaryOp.mul, xc.f32, s, out);
  return attach(new Tensor(out, x.shape), [xc], (g) => {
    backend().binaryScalar(BinaryOp.mul, g, s, g);
    return [g];
  }, 'scale');
}

/** x + s for a scalar s. */
export function addScalar(x: Tensor, s: number): Tensor {
  needF32(x, 'addScalar');
  const xc = x.contiguous();
  const out = new Float32Array(xc.size);
  backend().binaryScalar(BinaryOp.add, xc.f32, s, out);
  return attach(new Tensor(out, x.shape), [xc], (g) => [g], 'addScalar');
}

function unary(name: UnaryOpName, x: Tensor): Tensor {
  needF32(x, name);
  const xc = x.contiguous();
  const out = new Float32Array(xc.size);
  backend().unary(UnaryOp[name], xc.f32, out);
  const y = new Tensor(out, x.shape);
  return attach(y, [xc], (g) => {
    const gx = new Float32Array(xc.size);
    backend().unaryBackward(UnaryOp[name], xc.f32, out, g, gx);
    return [gx];
  }, name);
}

/** -x */
export const neg = (x: Tensor): Tensor => unary('neg', x);
/** e^x */
export const exp = (x: Tensor): Tensor => unary('exp', x);
/** ln x */
export const log = (x: Tensor): Tensor => unary('log', x);
/** tanh x */
export const tanh = (x: Tensor): Tensor => unary('tanh', x);
/** GELU, tanh approximation: 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))). */
export const geluTanh = (x: Tensor): Tensor => unary('gelu_tanh', x);
/** GELU, exact: 0.5x(1 + erf(x/sqrt(2))) (PyTorch's default F.gelu). */
export const gelu = (x: Tensor): Tensor => unary('gelu_erf', x);
/** max(x, 0) */
export const relu = (x: Tensor): Tensor => unary('relu', x);
/** x * sigmoid(x) */
export const silu = (x: Tensor): Tensor => unary('silu', x);
/** 1 / (1 + e^-x) */
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x);
/** sqrt x */
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x);
/** x^2 */
export const square = (x: Tensor): Tensor => unary('square', x);
