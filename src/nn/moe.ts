/**
 * Token-choice top-k Mixture-of-Experts feed-forward (GShard / Switch routing), matching the class
 * `MoE` of ../shared/peers/torch/moe_lm.py, plus fine-grained and shared experts, capacity with
 * separate train / eval factors, router jitter and the router z-loss.
 *
 * The layer holds the parameters and composes ops (../tensor/ops/moe.ts, router_loss.ts, random.ts).
 * Routing (small [T, E] tensor ops, differentiable):
 *   logits = x' Wr^T  (x' = jitter(x, eps, seed) when training with jitter, else x; the seed is
 *            the forward's argument, so the noise is a pure function of what the caller passes)
 *   probs  = softmax(logits);  gates, idx = topk(probs, k);  gates /= sum(gates)  (renormalize, own op)
 * Dispatch (MegaBlocks style, one composite autograd op, `expertMix`):
 *   the T*k slots (slot s = t*k + j) are stable-sorted by expert (counting sort), overflow slots
 *   (position within their expert's list >= C) are dropped, token rows are gathered, ONE grouped
 *   GEMM runs every expert's fc1 (+bias), gelu (erf), ONE grouped GEMM runs fc2 (+bias), rows are
 *   scaled by their gate and scatter-added back to their token. The backward is hand written with
 *   the same grouped GEMMs (transposed B for input gradients, grouped-K for weight gradients).
 * Losses (one composite op, `routerLosses`):
 *   balance = E * sum_e f_e * P_e  (f_e: fraction of slots routed to e, counted before drops;
 *             P_e: mean router probability; f is a constant, so gradients flow through P only)
 *   z       = mean_t logsumexp(logits_t)^2
 *   auxLoss() = auxCoef * balance + zCoef * z.
 * Granularity G turns E experts of width h into E*G experts of width h/G with k*G of them per token
 * (same active parameters and MACs). Shared experts (MLPs of the fine-grained width) see every token.
 */
import {
  Tensor, add, softmax, topk, zeros, planRoute, expertMix, renormalizeRows, routerLosses, jitter, type RouterLossValues,
} from '../tensor/index.js';
import { FeedForward, type FfnStats } from './ffn.js';
import { Linear } from './layers.js';
import { MLP } from './mlp.js';
import { ModuleList } from './module.js';

export interface MoEOptions {
  /** Coarse experts E (before granularity). */
  experts: number;
  /** Experts per token k (before granularity). */
  topk: number;
  /** Hidden width of one coarse expert (before granularity). */
  hidden: number;
  /** Fine-grained factor G: E*G experts of width hidden/G, k*G per token. */
  granularity: number;
  /** Always-active shared experts, each an MLP of width hidden/G. */
  sharedExperts: number;
  /** Capacity factor in training: C = ceil(cf * T * k / E) slots per expert; <= 0 is dropless. */
  capacityFactor: number;
  /** Capacity factor when `!training`. */
  evalCapacityFactor: number;
  /** Renormalise the k chosen gates to sum to 1 (the reference always does). */
  renormalize: boolean;
  /** Multiplicative router-input jitter amplitude eps in training (0 = off). */
  jitter: number;
  /** Weight of the balancing loss in auxLoss(). */
  auxCoef: number;
  /** Weight of the router z-loss in auxLoss(). */
  zCoef: number;
}

export class MoE extends FeedForward {
  /** Routed experts (E*G), experts per token (k*G) and expert width (hidden/G). */
  readonly experts: number;
  readonly topk: number;
  readonly hidden: number;
  readonly w1: Tensor;
  readonly b1: Tensor;
  readonly w2: Tensor;
  readonly b2: Tensor;
  readonly router: Linear;
  readonly shared: ModuleList<MLP> | null;

  private aux: Tensor | null = null;
  private last: {
    T: number; probs: Float32Array; counts: Int32Array; kept: number; losses: RouterLossValues;
  } | null = null;

