/**
 * PEER: Parameter-Efficient Expert Retrieval (He 2024), as class PEER of
 * ../shared/peers/torch/moe_lm.py defines it.
 *
 *   q = BN?(x Wq^T)                                 [T, h*dk], head j's query = q[:, j*dk:(j+1)*dk]
 *   per head: s1 = q[:half] . keys[0]^T, s2 = q[half:] . keys[1]^T      (nSub sub-keys per half)
 *             top-k of s1 and of s2, k*k sums s1[a] + s2[b], top-k of those -> ids, scores
 *             g = softmax(scores)                                        (over the head's k)
 *   y = sum_heads sum_i g_i act(u_i . x) v_i        (pkm: y = sum g_i v_i, no u table)
 *
 * Experts are single neurons: rows u_i, v_i of two [N, d] tables, N = nSub^2, shared by all heads.
 * The fused kernels (../backend/peer_kernels.ts) never form the [T*h, N] score matrix nor the
 * gathered [T, h*k, d] rows.
 *
 * Gradients of u and v are row-sparse: backward coalesces the T*h*k expert ids and appends one
 * { ids (unique, ascending), values [U, d] } chunk per table to `param.sparseGrad`, leaving
 * `.grad` null; sparse Adam (../optim/sparse_adam.ts) consumes them. With sparseGrads: false the
 * layer returns dense [N, d] gradients instead (small models, tests, dense optimizers).
 *
 * Parameter names follow the reference state_dict: keys, query.weight, bn.weight, bn.bias,
 * bn.running_mean, bn.running_var, bn.num_batches_tracked (buffers), u.weight, v.weight.
 *
 * Memory (peer1m-all-d256: 4 layers, N = 2^20, d = 256, h = 8, k = 16, T = 2048 tokens/step):
 *   u, v tables           4 x 2 x N x d x 4 B                         =  8 GiB
 *   SparseAdam moments    bf16: 4 x 2 x 2 x N x d x 2 B               =  8 GiB  (fp32: 16 GiB)
 *                         zero pages until a row is first updated, so this grows to 8 GiB over training
 *   sparse grad rows      U <= min(N, T*h*k = 262,144) rows per table, pooled per layer (+25% headroom):
 *                         <= 4 x 2 x 1.25 x 262,144 x d x 4 B         ~= 2.5 GiB  (random routing: U ~ 200k, ~1.9 GiB)
 *   per-layer activations q [T, h*dk] 8 MiB, ids/scores/g/a [T, h*k] 1 MiB each, y 2 MiB; backward index
 *                         3 x T*h*k int32 = 3 MiB, coalescing scratch N int32 = 4 MiB
 *   -> about 18.5 GiB with bf16 moments plus the small dense model and Node (fits 24 GiB); fp32
 *   moments would need ~26.5 GiB. No [N, d] temporary exists on the sparse path (the dense
 *   fallback, sparseGrads: false, allocates one [N, d] gradient per table per backward).
 * The tables, moments and row buffers are advised to use transparent huge pages (fewer page faults
 * and TLB misses on the random row gathers).
 */
import { Tensor, attach, linear, zeros, full, parameter } from '../tensor/index.js';
import { peerKernels, PeerAct, adviseHugePages } from '../backend/peer_kernels.js';
import { FeedForward, type FfnStats } from './ffn.js';
import { Module } from './module.js';
import { Linear, Embedding } from './layers.js';
import { Rng } from '../util/random.js';

export interface PEEROptions {
  /** Sub-keys per half; N = nSub^2 experts. */
  nSub: number;
  /** Query heads (each retrieves k experts from the shared pool). */
  heads: number;
  /** Experts per head. */
  k: number;
  /** Query size per head (even); each half is scored against its own sub-key table. */
  dKey: number;
  /** BatchNorm1d over the h*dKey query features. */
  bn: boolean;
  activation: 'gelu' | 'relu';
  /** Product-key memory: values only, y = sum g_i v_i (no u table, no activation). */
  pkm: boolean;
  /** Row-sparse u/v gradients in `sparseGrad` (default true); false gives dense [N, d] .grad. */
  sparseGrads?: boolean;
}

