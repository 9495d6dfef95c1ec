/**
 * The router's auxiliary losses: load balancing (GShard/Switch, over the batch or per sequence as in
 * DeepSeek-V3's sequence-wise loss) and the ST-MoE z-loss, each one op with a hand-written gradient.
 */
import { backend } from '../../backend/index.js';
import { Tensor, attach } from '../tensor.js';
import { alloc } from '../pool.js';

/** Values of the router losses of one forward pass (unweighted). */
export interface RouterLossValues {
  balance: number;
  z: number;
}

/**
 * Load-balancing loss on a routing distribution p [T, E] (softmax probabilities, or sigmoid scores
 * normalised per token) over B groups of S = T/B consecutive tokens (B = counts.length / E):
 *   balance = (1/B) sum_b E * sum_e f[b,e] * P[b,e]
 *   f[b,e] = counts[b*E + e] / sum_e' counts[b*E + e']   (fraction of group b's slots routed to e,
 *                                                          counted before drops; a constant)
 *   P[b,e] = mean over group b's tokens of p[t, e]
 * B = 1 is the batch-level loss; B = sequences is the sequence-level one. A uniform router gives 1.
 * Gradient (p only): d/dp[t,e] = E f[b(t),e] / (S B). Returns a fresh 0-d tensor.
 */
export function balanceLoss(p: Tensor, counts: Int32Array): Tensor {
  if (p.ndim !== 2) throw new Error(`balanceLoss: expected [T, E] probabilities, got [${p.shape.join(', ')}]`);
  const [T, E] = p.shape;
  const B = E ? counts.length / E : 0;
  if (!(Number.isInteger(B) && B >= 1 && T % B === 0)) {
    throw new Error(`balanceLoss: counts [${counts.length}] must hold E=${E} counts for each of B groups dividing T=${T}`);
  }
  const S = T / B;
  const pc = p.contiguous();
  const P = pc.f32;
  const c = new Float64Array(B * E); // d balance / d p[t, e] for t in group b
  for (let b = 0; b < B; b++) {
    let slots = 0;
    for (let e = 0; e < E; e++) slots += counts[b * E + e];
    for (let e = 0; e < E; e++) c[b * E + e] = slots ? (E * counts[b * E + e]) / slots / S / B : 0;
  }
  let balance = 0;
  for (let t = 0; t < T; t++) {
    const row = ((t / S) | 0) * E;
    for (let e = 0; e < E; e++) balance += c[row + e] * P[t * E + e];
  }
  return attach(new Tensor(Float32Array.of(balance), []), [pc], (g) => {
    const gp = alloc(T * E); // every element written
    for (let t = 0; t < T; t++) {
      const row = ((t / S) | 0) * E;
      for (let e = 0; e < E; e++) gp[t * E + e] = g[0] * c[row + e];
    }
    return [gp];
  }, 'balanceLoss');
}

/**
 * Router z-loss on logits [T, E]: z = mean_t lse_t^2, lse_t = log sum_e exp(logits[t, e]).
 * Gradient: d/dl[t,e] = 2 lse_t softmax(l_t)_e / T. Returns a fresh 0-d tensor.
 */
export function zLoss(logits: Tensor): Tensor {
  if (logits.ndim !== 2) throw new Error(`zLoss: expected [T, E] logits, got [${logits.shape.join(', ')}]`);
  const [T, E] = logits.shape;
  const lc = logits.contiguous();
  const L = lc.f32;
  const lse = new Float64Array(T);
  let z = 0;
  for (let t = 0; t < T; t++) {
    let mx = -Infinity;
    for (let e = 0; e < E; e++) mx = Math.max(mx, L[t * E + e]);
    let s = 0;
    for (let e = 0; e < E; e++) s += Math.exp(L[t * E + e] - mx);
    lse[t] = mx + Math.log(s);
    z += lse[t] * lse[t];
  }
  z = T ? z / T : 0;
  return attach(new Tensor(Float32Array.of(z), []), [lc], (g) => {
    const probs = alloc(T * E);
    backend().softmax(T, E, L, probs, false);
    for (let t = 0; t < T; t++) {
      const a = (2 * g[0] * lse[t]) / T;
      for (let e = 0; e < E; e++) probs[t * E + e] *= a;
    }
    return [probs];
  }, 'zLoss');
}