  constructor(readonly d: number, readonly o: MoEOptions) {
    super();
    const G = o.granularity;
    if (!(Number.isInteger(G) && G >= 1) || o.hidden % G !== 0) throw new Error(`MoE: hidden ${o.hidden} must be divisible by granularity ${G}`);
    this.experts = o.experts * G;
    this.topk = o.topk * G;
    this.hidden = o.hidden / G;
    if (!(this.topk >= 1 && this.topk <= this.experts)) throw new Error(`MoE: topk ${o.topk} must be in [1, ${o.experts}]`);
    const E = this.experts, h = this.hidden;
    // registration order = the PyTorch state_dict order: own parameters, then children
    this.w1 = this.param('w1', zeros([E, d, h]));
    this.b1 = this.param('b1', zeros([E, h]));
    this.w2 = this.param('w2', zeros([E, h, d]));
    this.b2 = this.param('b2', zeros([E, d]));
    this.router = this.child('router', new Linear(d, E, false));
    this.shared = o.sharedExperts > 0
      ? this.child('shared', new ModuleList(Array.from({ length: o.sharedExperts }, () => new MLP(d, h))))
      : null;
  }

  /** The capacity factor in effect (training or eval). */
  get capacityFactor(): number {
    return this.training ? this.o.capacityFactor : this.o.evalCapacityFactor;
  }

  /** Slots per expert for T tokens (Infinity when dropless). */
  capacity(T: number): number {
    const cf = this.capacityFactor;
    return cf > 0 ? Math.ceil((cf * T * this.topk) / this.experts) : Infinity;
  }

  /**
   * x [T, d] -> [T, d]. In training with jitter > 0 the router input is jittered with noise keyed by
   * `seed` (required then: a layer keeps no random state, so the caller owns the key).
   */
  forward(x: Tensor, seed?: number): Tensor {
    const [T, d] = x.shape;
    if (x.ndim !== 2 || d !== this.d) throw new Error(`MoE: expected [T, ${this.d}] input, got [${x.shape.join(', ')}]`);
    const E = this.experts, k = this.topk;

    let xr = x;
    if (this.training && this.o.jitter > 0) {
      if (seed === undefined) throw new Error('MoE: router jitter in training needs a random seed: call forward(x, seed) (GPT passes one derived from setRandomKey)');
      xr = jitter(x, this.o.jitter, seed);
    }
    const logits = this.router.forward(xr); // [T, E]
    const probs = softmax(logits);
    const { values, indices } = topk(probs, k); // [T, k]
    const gates = this.o.renormalize ? renormalizeRows(values) : values;

    const idx = indices.i32;
    const route = planRoute(idx, T, k, E, this.capacity(T));
    let y = expertMix(x, gates, this.w1, this.b1, this.w2, this.b2, route);
    if (this.shared) for (const m of this.shared.items) y = add(y, m.forward(x));

    const top1 = new Int32Array(T);
    for (let t = 0; t < T; t++) top1[t] = idx[t * k];
    const losses: RouterLossValues = { balance: 0, z: 0 };
    this.aux = routerLosses(logits, probs.f32, route.counts, top1, this.o.auxCoef, this.o.zCoef, losses);
    this.last = { T, probs: probs.f32, counts: route.counts, kept: route.tok.length, losses };
    return y;
  }

  /** auxCoef * balance + zCoef * z-loss of the last forward (0-d, in the graph). */
  override auxLoss(): Tensor | null {
    return this.aux;
  }

  /** Unweighted balancing loss and z-loss of the last forward. */
  routerLossValues(): RouterLossValues | null {
    return this.last ? { ...this.last.losses } : null;
  }

  /**
   * load: fraction of slots routed to each expert (before drops); dropRate: fraction of slots
   * dropped by capacity; balanceLoss, zLoss: unweighted; routerEntropy: mean over tokens (nats).
   */
  override stats(): FfnStats | null {
    const l = this.last;
    if (!l) return null;
    const { T, probs, counts } = l;
    const E = this.experts, slots = T * this.topk;
    let ent = 0;
    for (let i = 0; i < T * E; i++) {
      const p = probs[i];
      if (p > 0) ent -= p * Math.log(p);
    }
    return {
      load: Array.from(counts, (c) => (slots ? c / slots : 0)),
      dropRate: slots ? (slots - l.kept) / slots : 0,
      balanceLoss: l.losses.balance,
      zLoss: l.losses.z,
      routerEntropy: T ? ent / T : 0,
    };
  }

  /** Parameters of one routed expert (w1, b1, w2, b2 slices). */
  expertParams(): number {
    return 2 * this.d * this.hidden + this.hidden + this.d;
  }
}