/** Tensors whose gradients arrive in `sparseGrad` (the expert tables of sparse-gradient PEER layers). */
const sparseParamSet = new WeakSet<Tensor>();

/** True if p is an expert table whose gradient comes as row-sparse chunks (give it to SparseAdam). */
export function isSparseParam(p: Tensor): boolean {
  return sparseParamSet.has(p);
}

/**
 * Splits named parameters into the row-sparse expert tables (for SparseAdam) and the rest (for the
 * dense optimizer): `const { sparse, dense } = splitSparseParams(model.namedParameters())`.
 */
export function splitSparseParams(named: [string, Tensor][]): { sparse: [string, Tensor][]; dense: [string, Tensor][] } {
  const sparse: [string, Tensor][] = [], dense: [string, Tensor][] = [];
  for (const e of named) (isSparseParam(e[1]) ? sparse : dense).push(e);
  return { sparse, dense };
}

/**
 * torch.nn.BatchNorm1d over the last axis of [T, C]: in training, normalises with the batch mean
 * and biased variance and updates running_mean / running_var (unbiased) with momentum 0.1; in
 * eval, normalises with the running statistics. eps 1e-5, affine weight (ones) and bias (zeros).
 */
export class BatchNorm1d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly running_mean: Tensor;
  readonly running_var: Tensor;
  readonly num_batches_tracked: Tensor;
  constructor(readonly C: number, readonly eps = 1e-5, readonly momentum = 0.1) {
    super();
    this.weight = this.param('weight', full([C], 1));
    this.bias = this.param('bias', zeros([C]));
    this.running_mean = this.buffer('running_mean', zeros([C]));
    this.running_var = this.buffer('running_var', full([C], 1));
    this.num_batches_tracked = this.buffer('num_batches_tracked', new Tensor(new Int32Array(1), []));
  }

  forward(x: Tensor): Tensor {
    const C = this.C;
    if (x.ndim !== 2 || x.shape[1] !== C) throw new Error(`BatchNorm1d: expected [T, ${C}], got [${x.shape.join(', ')}]`);
    const T = x.shape[0];
    const training = this.training;
    if (training && T < 2) throw new Error(`BatchNorm1d: expected more than 1 value per channel when training, got [${T}, ${C}]`);
    const xc = x.contiguous();
    const K = peerKernels();
    const y = new Float32Array(T * C), mean = new Float32Array(C), rstd = new Float32Array(C);
    K.peerBatchNorm(T, C, training, this.eps, this.momentum, xc.f32, this.weight.f32, this.bias.f32,
      this.running_mean.f32, this.running_var.f32, y, mean, rstd);
    if (training) (this.num_batches_tracked.data as Int32Array)[this.num_batches_tracked.offset]++;
    return attach(new Tensor(y, [T, C]), [xc, this.weight, this.bias], (gy) => {
      const gx = new Float32Array(T * C), gw = new Float32Array(C), gb = new Float32Array(C);
      K.peerBatchNormBackward(T, C, training, xc.f32, this.weight.f32, mean, rstd, gy, gx, gw, gb);
      return [gx, gw, gb];
    }, 'batchNorm1d');
  }
}

export class PEER extends FeedForward {
  readonly keys: Tensor;
  readonly query: Linear;
  readonly bn: BatchNorm1d | null;
  readonly u: Embedding | null;
  readonly v: Embedding;
  readonly N: number;
  readonly sparseGrads: boolean;
  private readonly act: number;
  /** Expert ids [T, h*k] chosen by the last forward (for statistics and tests). */
  lastIds: Int32Array | null = null;
  private readonly pools = new Map<Tensor, Float32Array[]>();

