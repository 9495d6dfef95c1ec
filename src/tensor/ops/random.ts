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

/**
 * In-place normal fill of a contiguous float tensor (weight initialisation; never recorded):
 *   t[i] = mean + std * n_i,  n_i the counter-based normal of the `randn` kernel for (seed, i).
 * seed is a uint32. Returns t.
 */
export function fillNormal(t: Tensor, seed: number, mean: number, std: number): Tensor {
  if (!(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32)) throw new Error(`fillNormal: seed must be a uint32, got ${seed}`);
  backend().randn(t.f32, seed, mean, std);
  return t;
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
