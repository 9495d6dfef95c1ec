/**
 * Mixture-of-Experts feed-forward: token-choice top-k routing (GShard / Switch) matching the class
 * `MoE` of ../shared/peers/torch/moe_lm.py by default, plus fine-grained and shared experts,
 * capacity with separate train / eval factors, router jitter, the router z-loss, sigmoid gates,
 * sequence-level and auxiliary-loss-free balancing, expert-choice and uniform routing.
 *
 * The layer holds the parameters and composes ops (../tensor/ops/moe.ts, routing.ts, router_loss.ts).
 * Routing (small [T, E] tensor ops, differentiable through the gate values):
 *   logits = x' Wr^T  (x' = jitter(x, eps, seed) when training with jitter, else x; the seed is
 *            the forward's argument, so the noise is a pure function of what the caller passes)
 *   scores = softmax(logits) | sigmoid(logits)
 *   token choice:  idx = topk(scores + bias, k) (bias: loss-free balancing, selection only),
 *                  gates = scores[idx], renormalised to sum 1 per token when `renormalize`
 *   expert choice: expert e takes the C = ceil(cf T k / E) tokens of highest scores[:, e], gate =
 *                  that score (Zhou et al. 2022); it ranks tokens across the whole batch, so it is
 *                  not causal: evaluation and generation use `evalRouting` (token choice by default)
 *   uniform:       slot t*k + j -> expert (t*k + j) mod E, gates = scores there (benchmarking)
 * Dispatch (MegaBlocks style, one composite autograd op, `expertMix`): assignments grouped by expert,
 *   capacity drops (token choice), ONE grouped GEMM per expert layer, gated scatter-add to tokens.
 * Losses: balance = (1/B) sum_b E sum_e f[b,e] P[b,e] over the batch (B = 1, 'aux') or per sequence
 *   ('seq-aux'), P on p = scores (softmax) or scores / sum_e scores (sigmoid); z = mean_t lse_t^2;
 *   auxLoss() = auxCoef * balance + zCoef * z.
 * Loss-free balancing (DeepSeek-V3): after each optimizer step (afterStep, called by trainStep)
 *   bias_e += biasRate * sign(mean_e' n_e' - n_e), n = the step's token-choice assignments per expert;
 *   the bias is the buffer `expert_bias`, so it is checkpointed with the weights.
 * Expert dropout (training only, `expertDropout` p > 0): the routed experts' activations are
 *   dropped with the kernel mask of seed = new Rng(forward seed, 1).nextU32(), a stream apart from
 *   the jitter's, so (step, micro) replays it; shared experts are not dropped.
 * Granularity G turns E experts of width h into E*G experts of width h/G with k*G of them per token
 * (same active parameters and MACs). Shared experts (MLPs of the fine-grained width) see every token.
 */
import {
  Tensor, add, mul, softmax, sigmoid, topk, gather, zeros, planRoute, expertMix, renormalizeRows, jitter,
  biasedTopk, uniformChoice, expertChoiceRoute, balanceLoss, zLoss, type Route, type RouterLossValues,
} from '../tensor/index.js';
import type { MoeDispatchKnobs, MoeRoutingSpec } from '../spec/ffn/moe.js';
import { FeedForward, type FfnStats } from './ffn.js';
import { Linear } from './layers.js';
import { MLP } from './mlp.js';
import { ModuleList } from './module.js';
import { RoutingStats } from './moe_stats.js';
import { Rng } from '../util/random.js';
import { routingChoices, type RoutingObserver } from './moe_choices.js';

export interface MoEOptions extends Partial<MoeRoutingSpec>, MoeDispatchKnobs {
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
  /**
   * Expert dropout in training (Fedus et al. 2021): dropout at this rate on the routed experts'
   * hidden activations (expertMix); 0 or absent = off. Fine-tuning sets it (eval/finetune.ts).
   */
  expertDropout?: number;
}

