/** The affine map of Linear layers on the native GEMM (weight used transposed in place, never copied). */
import { backend, ReduceOp } from '../../backend/index.js';
import { Tensor, attach } from '../tensor.js';
import { matmulPrecision } from '../precision.js';
import { alloc } from '../pool.js';
import { affine, centerOf, weightGradient } from './bf16_center.js';

/**
 * Affine map as in torch.nn.Linear: y = x W^T + b. x: [..., in], w: [out, in], b: [out] or null.
 * The bias add is fused into the GEMM's store. Under matmulPrecision() 'bf16' the three GEMMs
 * (forward, input and weight gradients) round their operands to bf16 and accumulate in fp32, with x
 * centred on its mean over rows (bf16_center.ts) in the forward and the weight gradient.
 */
export function linear(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  const inF = w.shape[1], outF = w.shape[0];
  if (x.shape[x.ndim - 1] !== inF) throw new Error(`linear: input [${x.shape.join(', ')}] does not match weight [${w.shape.join(', ')}]`);
  if (b && (b.ndim !== 1 || b.shape[0] !== outF)) throw new Error(`linear: bias [${b.shape.join(', ')}] does not match weight [${w.shape.join(', ')}]`);
  const xc = x.contiguous(), wc = w.contiguous();
  const M = x.size / inF;
  const y = alloc(M * outF);
  const kern = backend();
  const gemm = matmulPrecision() === 'bf16' ? kern.gemmBf16 : kern.gemm;
  const X = xc.f32, W = wc.f32;
  const cx = centerOf(X, M, inF);
  affine(gemm, X, M, inF, W, outF, b ? b.f32 : null, cx, y);
  const shape = [...x.shape.slice(0, -1), outF];
  const inputs = b ? [xc, wc, b] : [xc, wc];
  return attach(new Tensor(y, shape), inputs, (g) => {
    let gx: Float32Array | null = null, gw: Float32Array | null = null, gb: Float32Array | null = null;
    if (xc.requiresGrad) {
      gx = alloc(M * inF);
      gemm(false, false, M, inF, outF, 1, g, outF, W, inF, 0, gx, inF, null); // g @ W
    }
    if (b && b.requiresGrad) {
      gb = alloc(outF);
      kern.reduce(ReduceOp.sum, 1, M, outF, g, gb, null);
    }
    if (wc.requiresGrad) {
      gw = alloc(outF * inF);
      weightGradient(gemm, g, M, outF, X, inF, cx, gb, gw); // g^T @ x
    }
    return b ? [gx, gw, gb] : [gx, gw];
  }, 'linear');
}
