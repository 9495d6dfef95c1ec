/**
 * Token-choice top-k Mixture-of-Experts feed-forward (GShard / Switch routing), matching the class
 * `MoE` of ../shared/peers/torch/moe_lm.py, plus fine-grained and shared experts, capacity with
 * separate train / eval factors, router jitter and the router z-loss.
 *
 * Routing (small [T, E] tensor ops, differentiable):
 *   logits = x' Wr^T  (x' = x * U(1-eps, 1+eps) when training with jitter, else x)
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
import { backend, BinaryOp, UnaryOp } from '../backend/index.js';
import { Tensor, attach, add, mul, softmax, topk, zeros } from '../tensor/index.js';
import { Rng } from '../util/random.js';
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
  /** Seed of the jitter noise. */
  seed?: number;
}

/** The routing of one forward pass: which slots each expert processes, in expert order. */
export interface Route {
  /** Tokens T and slots per token k. */
  T: number;
  k: number;
  /** Experts (groups). */
  E: number;
  /** Kept slots (s = t*k + j), grouped by expert, ascending within an expert. [N] */
  slots: Int32Array;
  /** Source token of each kept slot (slots[p] / k). [N] */
  tok: Int32Array;
  /** Group boundaries into slots: expert e owns [offsets[e], offsets[e+1]). [E+1] */
  offsets: Int32Array;
  /** Slots routed to each expert before drops. [E] */
  counts: Int32Array;
  /** Capacity per expert (Infinity when dropless). */
  capacity: number;
}

/**
 * Groups the T*k routing choices `idx` ([T*k], expert per slot) by expert with a stable counting
 * sort and applies the capacity rule: a slot whose position within its expert's list is >= C is
 * dropped (the reference's rule: earlier tokens win).
 */
export function planRoute(idx: Int32Array, T: number, k: number, E: number, capacity: number): Route {
  const n = T * k;
  const order = new Int32Array(n), counts = new Int32Array(E);
  backend().argsortInt(n, idx, E, order, counts);
  const offsets = new Int32Array(E + 1);
  let slots = order;
  if (Number.isFinite(capacity)) {
    let kept = 0;
    for (let e = 0; e < E; e++) kept += Math.min(counts[e], capacity);
    if (kept < n) {
      slots = new Int32Array(kept);
      let src = 0, dst = 0;
      for (let e = 0; e < E; e++) {
        const keep = Math.min(counts[e], capacity);
        slots.set(order.subarray(src, src + keep), dst);
        src += counts[e];
        dst += keep;
        offsets[e + 1] = dst;
      }
    }
  }
  if (slots === order) for (let e = 0; e < E; e++) offsets[e + 1] = offsets[e] + counts[e];
  const tok = new Int32Array(slots.length);
  for (let p = 0; p < slots.length; p++) tok[p] = (slots[p] / k) | 0;
  return { T, k, E, slots, tok, offsets, counts, capacity };
}

/**
 * Recycled scratch buffers for expertMix's activations and backward temporaries. A fresh
 * multi-megabyte Float32Array costs zero-filling and page faults on first touch (about 3 ms per
 * 8 MB here), and one MoE step needs tens of MB of them, so buffers that never leave the op are
 * reused: forward temporaries at the end of the forward, saved activations once the backward has
 * used them (or at once when no graph is recorded). A taken buffer holds stale data; every use
 * overwrites it completely. Buffers handed to autograd (gradients, outputs) are never pooled.
 */
export class ScratchPool {
  private readonly free = new Map<number, Float32Array[]>();
  private bytes = 0;
  constructor(readonly maxBytes = 512 * 2 ** 20) {}

  take(n: number): Float32Array {
    const b = this.free.get(n)?.pop();
    if (!b) return new Float32Array(n);
    this.bytes -= b.byteLength;
    return b;
  }

  give(...bufs: Float32Array[]): void {
    for (const b of bufs) {
      if (this.bytes + b.byteLength > this.maxBytes) continue; // let the GC have it
      let list = this.free.get(b.length);
      if (!list) this.free.set(b.length, (list = []));
      list.push(b);
      this.bytes += b.byteLength;
    }
  }

  /** Drops every pooled buffer. */
  clear(): void {
    this.free.clear();
    this.bytes = 0;
  }
}