  constructor(readonly d: number, readonly o: PEEROptions, rng: Rng = new Rng(0)) {
    super();
    const { nSub, heads, k, dKey } = o;
    for (const [n, v] of [['nSub', nSub], ['heads', heads], ['k', k], ['dKey', dKey], ['d', d]] as const) {
      if (!(Number.isInteger(v) && v >= 1)) throw new Error(`PEER: ${n} must be a positive integer, got ${v}`);
    }
    if (dKey % 2 !== 0) throw new Error(`PEER: dKey must be even, got ${dKey}`);
    if (k > nSub) throw new Error(`PEER: k (${k}) must be <= nSub (${nSub})`);
    if (nSub * nSub > 0x7fffffff) throw new Error(`PEER: nSub^2 = ${nSub * nSub} experts exceeds int32 ids`);
    if (o.activation !== 'gelu' && o.activation !== 'relu') throw new Error(`PEER: unknown activation '${o.activation}'`);
    this.N = nSub * nSub;
    this.sparseGrads = o.sparseGrads ?? true;
    this.act = o.activation === 'gelu' ? PeerAct.gelu : PeerAct.relu;
    const half = dKey / 2;
    // keys ~ randn / sqrt(dKey/2), as the reference initialises them (initGPT leaves keys alone)
    this.keys = this.param('keys', parameter(rng.fillNormal(new Float32Array(2 * nSub * half), 0, 1 / Math.sqrt(half)), [2, nSub, half]));
    this.query = this.child('query', new Linear(d, heads * dKey, false));
    this.bn = o.bn ? this.child('bn', new BatchNorm1d(heads * dKey)) : null;
    this.u = o.pkm ? null : this.child('u', new Embedding(this.N, d));
    this.v = this.child('v', new Embedding(this.N, d));
    // the tables are still untouched zero pages: ask for huge pages before anything writes them
    if (this.u) adviseHugePages(this.u.weight.f32);
    adviseHugePages(this.v.weight.f32);
    if (this.sparseGrads) {
      if (this.u) sparseParamSet.add(this.u.weight);
      sparseParamSet.add(this.v.weight);
    }
  }

  /** x: [T, d] -> [T, d]. */
  forward(x: Tensor): Tensor {
    const { d, N } = this;
    const { heads: h, k, dKey, nSub } = this.o;
    if (x.ndim !== 2 || x.shape[1] !== d) throw new Error(`PEER: expected input [T, ${d}], got [${x.shape.join(', ')}]`);
    const T = x.shape[0], hk = h * k, half = dKey / 2;
    let q = linear(x, this.query.weight, null); // [T, h*dk]
    if (this.bn) q = this.bn.forward(q);
    const xc = x.contiguous(), qc = q.contiguous();
    const K = peerKernels();
    const ids = new Int32Array(T * hk), scores = new Float32Array(T * hk);
    K.peerRetrieve(T, h, nSub, half, k, qc.f32, this.keys.f32, ids, scores);
    const uW = this.u ? this.u.weight : null, vW = this.v.weight;
    const g = new Float32Array(T * hk), a = uW ? new Float32Array(T * hk) : null, y = new Float32Array(T * d);
    K.peerForward(T, d, N, hk, k, this.act, xc.f32, uW ? uW.f32 : null, vW.f32, ids, scores, g, a, y);
    this.lastIds = ids;
    const inputs = uW ? [xc, qc, this.keys, vW, uW] : [xc, qc, this.keys, vW];
    return attach(new Tensor(y, [T, d]), inputs, (gy) => {
      // Coalesce the T*h*k picks, then either pass over the touched experts once (expert-major:
      // each u/v row read once; wins when experts repeat, U <= n/2) or over the tokens (each pick
      // reads its rows; better when nearly every pick is a distinct expert) plus row sums.
      const n = T * hk;
      const uniq = new Int32Array(n), offsets = new Int32Array(n + 1), order = new Int32Array(n);
      const U = K.peerCoalesce(n, N, ids, uniq, offsets, order);
      const rowIds = uniq.subarray(0, U).slice();
      const gx = uW ? new Float32Array(T * d) : null, gscores = new Float32Array(n);
      const gvRows = vW.requiresGrad ? this.rowBuffer(vW, U * d) : null;
      const guRows = uW && uW.requiresGrad ? this.rowBuffer(uW, U * d) : null;
      const uF = uW ? uW.f32 : null;
      if (2 * U <= n) {
        K.peerBackwardRows(T, d, N, hk, k, this.act, xc.f32, uF, vW.f32, ids, g, a, gy, U, uniq, offsets, order,
          gx, gscores, guRows, gvRows);
      } else {
        const cv = new Float32Array(n), cu = uW ? new Float32Array(n) : null;
        K.peerBackward(T, d, N, hk, k, this.act, xc.f32, uF, vW.f32, ids, g, a, gy, gx, gscores, cu, cv);
        if (gvRows) K.peerRowGrad(U, d, hk, offsets, order, cv, gy, gvRows);
        if (guRows) K.peerRowGrad(U, d, hk, offsets, order, cu, xc.f32, guRows);
      }
      let gq: Float32Array | null = null, gkeys: Float32Array | null = null;
      if (qc.requiresGrad || this.keys.requiresGrad) {
        gq = new Float32Array(T * h * dKey);
        gkeys = new Float32Array(this.keys.size);
        K.peerRetrieveBackward(T, h, nSub, half, k, qc.f32, this.keys.f32, ids, gscores, gq, gkeys);
      }
      const gv = gvRows ? this.emit(vW, rowIds, gvRows) : null;
      const gu = guRows ? this.emit(uW!, rowIds, guRows) : null;
      return uW ? [gx, gq, gkeys, gv, gu] : [null, gq, gkeys, gv];
    }, 'peer');
  }

