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
 * The module holds the parameters and composes ops: linear -> batchNorm? -> peerRetrieve ->
 * peerExperts (../tensor/ops/peer.ts), whose kernels never form the [T*h, N] score matrix nor the
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
 * bf16Tables stores u and v as bfloat16 bit patterns (Tensor dtype 'bf16'): the kernels widen each
 * row (exact) and accumulate in float32, gradient rows stay float32, and SparseAdam stores updated
 * rows with stochastic rounding. Such tables need row-sparse gradients (sparseGrads).
 *
 * Memory (peer1m-all-d256: 4 layers, N = 2^20, d = 256, h = 8, k = 16, T = 2048 tokens/step):
 *   u, v tables           4 x 2 x N x d x 4 B                         =  8 GiB  (bf16Tables: 4 GiB)
 *   SparseAdam moments    bf16: 4 x 2 x 2 x N x d x 2 B               =  8 GiB  (fp32: 16 GiB)
 *                         zero pages until a row is first updated, so this grows to 8 GiB over training
 *   sparse grad rows      U <= min(N, T*h*k = 262,144) rows per table, pooled per layer (+25% headroom):
 *                         <= 4 x 2 x 1.25 x 262,144 x d x 4 B         ~= 2.5 GiB  (random routing: U ~ 200k, ~1.9 GiB)
 *   per-layer activations q [T, h*dk] 8 MiB, ids/scores/g/a [T, h*k] 1 MiB each, y 2 MiB; backward index
 *                         3 x T*h*k int32 = 3 MiB, coalescing scratch N int32 = 4 MiB
 *   usage counters        [h, N] uint32 per layer, allocated at the first evaluation (peer_usage.ts): 4 x 32 MiB
 *   -> about 18.5 GiB with bf16 moments plus the small dense model and Node (fits 24 GiB); fp32
 *   moments would need ~26.5 GiB; bf16 tables and moments ~14.5 GiB (README, PEER memory). No [N, d] temporary exists on the sparse path (the dense
 *   fallback, sparseGrads: false, allocates one [N, d] gradient per table per backward).
 * The tables, moments and row buffers are advised to use transparent huge pages (fewer page faults
 * and TLB misses on the random row gathers).
 */
import { Tensor, linear, parameter, peerRetrieve, peerExperts, RowGradPool, adviseHugePages } from '../tensor/index.js';
import { Module } from './module.js';
import { FeedForward, type FfnStats } from './ffn.js';
import { Linear, Embedding } from './layers.js';
import { BatchNorm1d } from './batchnorm.js';
import { Rng } from '../util/random.js';
import type { PeerFfnSpec } from '../spec/ffn/peer.js';
import { PeerUsage } from './peer_usage.js';

/** The layer's sizes as the model spec resolves them (spec/ffn/peer.ts documents each field). */
export type PEEROptions = Pick<PeerFfnSpec, 'nSub' | 'heads' | 'k' | 'dKey' | 'bn' | 'activation' | 'pkm'> & {
  /** Row-sparse u/v gradients in `sparseGrad` (default true); false gives dense [N, d] .grad. */
  sparseGrads?: boolean;
  /** Store u and v as bfloat16 (default false); needs sparseGrads. */
  bf16Tables?: boolean;
};

/** An [N, d] table of bfloat16 weights (zero until initialised), named `weight` as torch's Embedding. */
export class Bf16Table extends Module {
  readonly weight: Tensor;
  constructor(readonly num: number, readonly dim: number) {
    super();
    this.weight = this.param('weight', new Tensor(new Uint16Array(num * dim), [num, dim]));
  }
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

export class PEER extends FeedForward {
  readonly keys: Tensor;
  readonly query: Linear;
  readonly bn: BatchNorm1d | null;
  readonly u: Embedding | Bf16Table | null;
  readonly v: Embedding | Bf16Table;
  readonly N: number;
  readonly sparseGrads: boolean;
  /** Expert ids [T, h*k] chosen by the last forward (for statistics and tests). */
  lastIds: Int32Array | null = null;
  /** Expert use over the evaluation forwards since the last resetStats() (peer_usage.ts). */
  readonly usage: PeerUsage;
  /** Buffers of the row-sparse u/v gradient chunks (null: dense gradients). */
  private readonly rowGrads: RowGradPool | null;

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
    if (o.bf16Tables && o.sparseGrads === false) throw new Error('PEER: bf16Tables needs row-sparse gradients (sparseGrads: true): no dense optimizer updates bf16 weights');
    this.N = nSub * nSub;
    this.usage = new PeerUsage(this.N, heads, k);
    this.sparseGrads = o.sparseGrads ?? true;
    this.rowGrads = this.sparseGrads ? new RowGradPool() : null;
    const half = dKey / 2;
    // keys ~ randn / sqrt(dKey/2), as the reference initialises them (initGPT leaves keys alone)
    this.keys = this.param('keys', parameter(rng.fillNormal(new Float32Array(2 * nSub * half), 0, 1 / Math.sqrt(half)), [2, nSub, half]));
    this.query = this.child('query', new Linear(d, heads * dKey, false));
    this.bn = o.bn ? this.child('bn', new BatchNorm1d(heads * dKey)) : null;
    const table = () => (o.bf16Tables ? new Bf16Table(this.N, d) : new Embedding(this.N, d));
    this.u = o.pkm ? null : this.child('u', table());
    this.v = this.child('v', table());
    // the tables are still untouched zero pages: ask for huge pages before anything writes them
    const data = (t: Tensor) => (t.dtype === 'bf16' ? t.bf16 : t.f32);
    if (this.u) adviseHugePages(data(this.u.weight));
    adviseHugePages(data(this.v.weight));
    if (this.sparseGrads) {
      if (this.u) sparseParamSet.add(this.u.weight);
      sparseParamSet.add(this.v.weight);
    }
  }

  /** x: [T, d] -> [T, d]. */
  forward(x: Tensor): Tensor {
    const { d } = this;
    const { heads, k, activation } = this.o;
    if (x.ndim !== 2 || x.shape[1] !== d) throw new Error(`PEER: expected input [T, ${d}], got [${x.shape.join(', ')}]`);
    let q = linear(x, this.query.weight, null); // [T, h*dk]
    if (this.bn) q = this.bn.forward(q);
    const { ids, scores } = peerRetrieve(q, this.keys, heads, k);
    this.lastIds = ids.i32;
    // counted in evaluation only: training steps need not pay a random write per retrieval
    if (!this.training) this.usage.add(ids.i32);
    // bf16 tables: factored gradient chunks, so no [U, d] float rows sit beside the halved tables
    return peerExperts(x, ids, scores, this.u ? this.u.weight : null, this.v.weight, { k, activation, rowGrads: this.rowGrads, factoredRowGrads: this.v.weight.dtype === 'bf16' });
  }

  /** The expert tables whose gradients come as row-sparse chunks (empty with sparseGrads: false). */
  sparseParameters(): Tensor[] {
    if (!this.sparseGrads) return [];
    return this.u ? [this.u.weight, this.v.weight] : [this.v.weight];
  }

  /**
   * Expert use over the evaluation-mode forwards since the last resetStats(): coverage, KL from
   * uniform and evenness, per layer and per head (PeerUsage.summary); null when there was none.
   */
  override stats(): FfnStats | null {
    return this.usage.summary();
  }

  override resetStats(): void {
    this.usage.reset();
  }
}
