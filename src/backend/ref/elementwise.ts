// Reference layout and elementwise kernels: strided copy, broadcasting binary ops, unary ops and
// their derivatives, axpy/fill/sumSquares, masked fill and counter-based dropout.
// Values are computed in double precision and rounded once when stored (Float32Array assignment),
// so this file is the accuracy oracle for the native kernels. Scalars (s, alpha, value) are
// rounded to float32 first, as the native side does. Bad sizes throw RangeError like the native side.
import type { F32, I32, U8 } from '../kernels.js';
import { BinaryOp, UnaryOp } from '../kernels.js';
import { geluErf, geluErfGrad, hash32 } from './math.js';
import { need } from './check.js';

/**
 * Offsets offset + sum_k i_k * strides[k] for every multi-index i over shape, in row-major order;
 * checks rank <= 8, integer dims >= 0 and that every offset lies in [0, len).
 */
function stridedOffsets(fn: string, shape: I32, offset: number, strides: I32, len: number): Float64Array {
  need(shape.length <= 8, fn, `rank ${shape.length} > 8`);
  need(strides.length === shape.length, fn, `strides length ${strides.length} != rank ${shape.length}`);
  need(Number.isInteger(offset) && offset >= 0, fn, `offset ${offset} must be an integer >= 0`);
  let offs = Float64Array.of(offset);
  for (let k = 0; k < shape.length; k++) {
    const n = shape[k], s = strides[k];
    need(n >= 0, fn, `negative dimension ${n}`);
    const next = new Float64Array(offs.length * n);
    for (let a = 0; a < offs.length; a++) for (let i = 0; i < n; i++) next[a * n + i] = offs[a] + i * s;
    offs = next;
  }
  for (const o of offs) need(o >= 0 && o < len, fn, `strided offset ${o} outside array of ${len}`);
  return offs;
}

/** dst[dstOffset + i.dstStrides] = src[srcOffset + i.srcStrides] for every multi-index i over shape. */
export function copyStrided(shape: I32, src: F32, srcOffset: number, srcStrides: I32, dst: F32, dstOffset: number, dstStrides: I32): void {
  const so = stridedOffsets('copyStrided', shape, srcOffset, srcStrides, src.length);
  const d = stridedOffsets('copyStrided', shape, dstOffset, dstStrides, dst.length);
  for (let i = 0; i < so.length; i++) dst[d[i]] = src[so[i]];
}

/** a OP b for one BinaryOp code; max/min propagate NaN. */
function binaryFn(fn: string, op: number): (a: number, b: number) => number {
  switch (op) {
    case BinaryOp.add: return (a, b) => a + b;
    case BinaryOp.sub: return (a, b) => a - b;
    case BinaryOp.mul: return (a, b) => a * b;
    case BinaryOp.div: return (a, b) => a / b;
    case BinaryOp.max: return (a, b) => Math.max(a, b);
    case BinaryOp.min: return (a, b) => Math.min(a, b);
    default: throw new RangeError(`${fn}: unknown binary op ${op}`);
  }
}

/** out[i] = a[aOffset + i.aStrides] OP b[bOffset + i.bStrides], out contiguous over shape (stride 0 broadcasts). */
export function binary(op: number, shape: I32, a: F32, aOffset: number, aStrides: I32, b: F32, bOffset: number, bStrides: I32, out: F32): void {
  const f = binaryFn('binary', op);
  const ao = stridedOffsets('binary', shape, aOffset, aStrides, a.length);
  const bo = stridedOffsets('binary', shape, bOffset, bStrides, b.length);
  need(out.length >= ao.length, 'binary', `out has ${out.length} elements, needs ${ao.length}`);
  for (let i = 0; i < ao.length; i++) out[i] = f(a[ao[i]], b[bo[i]]);
}

