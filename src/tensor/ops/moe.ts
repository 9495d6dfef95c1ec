/**
 * Mixture-of-Experts dispatch ops (MegaBlocks style): the routing plan, the expert computation as
 * one composite autograd op, and top-k gate renormalisation.
 *
 * Ownership: every op returns arrays it never touches again (from the buffer pool, see pool.ts).
 * The activations expertMix saves for its backward and its temporaries are pool scratch buffers that
 * never leave the op: released once backward has used them (at once when no graph is recorded).
 */
import { backend, BinaryOp, ReduceOp, UnaryOp } from '../../backend/index.js';
import { Tensor, attach } from '../tensor.js';
import { matmulPrecision } from '../precision.js';
import { alloc, allocZeroed, release, scratch } from '../pool.js';
import { affineGrouped, centerOf, weightGradientGrouped } from './bf16_center.js';

/** The routing of one forward pass: which slots each expert processes, in expert order. */
export interface Route {
  /** Tokens. */
  T: number;
  /** Entries of the gate vector the slots index: T*k for token choice (slot s = t*k + j), E*C for
   *  expert choice (slot s = e*C + c). */
  gateCount: number;
  /** Experts (groups). */
  E: number;
  /** Kept slots, grouped by expert. [N] */
  slots: Int32Array;
  /** Source token of each kept slot. [N] */
  tok: Int32Array;
  /** Group boundaries into slots: expert e owns [offsets[e], offsets[e+1]). [E+1] */
  offsets: Int32Array;
  /** Slots routed to each expert before drops. [E] */
  counts: Int32Array;
  /** Capacity per expert (Infinity when dropless). */
  capacity: number;
}

/**
 * Token-choice route: groups the T*k routing choices `idx` ([T*k], expert of slot s = t*k + j) by
 * expert with a stable counting sort (slots ascending within an expert) and applies the capacity rule: a slot whose position within its expert's list is
 * >= capacity is dropped (the reference's rule: earlier tokens win). capacity = Infinity is dropless.
 * The returned arrays are fresh and owned by the caller.
 */
export function planRoute(idx: Int32Array, T: number, k: number, E: number, capacity: number): Route {
  const n = T * k;
  if (idx.length !== n) throw new Error(`planRoute: idx has ${idx.length} entries, expected T*k = ${n}`);
  if (!(capacity >= 0)) throw new Error(`planRoute: capacity must be >= 0 (Infinity for dropless), got ${capacity}`);
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
  return { T, gateCount: n, E, slots, tok, offsets, counts, capacity };
}

/**
 * The expert computation as one autograd op: for every kept slot p of the route (token t, expert e,
 * gate g = gates[slot]),
 *   out[t] += g * (gelu_erf(x[t] W1_e + b1_e) W2_e + b2_e).
 * x [T, d], gates [route.gateCount] (any shape: [T, k] for token choice, [E, C] for expert choice),
 * w1 [E, d, h], b1 [E, h], w2 [E, h, d], b2 [E, d] -> fresh [T, d].
 * Dropped slots contribute nothing (and get a zero gate gradient).
 * With `dropout` {p, seed} (expert dropout, Fedus et al. 2021 §2.4: dropout on the interim
 * feed-forward activations of the experts) the activations of the N kept slots, laid out [N, h] in
 * route order, go through the `dropout` kernel before fc2:
 *   out[t] += g * ((gelu_erf(x[t] W1_e + b1_e) * m_p / (1 - p)) W2_e + b2_e),  m = the kernel's mask for (seed, slot*h + j)
 * so the same (seed, route) gives the same mask; backward applies the same mask and scale.
 * Forward: gather rows, ONE grouped GEMM for every expert's fc1 (+bias), gelu, ONE grouped GEMM for
 * fc2 (+bias), gate scale, scatter-add to tokens. Backward (hand written): the same grouped GEMMs
 * with transposed B for input gradients, grouped-K GEMMs for weight and bias gradients.
 * The gathered rows, pre-activations, activations and expert outputs are saved for backward in
 * scratch buffers and released once backward has run (at once when no graph is recorded).
 */
export interface ExpertMixOptions {
  /** Expert dropout on the activations: p in [0, 1), seed a uint32 (p = 0: none). */
  dropout?: { p: number; seed: number };
}

