/**
 * Ops that draw random numbers. Each is a pure function of its explicit seed: the same seed gives
 * the same numbers, so callers that derive seeds from (run seed, step, micro-batch, site) replay
 * their noise exactly after a resume.
 */
import { backend } from '../../backend/index.js';
import { Rng } from '../../util/random.js';
import { Tensor } from '../tensor.js';
import { alloc } from '../pool.js';
import { mul } from './elementwise.js';
import { f32ToBf16Bits } from '../../io/tensor_dtypes.js';

/**
 * In-place normal fill of a contiguous float tensor (weight initialisation; never recorded):
 *   t[i] = mean + std * n_i,  n_i the counter-based normal of the `randn` kernel for (seed, i).
 * A bf16 tensor gets those float32 values rounded to nearest even (through a float32 temporary of
 * its size), so a bf16 table starts as the bf16 rounding of the float32 one. seed is a uint32.
 * Returns t.
 */
export function fillNormal(t: Tensor, seed: number, mean: number, std: number): Tensor {
  if (!(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32)) throw new Error(`fillNormal: seed must be a uint32, got ${seed}`);
  if (t.dtype === 'bf16') {
    const tmp = new Float32Array(t.size);
    backend().randn(tmp, seed, mean, std);
    roundToBf16(tmp, t.bf16);
    return t;
  }
  backend().randn(t.f32, seed, mean, std);
  return t;
}

/** out[i] = bfloat16 bits of x[i], rounded to nearest even (NaN stays a quiet NaN). */
export function roundToBf16(x: Float32Array, out: Uint16Array): void {
  if (out.length !== x.length) throw new Error(`roundToBf16: ${x.length} values into ${out.length}`);
  for (let i = 0; i < x.length; i++) out[i] = f32ToBf16Bits(x[i]);
}

/**
 * Multiplicative jitter (Switch Transformer router noise): out = x * u with u[i] ~ U(1 - eps, 1 + eps)
 * drawn from `new Rng(seed)` in row-major order. Differentiable in x (gx = g * u); fresh output.
 * seed is a non-negative integer; eps in [0, 1).
 */
export function jitter(x: Tensor, eps: number, seed: number): Tensor {
  if (!(eps >= 0 && eps < 1)) throw new Error(`jitter: eps must be in [0, 1), got ${eps}`);
  const noise = new Rng(seed).fillUniform(alloc(x.size), 1 - eps, 1 + eps);
  return mul(x, new Tensor(noise, x.shape));
}