/** The pool shared by all MoE layers (layers run one at a time, so they can share temporaries). */
export const moeScratch = new ScratchPool();

/**
 * The expert computation as one autograd op: for every kept slot p (token t, expert e, gate g),
 *   out[t] += g * (gelu(x[t] W1_e + b1_e) W2_e + b2_e).
 * x [T, d], gates [T, k], w1 [E, d, h], b1 [E, h], w2 [E, h, d], b2 [E, d] -> [T, d].
 * Dropped slots contribute nothing (and get a zero gate gradient).
 */
export function expertMix(x: Tensor, gates: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, r: Route,
  pool: ScratchPool = moeScratch): Tensor {
  const [T, d] = x.shape;
  const [E, , h] = w1.shape;
  if (T !== r.T || E !== r.E || gates.size !== r.T * r.k) throw new Error('expertMix: route does not match the inputs');
  const kern = backend();
  const xc = x.contiguous(), gc = gates.contiguous();
  const X = xc.f32, W1 = w1.f32, B1 = b1.f32, W2 = w2.f32, B2 = b2.f32, gflat = gc.f32;
  const { tok, slots, offsets } = r;
  const N = tok.length;
  const gs = new Float32Array(N); // gate of each kept slot
  for (let p = 0; p < N; p++) gs[p] = gflat[slots[p]];

  const xs = pool.take(N * d);
  kern.indexSelect(N, d, X, tok, xs);
  const hpre = pool.take(N * h);
  kern.gemmGroupedRows(E, offsets, false, h, d, 1, xs, d, W1, d * h, h, 0, hpre, h, B1);
  const act = pool.take(N * h);
  kern.unary(UnaryOp.gelu_erf, hpre, act);
  const ys = pool.take(N * d);
  kern.gemmGroupedRows(E, offsets, false, d, h, 1, act, h, W2, h * d, d, 0, ys, d, B2);
  const rowShape = Int32Array.of(N, d), rowStrides = Int32Array.of(d, 1), gateStrides = Int32Array.of(1, 0);
  const scaled = pool.take(N * d);
  kern.binary(BinaryOp.mul, rowShape, ys, 0, rowStrides, gs, 0, gateStrides, scaled);
  const out = new Float32Array(T * d);
  kern.indexAdd(N, d, tok, scaled, out);
  pool.give(scaled);

  const y = attach(new Tensor(out, [T, d]), [xc, gc, w1, b1, w2, b2], (gout) => {
    const gScaled = pool.take(N * d); // d loss / d (gate * y) per slot
    kern.indexSelect(N, d, gout, tok, gScaled);
    const tmp = pool.take(N * d);
    let gGates: Float32Array | null = null;
    if (gc.requiresGrad) {
      // d loss / d gate = <gout[t], y_slot>
      kern.binary(BinaryOp.mul, rowShape, gScaled, 0, rowStrides, ys, 0, rowStrides, tmp);
      const dots = new Float32Array(N);
      kern.reduce(0 /* sum */, N, d, 1, tmp, dots, null);
      gGates = new Float32Array(T * r.k);
      for (let p = 0; p < N; p++) gGates[slots[p]] = dots[p];
    }
    const gY = tmp; // d loss / d y = gate * gScaled
    kern.binary(BinaryOp.mul, rowShape, gScaled, 0, rowStrides, gs, 0, gateStrides, gY);
    const ones = new Float32Array(N).fill(1); // bias gradients = per-group column sums = ones^T @ rows
    const gb2 = b2.requiresGrad ? new Float32Array(E * d) : null;
    if (gb2) kern.gemmGroupedK(E, offsets, 1, d, 1, ones, 1, gY, d, 0, gb2, d, d);
    const gw2 = w2.requiresGrad ? new Float32Array(E * h * d) : null;
    if (gw2) kern.gemmGroupedK(E, offsets, h, d, 1, act, h, gY, d, 0, gw2, h * d, d);
    let gw1: Float32Array | null = null, gb1: Float32Array | null = null, gx: Float32Array | null = null;
    if (w1.requiresGrad || b1.requiresGrad || xc.requiresGrad) {
      const gAct = pool.take(N * h);
      kern.gemmGroupedRows(E, offsets, true, h, d, 1, gY, d, W2, h * d, d, 0, gAct, h, null);
      const gH = pool.take(N * h);
      kern.unaryBackward(UnaryOp.gelu_erf, hpre, act, gAct, gH);
      pool.give(gAct);
      if (b1.requiresGrad) {
        gb1 = new Float32Array(E * h);
        kern.gemmGroupedK(E, offsets, 1, h, 1, ones, 1, gH, h, 0, gb1, h, h);
      }
      if (w1.requiresGrad) {
        gw1 = new Float32Array(E * d * h);
        kern.gemmGroupedK(E, offsets, d, h, 1, xs, d, gH, h, 0, gw1, d * h, h);
      }
      if (xc.requiresGrad) {
        const gxs = gScaled; // reuse: no longer needed
        kern.gemmGroupedRows(E, offsets, true, d, h, 1, gH, h, W1, d * h, h, 0, gxs, d, null);
        gx = new Float32Array(T * d);
        kern.indexAdd(N, d, tok, gxs, gx);
      }
      pool.give(gH);
    }
    pool.give(gScaled, tmp, xs, hpre, act, ys);
    return [gx, gGates, gw1, gb1, gw2, gb2];
  }, 'expertMix');
  if (!y.node) pool.give(xs, hpre, act, ys); // no graph recorded: nothing will read them again
  return y;
}