export function expertMix(x: Tensor, gates: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, r: Route,
  opts: ExpertMixOptions = {}): Tensor {
  const drop = opts.dropout && opts.dropout.p > 0 ? opts.dropout : null;
  if (drop && !(drop.p < 1)) throw new Error(`expertMix: dropout p must be in [0, 1), got ${drop.p}`);
  if (drop && !(Number.isInteger(drop.seed) && drop.seed >= 0 && drop.seed < 2 ** 32)) throw new Error(`expertMix: dropout seed must be a uint32, got ${drop.seed}`);
  const [T, d] = x.shape;
  const [E, , h] = w1.shape;
  if (T !== r.T || E !== r.E || gates.size !== r.gateCount) throw new Error('expertMix: route does not match the inputs');
  if (w1.shape[1] !== d || w2.shape[0] !== E || w2.shape[1] !== h || w2.shape[2] !== d || b1.size !== E * h || b2.size !== E * d) {
    throw new Error(`expertMix: expert weights w1 [${w1.shape.join(', ')}], w2 [${w2.shape.join(', ')}] do not fit x [${x.shape.join(', ')}]`);
  }
  const kern = backend();
  // Under bf16 precision the expert GEMMs (both layers, forward and backward) take bf16 operands with
  // fp32 accumulation; the bias gradients (column sums) stay fp32 reductions. Each layer's input is
  // centred on its mean over rows in the forward and weight-gradient GEMMs (bf16_center.ts).
  const bf16 = matmulPrecision() === 'bf16';
  const gemmRows = bf16 ? kern.gemmGroupedRowsBf16 : kern.gemmGroupedRows, gemmK = bf16 ? kern.gemmGroupedKBf16 : kern.gemmGroupedK;
  const xc = x.contiguous(), gc = gates.contiguous();
  const X = xc.f32, W1 = w1.f32, B1 = b1.f32, W2 = w2.f32, B2 = b2.f32, gflat = gc.f32;
  const { tok, slots, offsets } = r;
  const N = tok.length;
  const gs = scratch(N); // gate of each kept slot
  for (let p = 0; p < N; p++) gs[p] = gflat[slots[p]];

  const xs = scratch(N * d);
  kern.indexSelect(N, d, X, tok, xs);
  const hpre = scratch(N * h);
  const cx = centerOf(X, T, d);
  affineGrouped(gemmRows, E, offsets, xs, d, W1, h, B1, cx, hpre);
  const act = scratch(N * h);
  kern.unary(UnaryOp.gelu_erf, hpre, act);
  // fc2's input: the activations, or with expert dropout their masked and rescaled copy
  let fc2In = act, mask: Uint8Array | null = null;
  if (drop) {
    mask = new Uint8Array(N * h);
    fc2In = scratch(N * h);
    kern.dropout(drop.p, drop.seed, act, fc2In, mask);
  }
  const ys = scratch(N * d);
  const ca = centerOf(fc2In, N, h);
  affineGrouped(gemmRows, E, offsets, fc2In, h, W2, d, B2, ca, ys);
  const rowShape = Int32Array.of(N, d), rowStrides = Int32Array.of(d, 1), gateStrides = Int32Array.of(1, 0);
  const scaled = scratch(N * d);
  kern.binary(BinaryOp.mul, rowShape, ys, 0, rowStrides, gs, 0, gateStrides, scaled);
  const out = allocZeroed(T * d); // indexAdd accumulates
  kern.indexAdd(N, d, tok, scaled, out);
  release(scaled);

  const y = attach(new Tensor(out, [T, d]), [xc, gc, w1, b1, w2, b2], (gout) => {
    const gScaled = scratch(N * d); // d loss / d (gate * y) per slot
    kern.indexSelect(N, d, gout, tok, gScaled);
    const tmp = scratch(N * d);
    let gGates: Float32Array | null = null;
    if (gc.requiresGrad) {
      // d loss / d gate = <gout[t], y_slot>
      kern.binary(BinaryOp.mul, rowShape, gScaled, 0, rowStrides, ys, 0, rowStrides, tmp);
      const dots = scratch(N);
      kern.reduce(ReduceOp.sum, N, d, 1, tmp, dots, null);
      gGates = allocZeroed(r.gateCount); // dropped slots keep 0
      for (let p = 0; p < N; p++) gGates[slots[p]] = dots[p];
      release(dots);
    }
    const gY = tmp; // d loss / d y = gate * gScaled
    kern.binary(BinaryOp.mul, rowShape, gScaled, 0, rowStrides, gs, 0, gateStrides, gY);
    const ones = scratch(N).fill(1); // bias gradients = per-group column sums = ones^T @ rows
    // per-expert column sums of a gradient (beta 0: written, empty groups included)
    const colSums = (g: Float32Array, n: number, into: Float32Array | null): Float32Array => {
      const out = into ?? new Float32Array(E * n);
      kern.gemmGroupedK(E, offsets, 1, n, 1, ones, 1, g, n, 0, out, n, n);
      return out;
    };
    const gb2 = b2.requiresGrad ? colSums(gY, d, alloc(E * d)) : null;
    const gw2 = w2.requiresGrad ? alloc(E * h * d) : null;
    if (gw2) weightGradientGrouped(gemmK, E, offsets, fc2In, h, gY, d, ca, () => gb2 ?? colSums(gY, d, null), gw2);
    let gw1: Float32Array | null = null, gb1: Float32Array | null = null, gx: Float32Array | null = null;
    if (w1.requiresGrad || b1.requiresGrad || xc.requiresGrad) {
      let gAct = scratch(N * h);
      gemmRows(E, offsets, true, h, d, 1, gY, d, W2, h * d, d, 0, gAct, h, null);
      if (drop) {
        const masked = scratch(N * h);
        kern.dropout(drop.p, drop.seed, gAct, masked, mask!); // same seed: same mask and scale as the forward
        release(gAct);
        gAct = masked;
      }
      const gH = scratch(N * h);
      kern.unaryBackward(UnaryOp.gelu_erf, hpre, act, gAct, gH);
      release(gAct);
      if (b1.requiresGrad) gb1 = colSums(gH, h, alloc(E * h));
      if (w1.requiresGrad) {
        gw1 = alloc(E * d * h);
        weightGradientGrouped(gemmK, E, offsets, xs, d, gH, h, cx, () => gb1 ?? colSums(gH, h, null), gw1);
      }
      if (xc.requiresGrad) {
        const gxs = gScaled; // reuse: no longer needed
        gemmRows(E, offsets, true, d, h, 1, gH, h, W1, d * h, h, 0, gxs, d, null);
        gx = allocZeroed(T * d); // indexAdd accumulates
        kern.indexAdd(N, d, tok, gxs, gx);
      }
      release(gH);
    }
    release(gScaled, tmp, xs, hpre, act, ys, gs, ones);
    if (drop) release(fc2In);
    return [gx, gGates, gw1, gb1, gw2, gb2];
  }, 'expertMix');
  if (!y.node) {
    release(xs, hpre, act, ys, gs); // no graph recorded: nothing will read them again
    if (drop) release(fc2In);
  }
  return y;
}

