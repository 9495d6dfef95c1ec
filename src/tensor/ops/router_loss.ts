/**
 * The router's auxiliary losses (GShard/Switch load balancing and the ST-MoE z-loss) as one op whose
 * gradient goes straight to the router logits.
 */
import { Tensor, attach } from '../tensor.js';

/** Values of the router losses of one forward pass (unweighted). */
export interface RouterLossValues {
  balance: number;
  z: number;
}

/**
 * auxCoef * balance + zCoef * z as a fresh 0-d tensor, on the router's logits [T, E], where
 *   balance = E * sum_e f_e * P_e   (f_e = counts[e] / sum(counts): fraction of slots routed to e,
 *                                    counted before drops, a constant; P_e = mean_t probs[t, e])
 *   z       = mean_t lse_t^2        (lse_t = log sum_e exp(logits[t, e]))
 * probs = softmax(logits) [T, E] (already computed, treated as data and kept by the backward, not
 * copied) and top1 [T] (each token's most probable expert, so lse_t = logits[t, e*] - log probs[t, e*])
 * are given. Both gradients go straight to the logits (the balance term through the softmax Jacobian):
 *   d/dl[t,e] = p[t,e] * (auxCoef * (c_e - sum_j p[t,j] c_j) + zCoef * 2 lse_t / T),  c_e = E f_e / T.
 * `values`, when given, receives the unweighted balance and z.
 */
export function routerLosses(logits: Tensor, probs: Float32Array, counts: Int32Array, top1: Int32Array,
  auxCoef: number, zCoef: number, values?: RouterLossValues): Tensor {
  if (logits.ndim !== 2) throw new Error(`routerLosses: expected [T, E] logits, got [${logits.shape.join(', ')}]`);
  const [T, E] = logits.shape;
  if (probs.length !== T * E || counts.length !== E || top1.length !== T) {
    throw new Error(`routerLosses: probs [${probs.length}], counts [${counts.length}], top1 [${top1.length}] do not fit logits [${T}, ${E}]`);
  }
  const lc = logits.contiguous();
  const L = lc.f32, P = probs;
  let slots = 0;
  for (let e = 0; e < E; e++) slots += counts[e];
  // balance = sum_{t,e} P[t,e] * c_e
  const c = new Float64Array(E);
  for (let e = 0; e < E; e++) c[e] = slots ? (E * counts[e]) / slots / T : 0;
  const pmean = new Float64Array(E);
  for (let t = 0; t < T; t++) for (let e = 0; e < E; e++) pmean[e] += P[t * E + e];
  let balance = 0;
  for (let e = 0; e < E; e++) balance += c[e] * pmean[e];
  const lse = new Float64Array(T);
  let z = 0;
  for (let t = 0; t < T; t++) {
    const e = top1[t];
    lse[t] = L[t * E + e] - Math.log(P[t * E + e]);
    z += lse[t] * lse[t];
  }
  z = T ? z / T : 0;
  if (values) {
    values.balance = balance;
    values.z = z;
  }
  const out = new Tensor(Float32Array.of(auxCoef * balance + zCoef * z), []);
  if (auxCoef === 0 && zCoef === 0) return out;
  return attach(out, [lc], (g) => {
    const gl = new Float32Array(T * E);
    const a = g[0] * auxCoef, zs = (g[0] * zCoef * 2) / T;
    for (let t = 0; t < T; t++) {
      const row = t * E;
      let pc = 0;
      for (let e = 0; e < E; e++) pc += P[row + e] * c[e];
      const b = zs * lse[t] - a * pc;
      for (let e = 0; e < E; e++) gl[row + e] = P[row + e] * (a * c[e] + b);
    }
    return [gl];
  }, 'routerLosses');
}
