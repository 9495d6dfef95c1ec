/**
 * Routing decisions beyond plain top-k: selection with a balancing bias (DeepSeek-V3's
 * auxiliary-loss-free balancing), uniform assignment (MegaBlocks' benchmarking switch) and expert
 * choice (Zhou et al. 2022). Each returns the differentiable gate values (gradients flow to the
 * router scores) and what expertMix's route needs; the selection itself is not differentiated.
 */
import { backend } from '../../backend/index.js';
import { Tensor, attach } from '../tensor.js';
import { alloc, allocZeroed, release, scratch } from '../pool.js';
import { gather } from './indexing.js';
import type { Route } from './moe.js';

/**
 * Token-choice top-k where selection sees scores + bias but the gates do not:
 *   indices[t] = topk_j(scores[t, j] + bias[j], k),  values[t, j] = scores[t, indices[t, j]].
 * scores [T, E], bias [E] (data, no gradient). Ties and NaN as topk.
 */
export function biasedTopk(scores: Tensor, bias: Float32Array, k: number): { values: Tensor; indices: Tensor } {
  if (scores.ndim !== 2) throw new Error(`biasedTopk: expected [T, E] scores, got [${scores.shape.join(', ')}]`);
  const [T, E] = scores.shape;
  if (bias.length !== E) throw new Error(`biasedTopk: bias has ${bias.length} entries for ${E} experts`);
  if (!(Number.isInteger(k) && k >= 1 && k <= E)) throw new Error(`biasedTopk: k=${k} must be in [1, ${E}]`);
  const S = scores.contiguous().f32;
  const sel = scratch(T * E);
  for (let t = 0; t < T; t++) for (let e = 0; e < E; e++) sel[t * E + e] = S[t * E + e] + bias[e];
  const idx = new Int32Array(T * k);
  const vals = scratch(T * k);
  backend().topk(T, E, k, sel, vals, idx);
  release(sel, vals);
  const indices = new Tensor(idx, [T, k]);
  return { values: gather(scores, indices), indices };
}

/**
 * Uniform assignment regardless of scores (for throughput measurements apart from learning):
 * slot s = t*k + j goes to expert s mod E, so every expert gets T*k/E slots (+-1) and, for k <= E,
 * a token's k experts are distinct. Returns the [T*k] expert ids.
 */
export function uniformChoice(T: number, k: number, E: number): Int32Array {
  if (!(k >= 1 && k <= E)) throw new Error(`uniformChoice: k=${k} must be in [1, ${E}]`);
  const idx = new Int32Array(T * k);
  for (let s = 0; s < T * k; s++) idx[s] = s % E;
  return idx;
}

/**
 * Expert-choice routing: expert e takes the C tokens with the highest scores[:, e] (kernel
 * expertChoice: ties keep the lower token). Tokens may get zero, one or several experts.
 *   gates[e, c] = scores[tok[e*C + c], e]   (fresh [E, C]; gradient scattered back to those scores)
 * The route's slot e*C + c indexes gates; expert e owns slots [e*C, (e+1)*C), each with C tokens.
 */
export function expertChoiceRoute(scores: Tensor, C: number): { route: Route; gates: Tensor } {
  if (scores.ndim !== 2) throw new Error(`expertChoiceRoute: expected [T, E] scores, got [${scores.shape.join(', ')}]`);
  const [T, E] = scores.shape;
  if (!(Number.isInteger(C) && C >= 0 && C <= T)) throw new Error(`expertChoiceRoute: capacity C=${C} must be an integer in [0, T=${T}]`);
  const sc = scores.contiguous();
  const n = E * C;
  const tok = new Int32Array(n), vals = alloc(n);
  backend().expertChoice(T, E, C, sc.f32, tok, vals);
  const slots = new Int32Array(n), offsets = new Int32Array(E + 1), counts = new Int32Array(E).fill(C);
  for (let s = 0; s < n; s++) slots[s] = s;
  for (let e = 0; e <= E; e++) offsets[e] = e * C;
  const gates = attach(new Tensor(vals, [E, C]), [sc], (g) => {
    const gs = allocZeroed(T * E); // accumulated below
    for (let e = 0; e < E; e++) for (let c = 0; c < C; c++) gs[tok[e * C + c] * E + e] += g[e * C + c];
    return [gs];
  }, 'expertChoiceRoute');
  return { route: { T, gateCount: n, E, slots, tok, offsets, counts, capacity: C }, gates };
}