/**
 * Row renormalisation of the chosen gates v [T, k] (top-k gate renormalisation):
 *   out[t, j] = v[t, j] / sum_i v[t, i].
 * Backward: gv[t, j] = (g[t, j] - sum_i g[t, i] out[t, i]) / sum_i v[t, i]. Returns a fresh [T, k].
 */
export function renormalizeRows(v: Tensor): Tensor {
  if (v.ndim !== 2) throw new Error(`renormalizeRows: expected [T, k] gates, got [${v.shape.join(', ')}]`);
  const [T, k] = v.shape;
  const vc = v.contiguous();
  const V = vc.f32;
  const out = alloc(T * k), inv = alloc(T);
  for (let t = 0; t < T; t++) {
    let s = 0;
    for (let j = 0; j < k; j++) s += V[t * k + j];
    inv[t] = 1 / s;
    for (let j = 0; j < k; j++) out[t * k + j] = V[t * k + j] / s;
  }
  return attach(new Tensor(out, [T, k]), [vc], (g) => {
    const gv = alloc(T * k);
    for (let t = 0; t < T; t++) {
      let dot = 0;
      for (let j = 0; j < k; j++) dot += g[t * k + j] * out[t * k + j];
      for (let j = 0; j < k; j++) gv[t * k + j] = (g[t * k + j] - dot) * inv[t];
    }
    return [gv];
  }, 'renormalizeRows');
}
