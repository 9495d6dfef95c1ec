/** The dense GELU feed-forward as one op, with GELU fused into the GEMMs on both passes. */
import { backend, ReduceOp, UnaryOp } from '../../backend/index.js';
import { Tensor, attach } from '../tensor.js';
import { matmulPrecision } from '../precision.js';
import { alloc, release, scratch } from '../pool.js';
import { affine, foldedBias, centerOf, weightGradient } from './bf16_center.js';

/**
 * y = gelu(x W1^T + b1) W2^T + b2, GELU the exact erf form 0.5h(1 + erf(h/sqrt2)) (torch's F.gelu).
 * x: [..., d], w1: [hidden, d], b1: [hidden] or null, w2: [out, hidden], b2: [out] or null.
 * Equal to linear(gelu(linear(x, w1, b1)), w2, b2), in fewer passes over the [T, hidden] activations:
 * - forward: fc1's GEMM adds b1 and applies GELU to each output tile while it is in cache
 *   (gemmUnary), writing the pre-activation h and a = gelu(h) in one go. Unfused, GELU re-reads h.
 * - backward: the GEMM that forms d(a) = g W2 multiplies each tile by gelu'(h) in its epilogue, so
 *   d(h) comes out directly. Unfused, a separate pass reads d(a) and h and writes d(h).
 * Trade-off: h is kept (not recomputed) for gelu'(h), because recomputing it costs fc1's whole GEMM;
 * a is kept for fc2's weight gradient. That is the same 2 x T x hidden floats the unfused pair holds.
 * Under matmulPrecision() 'bf16' all five GEMMs round their operands to bf16 and accumulate in fp32;
 * the bias, GELU and its derivative stay fp32. The activation operands x and a are centred on their
 * means over rows in the forward and weight-gradient GEMMs (bf16_center.ts).
 */
export function mlpGelu(x: Tensor, w1: Tensor, b1: Tensor | null, w2: Tensor, b2: Tensor | null): Tensor {
  const d = w1.shape[1], hidden = w1.shape[0], out = w2.shape[0];
  const what = `mlpGelu: x [${x.shape.join(', ')}], w1 [${w1.shape.join(', ')}], w2 [${w2.shape.join(', ')}]`;
  if (w1.ndim !== 2 || w2.ndim !== 2 || x.ndim < 1) throw new Error(`${what}: weights must be 2-d and x at least 1-d`);
  if (x.shape[x.ndim - 1] !== d) throw new Error(`${what}: x's last axis must equal w1's columns (${d})`);
  if (w2.shape[1] !== hidden) throw new Error(`${what}: w2's columns must equal w1's rows (${hidden})`);
  if (b1 && (b1.ndim !== 1 || b1.shape[0] !== hidden)) throw new Error(`${what}: b1 [${b1.shape.join(', ')}] must be [${hidden}]`);
  if (b2 && (b2.ndim !== 1 || b2.shape[0] !== out)) throw new Error(`${what}: b2 [${b2.shape.join(', ')}] must be [${out}]`);
  const xc = x.contiguous(), w1c = w1.contiguous(), w2c = w2.contiguous();
  const M = x.size / d;
  const X = xc.f32, W1 = w1c.f32, W2 = w2c.f32;
  const kern = backend();
  const bf16 = matmulPrecision() === 'bf16';
  const gemm = bf16 ? kern.gemmBf16 : kern.gemm, gemmUnary = bf16 ? kern.gemmUnaryBf16 : kern.gemmUnary;
  const h = scratch(M * hidden), a = scratch(M * hidden); // saved for backward, released after it
  const cx = centerOf(X, M, d);
  if (cx) kern.gemmUnaryBf16(UnaryOp.gelu_erf, false, false, true, M, hidden, d, 1, X, d, W1, d, 0, h, hidden, foldedBias(W1, hidden, d, cx, b1 ? b1.f32 : null), a, hidden, cx, null);
  else gemmUnary(UnaryOp.gelu_erf, false, false, true, M, hidden, d, 1, X, d, W1, d, 0, h, hidden, b1 ? b1.f32 : null, a, hidden);
  const y = alloc(M * out);
  const ca = centerOf(a, M, hidden);
  affine(gemm, a, M, hidden, W2, out, b2 ? b2.f32 : null, ca, y);
  const inputs = [xc, w1c, w2c, ...(b1 ? [b1] : []), ...(b2 ? [b2] : [])];
  const result = attach(new Tensor(y, [...x.shape.slice(0, -1), out]), inputs, (g) => {
    const need1 = xc.requiresGrad || w1c.requiresGrad || (b1 !== null && b1.requiresGrad);
    let gx: Float32Array | null = null, gw1: Float32Array | null = null, gw2: Float32Array | null = null;
    let gb1: Float32Array | null = null, gb2: Float32Array | null = null;
    if (b2 && b2.requiresGrad) {
      gb2 = alloc(out);
      kern.reduce(ReduceOp.sum, 1, M, out, g, gb2, null);
    }
    if (w2c.requiresGrad) {
      gw2 = alloc(out * hidden);
      weightGradient(gemm, g, M, out, a, hidden, ca, gb2, gw2); // g^T @ a
    }
    if (need1) {
      const gh = scratch(M * hidden); // (g @ W2) * gelu'(h)
      gemmUnary(UnaryOp.gelu_erf, true, false, false, M, hidden, out, 1, g, out, W2, hidden, 0, gh, hidden, null, h, hidden);
      if (xc.requiresGrad) {
        gx = alloc(M * d);
        gemm(false, false, M, d, hidden, 1, gh, hidden, W1, d, 0, gx, d, null); // gh @ W1
      }
      if (b1 && b1.requiresGrad) {
        gb1 = alloc(hidden);
        kern.reduce(ReduceOp.sum, 1, M, hidden, gh, gb1, null);
      }
      if (w1c.requiresGrad) {
        gw1 = alloc(hidden * d);
        weightGradient(gemm, gh, M, hidden, X, d, cx, gb1, gw1); // gh^T @ x
      }
      release(gh);
    }
    release(h, a);
    return [gx, gw1, gw2, ...(b1 ? [gb1] : []), ...(b2 ? [gb2] : [])];
  }, 'mlpGelu');
  if (!result.node) release(h, a); // no graph recorded: nothing will read them again
  return result;
}