/**
 * Row renormalisation of the chosen gates [T, k]: out = v / sum_j v_j.
 * Backward: gv_j = (g_j - sum_i g_i out_i) / sum_i v_i.
 */
export function renormalizeRows(v: Tensor): Tensor {
  const [T, k] = v.shape;
  const vc = v.contiguous();
  const V = vc.f32;
  const out = new Float32Array(T * k), inv = new Float32Array(T);
  for (let t = 0; t < T; t++) {
    let s = 0;
    for (let j = 0; j < k; j++) s += V[t * k + j];
    inv[t] = 1 / s;
    for (let j = 0; j < k; j++) out[t * k + j] = V[t * k + j] / s;
  }
  return attach(new Tensor(out, [T, k]), [vc], (g) => {
    const gv = new Float32Array(T * k);
    for (let t = 0; t < T; t++) {
      let dot = 0;
      for (let j = 0; j < k; j++) dot += g[t * k + j] * out[t * k + j];
      for (let j = 0; j < k; j++) gv[t * k + j] = (g[t * k + j] - dot) * inv[t];
    }
    return [gv];
  }, 'renormalizeRows');
}

/** Values of the router losses of one forward pass (unweighted). */
export interface RouterLossValues {
  balance: number;
  z: number;
}

/**
 * auxCoef * balance + zCoef * z as one op on the router's logits [T, E]. probs = softmax(logits)
 * (already computed, treated as data) and counts [E] (slots per expert before drops) are given;
 * top1 [T] is each token's most probable expert, from which lse_t = logits[t, e*] - log probs[t, e*].
 * Both gradients go straight to the logits (the balance term through the softmax Jacobian):
 *   d/dl[t,e] = p[t,e] * (auxCoef * (c_e - sum_j p[t,j] c_j) + zCoef * 2 lse_t / T),  c_e = E f_e / T.
 */
export function routerLosses(logits: Tensor, probs: Float32Array, counts: Int32Array, top1: Int32Array,
  auxCoef: number, zCoef: number, values?: RouterLossValues): Tensor {
  const [T, E] = logits.shape;
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
  /** Noisy (jittered) forwards so far; the noise of call i is a function of (seed, i). */
  jitterCalls = 0;

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

  forward(x: Tensor): Tensor {
    const [T, d] = x.shape;
    if (x.ndim !== 2 || d !== this.d) throw new Error(`MoE: expected [T, ${this.d}] input, got [${x.shape.join(', ')}]`);
    const E = this.experts, k = this.topk;

    let xr = x;
    if (this.training && this.o.jitter > 0) {
      const eps = this.o.jitter;
      const noise = new Rng(this.o.seed ?? 0, 1 + this.jitterCalls++).fillUniform(new Float32Array(T * d), 1 - eps, 1 + eps);
      xr = mul(x, new Tensor(noise, [T, d]));
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

  /** Router + k experts (+ shared experts), as the reference's macs(). */
  macsPerToken(): number {
    return this.experts * this.d + (this.topk + this.o.sharedExperts) * 2 * this.d * this.hidden;
  }
}