  /**
   * A [n] float buffer for p's gradient rows (contents undefined). Sparse chunks are big (U x d, up to T*h*k*d floats)
   * and freshly mapped memory costs a page fault per 4 KiB, so each table keeps a small pool and
   * reuses any buffer no chunk in p.sparseGrad still refers to (i.e. after the optimizer's
   * zeroGrad dropped it). Callers must not keep chunks past zeroGrad without copying them.
   */
  private rowBuffer(p: Tensor, n: number): Float32Array {
    if (!this.sparseGrads) return new Float32Array(n);
    let pool = this.pools.get(p);
    if (!pool) this.pools.set(p, (pool = []));
    const inUse = new Set<ArrayBufferLike>((p.sparseGrad ?? []).map((c) => c.values.buffer));
    const free = pool.filter((b) => !inUse.has(b.buffer));
    const fit = free.find((b) => b.length >= n);
    if (fit) return fit.subarray(0, n); // peerRowGrad writes every element
    for (const b of free) pool.splice(pool.indexOf(b), 1); // too small: let them go
    const buf = new Float32Array(Math.max(n, Math.min(Math.ceil(n * 1.25), this.N * this.d))); // headroom: U varies
    adviseHugePages(buf);
    pool.push(buf);
    return buf.subarray(0, n);
  }

  /** Sparse: appends the chunk to p.sparseGrad and returns null; dense: returns the [N, d] gradient. */
  private emit(p: Tensor, ids: Int32Array, rows: Float32Array): Float32Array | null {
    if (this.sparseGrads) {
      (p.sparseGrad ??= []).push({ ids, values: rows });
      return null;
    }
    const d = this.d, dense = new Float32Array(this.N * d);
    for (let i = 0; i < ids.length; i++) dense.set(rows.subarray(i * d, i * d + d), ids[i] * d);
    return dense;
  }

  /** The expert tables whose gradients come as row-sparse chunks (empty with sparseGrads: false). */
  sparseParameters(): Tensor[] {
    if (!this.sparseGrads) return [];
    return this.u ? [this.u.weight, this.v.weight] : [this.v.weight];
  }

  /** Expert usage of the last forward: distinct experts hit and their fraction of N. */
  override stats(): FfnStats | null {
    const ids = this.lastIds;
    if (!ids) return null;
    const seen = new Uint8Array(this.N);
    let U = 0;
    for (let i = 0; i < ids.length; i++) {
      if (!seen[ids[i]]) {
        seen[ids[i]] = 1;
        U++;
      }
    }
    return { peerUniqueExperts: U, peerUsedFraction: U / this.N };
  }

  /** The reference's count: query projection + h heads x both sub-key tables + h*k experts x (u dot, v axpy). */
  macsPerToken(): number {
    const { heads: h, k } = this.o;
    return this.query.weight.size + h * this.keys.size + h * k * (this.u ? 2 : 1) * this.d;
  }
}