/** out[i] = x[i] OP fround(s) for i < out.length. */
export function binaryScalar(op: number, x: F32, s: number, out: F32): void {
  const f = binaryFn('binaryScalar', op);
  need(x.length >= out.length, 'binaryScalar', `x has ${x.length} elements, needs ${out.length}`);
  const sf = Math.fround(s);
  for (let i = 0; i < out.length; i++) out[i] = f(x[i], sf);
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

/** Logistic sigmoid 1/(1+e^-x), written so neither branch loses relative accuracy. */
function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** f(x) for one UnaryOp code, in double precision. */
function unaryFn(fn: string, op: number): (x: number) => number {
  switch (op) {
    case UnaryOp.neg: return (x) => -x;
    case UnaryOp.exp: return Math.exp;
    case UnaryOp.log: return Math.log;
    case UnaryOp.tanh: return Math.tanh;
    // 0.5x(1+tanh(u)) == x*sigmoid(2u), u = sqrt(2/pi)(x + 0.044715x^3)
    case UnaryOp.gelu_tanh: return (x) => x * sigmoid(2 * SQRT_2_OVER_PI * (x + GELU_A * x * x * x));
    // 0.5x(1+erf(x/sqrt2)) == x*Phi(x)
    case UnaryOp.gelu_erf: return geluErf;
    case UnaryOp.relu: return (x) => (x <= 0 ? 0 : x); // NaN propagates
    case UnaryOp.silu: return (x) => x * sigmoid(x);
    case UnaryOp.sigmoid: return sigmoid;
    case UnaryOp.sqrt: return Math.sqrt;
    case UnaryOp.square: return (x) => x * x;
    default: throw new RangeError(`${fn}: unknown unary op ${op}`);
  }
}

/** out[i] = f(x[i]) for i < out.length. In-place allowed. */
export function unary(op: number, x: F32, out: F32): void {
  const f = unaryFn('unary', op);
  need(x.length >= out.length, 'unary', `x has ${x.length} elements, needs ${out.length}`);
  for (let i = 0; i < out.length; i++) out[i] = f(x[i]);
}

/** Ops whose derivative is taken from y = f(x) rather than from x. */
function usesY(op: number): boolean {
  return op === UnaryOp.exp || op === UnaryOp.tanh || op === UnaryOp.sigmoid || op === UnaryOp.sqrt;
}

/** gx[i] = gy[i] * f'(x[i]) for i < gx.length; exp, tanh, sigmoid and sqrt read y = f(x), the others x. */
export function unaryBackward(op: number, x: F32, y: F32, gy: F32, gx: F32): void {
  const n = gx.length;
  unaryFn('unaryBackward', op); // validates op
  need(gy.length >= n, 'unaryBackward', `gy has ${gy.length} elements, needs ${n}`);
  if (usesY(op)) need(y.length >= n, 'unaryBackward', `y has ${y.length} elements, needs ${n}`);
  else if (op !== UnaryOp.neg) need(x.length >= n, 'unaryBackward', `x has ${x.length} elements, needs ${n}`);
  let d: (i: number) => number;
  switch (op) {
    case UnaryOp.neg: d = () => -1; break;
    case UnaryOp.exp: d = (i) => y[i]; break; // e^x = y
    case UnaryOp.log: d = (i) => 1 / x[i];
    break;
    case UnaryOp.tanh: d = (i) => 1 - y[i] * y[i]; break;
    case UnaryOp.gelu_tanh: d = (i) => {
      // s = sigmoid(2u): d/dx x*s = s + 2x s(1-s) du/dx, du/dx = sqrt(2/pi)(1 + 3*0.044715 x^2)
      const v = x[i], u2 = 2 * SQRT_2_OVER_PI * (v + GELU_A * v * v * v);
      const s = sigmoid(u2), sc = sigmoid(-u2);
      return s + 2 * v * s * sc * SQRT_2_OVER_PI * (1 + 3 * GELU_A * v * v);
    }; break;
    case UnaryOp.gelu_erf: d = (i) => geluErfGrad(x[i]); break;
    case UnaryOp.relu: d = (i) => (x[i] > 0 ? 1 : 0); break;
    case UnaryOp.silu: d = (i) => {
      const v = x[i], s = sigmoid(v); // s + x s (1-s)
      return s + v * s * sigmoid(-v);
    }; break;
    case UnaryOp.sigmoid: d = (i) => y[i] * (1 - y[i]); break;
    case UnaryOp.sqrt: d = (i) => 1 / (2 * y[i]); break;
    default: d = (i) => 2 * x[i]; break; // square
  }
  for (let i = 0; i < n; i++) gx[i] = gy[i] * d(i);
}

/** y[i] += fround(alpha) * x[i] for i < y.length. */
export function axpy(alpha: number, x: F32, y: F32): void {
  need(x.length >= y.length, 'axpy', `x has ${x.length} elements, needs ${y.length}`);
  const a = Math.fround(alpha);
  for (let i = 0; i < y.length; i++) y[i] = y[i] + a * x[i];
}

/** x[i] = value for all i. */
export function fill(x: F32, value: number): void {
  x.fill(value);
}

/** sum_i x[i]^2 in double precision. */
export function sumSquares(x: F32): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

/** out[i] = mask[i] ? value : x[i] for i < out.length. In-place allowed. */
export function maskedFill(x: F32, mask: U8, value: number, out: F32): void {
  const n = out.length;
  need(x.length >= n, 'maskedFill', `x has ${x.length} elements, needs ${n}`);
  need(mask.length >= n, 'maskedFill', `mask has ${mask.length} elements, needs ${n}`);
  const v = Math.fround(value);
  for (let i = 0; i < n; i++) out[i] = mask[i] ? v : x[i];
}

/**
 * Inverted dropout over i < out.length: u_i = hash32(hash32(i) ^ seed) / 2^32, mask[i] = u_i >= p,
 * out[i] = mask[i] ? x[i] * fround(1/(1-p)) : 0 (p = 1 drops everything).
 */
export function dropout(p: number, seed: number, x: F32, out: F32, mask: U8): void {
  const n = out.length;
  need(p >= 0 && p <= 1, 'dropout', `p must be in [0, 1], got ${p}`);
  need(Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff, 'dropout', `seed must be a uint32, got ${seed}`);
  need(x.length >= n, 'dropout', `x has ${x.length} elements, needs ${n}`);
  need(mask.length >= n, 'dropout', `mask has ${mask.length} elements, needs ${n}`);
  const scale = p < 1 ? Math.fround(1 / (1 - p)) : 0;
  for (let i = 0; i < n; i++) {
    const u = hash32(hash32(i) ^ seed) / 4294967296;
    const keep = u >= p ? 1 : 0;
    mask[i] = keep;
    out[i] = keep ? x[i] * scale : 0;
  }
}