/** Routing options with their defaults filled in (today's behaviour: softmax, aux loss, token choice). */
function routingOf(o: MoEOptions): MoeRoutingSpec {
  const routing = o.routing ?? 'token-choice';
  return {
    gate: o.gate ?? 'softmax', routing,
    evalRouting: o.evalRouting ?? (routing === 'expert-choice' ? 'token-choice' : routing),
    balance: o.balance ?? (routing === 'expert-choice' ? 'none' : 'aux'),
    expertBias: o.expertBias ?? false, biasRate: o.biasRate ?? 1e-3,
  };
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
  /** Routing and balancing, defaults filled in. */
  readonly routing: MoeRoutingSpec;
  /** Loss-free balancing bias [E] (buffer `expert_bias`), or null. */
  readonly bias: Tensor | null;

  private aux: Tensor | null = null;
  private losses: RouterLossValues | null = null;
  /** Token-choice assignments per expert since the last afterStep (training forwards only). */
  private readonly stepLoad: Float64Array;
  private readonly window: RoutingStats;
  private observer: RoutingObserver | null = null;

  constructor(readonly d: number, readonly o: MoEOptions) {
    super();
    const G = o.granularity;
    if (!(Number.isInteger(G) && G >= 1) || o.hidden % G !== 0) throw new Error(`MoE: hidden ${o.hidden} must be divisible by granularity ${G}`);
    this.experts = o.experts * G;
    this.topk = o.topk * G;
    this.hidden = o.hidden / G;
    if (!(this.topk >= 1 && this.topk <= this.experts)) throw new Error(`MoE: topk ${o.topk} must be in [1, ${o.experts}]`);
    this.routing = routingOf(o);
    const r = this.routing;
    if (r.expertBias && (r.routing === 'expert-choice' || r.evalRouting === 'expert-choice')) {
      throw new Error('MoE: expertBias balances token-choice selection; expert choice is balanced by construction (drop expertBias)');
    }
    if (!(r.biasRate >= 0 && Number.isFinite(r.biasRate))) throw new Error(`MoE: biasRate must be a finite number >= 0, got ${r.biasRate}`);
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
    this.bias = r.expertBias ? this.buffer('expert_bias', zeros([E])) : null;
    this.stepLoad = new Float64Array(E);
    this.window = new RoutingStats(E);
  }

  /** The capacity factor in effect (training or eval). */
  get capacityFactor(): number {
    return this.training ? this.o.capacityFactor : this.o.evalCapacityFactor;
  }

  /** The routing in effect (training or eval). */
  get routingMode(): MoeRoutingSpec['routing'] {
    return this.training ? this.routing.routing : this.routing.evalRouting;
  }

  /**
   * Assignments per expert for T tokens: token choice's capacity (Infinity when dropless); expert
   * choice's C = min(T, ceil(cf T k / E)), which needs cf > 0.
   */
  capacity(T: number): number {
    const cf = this.capacityFactor;
    if (this.routingMode === 'expert-choice') {
      if (!(cf > 0)) throw new Error(`MoE: expert-choice routing needs a capacity factor > 0 (got ${cf}): each expert takes ceil(cf * T * k / E) tokens`);
      return Math.min(T, Math.ceil((cf * T * this.topk) / this.experts));
    }
    return cf > 0 ? Math.ceil((cf * T * this.topk) / this.experts) : Infinity;
  }

  /**
   * x [T, d] -> [T, d]; T = B*S tokens of B sequences of S = seqLen (default T) consecutive tokens
   * (only the sequence-level balancing loss needs S). In training with jitter > 0 the router input is
   * jittered with noise keyed by `seed` (required then: a layer keeps no random state).
   */
  forward(x: Tensor, seed?: number, seqLen?: number): Tensor {
    const [T, d] = x.shape;
    if (x.ndim !== 2 || d !== this.d) throw new Error(`MoE: expected [T, ${this.d}] input, got [${x.shape.join(', ')}]`);
    const S = seqLen ?? T;
    if (!(Number.isInteger(S) && S >= 1 && T % S === 0)) throw new Error(`MoE: ${T} tokens are not whole sequences of seqLen ${seqLen}`);
    const E = this.experts, k = this.topk, r = this.routing, mode = this.routingMode;

    let xr = x;
    if (this.training && this.o.jitter > 0) {
      if (seed === undefined) throw new Error('MoE: router jitter in training needs a random seed: call forward(x, seed) (GPT passes one derived from setRandomKey)');
      xr = jitter(x, this.o.jitter, seed);
    }
    const logits = this.router.forward(xr); // [T, E]
    const scores = r.gate === 'sigmoid' ? sigmoid(logits) : softmax(logits);

    let route: Route, gates: Tensor, idx: Int32Array | null = null;
    if (mode === 'expert-choice') {
      ({ route, gates } = expertChoiceRoute(scores, this.capacity(T)));
    } else {
      let values: Tensor;
      if (mode === 'uniform') {
        idx = uniformChoice(T, k, E);
        values = gather(scores, new Tensor(idx, [T, k]));
      } else {
        const top = this.bias ? biasedTopk(scores, this.bias.f32, k) : topk(scores, k);
        values = top.values;
        idx = top.indices.i32;
      }
      gates = this.o.renormalize ? renormalizeRows(values) : values;
      route = planRoute(idx, T, k, E, this.capacity(T));
    }
    if (this.observer) this.observer(routingChoices(route, idx, k, mode));
    const pDrop = this.training ? this.o.expertDropout ?? 0 : 0;
    let dropout: { p: number; seed: number } | undefined;
    if (pDrop > 0) {
      if (seed === undefined) throw new Error('MoE: expert dropout in training needs a random seed: call forward(x, seed) (GPT passes one derived from setRandomKey)');
      dropout = { p: pDrop, seed: new Rng(seed, 1).nextU32() };
    }
    let y = expertMix(x, gates, this.w1, this.b1, this.w2, this.b2, route, { dropout });
    if (this.shared) for (const m of this.shared.items) y = add(y, m.forward(x));

    // p: the per-token distribution over experts that balancing and entropy are measured on
    const p = r.gate === 'sigmoid' ? renormalizeRows(scores) : scores;
    const balance = idx && r.balance !== 'none'
      ? balanceLoss(p, r.balance === 'seq-aux' ? sequenceCounts(idx, T, k, E, S) : route.counts)
      : null;
    const z = zLoss(logits);
    let aux: Tensor | null = null;
    if (balance && this.o.auxCoef > 0) aux = mul(balance, this.o.auxCoef);
    if (this.o.zCoef > 0) aux = aux ? add(aux, mul(z, this.o.zCoef)) : mul(z, this.o.zCoef);
    this.aux = aux;
    this.losses = { balance: balance ? balance.item() : 0, z: z.item() };

    if (this.training && this.bias) for (let e = 0; e < E; e++) this.stepLoad[e] += route.counts[e];
    this.window.add({
      T, counts: route.counts, kept: route.tok.length, tok: route.tok, p: p.contiguous().f32,
      balance: balance ? this.losses.balance : null, z: this.losses.z,
    });
    return y;
  }

  /**
   * Calls `fn` with every following forward's routing decisions (tokens and experts before capacity
   * drops; see moe_choices.ts) until observeRouting(null). Read-only: routing is unchanged.
   */
  observeRouting(fn: RoutingObserver | null): void {
    this.observer = fn;
  }

  /** auxCoef * balance + zCoef * z-loss of the last forward (0-d, in the graph), or null when both are off. */
  override auxLoss(): Tensor | null {
    return this.aux;
  }

  /** Unweighted balancing loss (0 when the routing has none) and z-loss of the last forward. */
  routerLossValues(): RouterLossValues | null {
    return this.losses ? { ...this.losses } : null;
  }

  /** Routing statistics of every forward since the last resetStats() (see RoutingStats.summary). */
  override stats(): FfnStats | null {
    return this.window.summary(this.bias?.f32);
  }

  override resetStats(): void {
    this.window.reset();
  }

  /** Loss-free balancing: nudges the bias toward balance from the step's loads, then forgets them. */
  override afterStep(): void {
    if (!this.bias) return;
    const E = this.experts, b = this.bias.f32, n = this.stepLoad;
    let total = 0;
    for (let e = 0; e < E; e++) total += n[e];
    if (total > 0) for (let e = 0; e < E; e++) b[e] += this.routing.biasRate * Math.sign(total / E - n[e]);
    n.fill(0);
  }

  /** Parameters of one routed expert (w1, b1, w2, b2 slices). */
  expertParams(): number {
    return 2 * this.d * this.hidden + this.hidden + this.d;
  }
}

/** Assignments per (sequence, expert): [B*E] for B = T/S sequences, from the T*k choices idx. */
function sequenceCounts(idx: Int32Array, T: number, k: number, E: number, S: number): Int32Array {
  const c = new Int32Array((T / S) * E);
  for (let s = 0; s < T * k; s++) c[((s / k / S) | 0) * E + idx[s]]++;
  return c;
}
