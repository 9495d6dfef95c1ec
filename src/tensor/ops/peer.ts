/**
 * PEER ops (He 2024, "Mixture of A Million Experts"): product-key retrieval and the expert mixture
 * over single-neuron experts, each with its backward. Shapes: T tokens, d width, h heads, k experts
 * per head, hk = h*k, dk = 2*half query size per head, nSub sub-keys per half, N = nSub^2 experts.
 * The kernels never form the [T*h, N] score matrix nor the gathered [T, hk, d] rows.
 */
import { backend, PeerAct, type Kernels, type PeerActName } from '../../backend/index.js';
import { dispatchAllowsUnion, unionBackward, unionForward, useUnion, type PickIndex } from './peer_union.js';
import { Tensor, attach } from '../tensor.js';
import { adviseHugePages } from '../memory.js';
import { alloc, allocZeroed, release, scratch } from '../pool.js';

export interface PeerRetrieval {
  /** Expert ids, int32 [T, h*k] (head j's picks at columns j*k .. j*k+k), no gradient. */
  ids: Tensor;
  /** Their scores, float32 [T, h*k], descending within each head; differentiable. */
  scores: Tensor;
}

/**
 * Product-key top-k retrieval. q: [T, h*dk] (head j's query q_tj = [q1 | q2] at columns
 * j*dk .. j*dk+dk), keys: [2, nSub, half] with dk = 2*half:
 *   s1[i1] = q1 . keys[0][i1],  s2[i2] = q2 . keys[1][i2]
 *   ids = the k pairs (i1, i2) with the largest s1[i1] + s2[i2], as expert ids i1*nSub + i2,
 *   scores = s1[i1] + s2[i2]   (descending; ties keep the lower index)
 * found from the top-k of each half (exact: any pair in the top k has both halves in their top k).
 * Gradients reach q and keys through the scores (the ids are piecewise constant):
 *   d score / d q1 = keys[0][i1],  d score / d keys[0][i1] = q1   (likewise for the second half).
 * Buffers: ids and scores are fresh; backward keeps q (made contiguous), keys and ids.
 */
export function peerRetrieve(q: Tensor, keys: Tensor, heads: number, k: number): PeerRetrieval {
  if (keys.ndim !== 3 || keys.shape[0] !== 2) throw new Error(`peerRetrieve: keys must be [2, nSub, half], got [${keys.shape.join(', ')}]`);
  const [, nSub, half] = keys.shape, dk = 2 * half;
  if (q.ndim !== 2 || q.shape[1] !== heads * dk) throw new Error(`peerRetrieve: q must be [T, ${heads * dk}] (${heads} heads x ${dk}), got [${q.shape.join(', ')}]`);
  if (!(Number.isInteger(k) && k >= 1 && k <= nSub)) throw new Error(`peerRetrieve: k must be an integer in [1, nSub = ${nSub}], got ${k}`);
  const T = q.shape[0], n = T * heads * k;
  const qc = q.contiguous();
  const ids = new Int32Array(n), scores = alloc(n);
  const K = backend();
  K.peerRetrieve(T, heads, nSub, half, k, qc.f32, keys.f32, ids, scores);
  const s = attach(new Tensor(scores, [T, heads * k]), [qc, keys], (gs) => {
    const gq = alloc(qc.size), gkeys = allocZeroed(keys.size); // gkeys accumulates
    K.peerRetrieveBackward(T, heads, nSub, half, k, qc.f32, keys.f32, ids, gs, gq, gkeys);
    return [gq, gkeys];
  }, 'peerRetrieve');
  return { ids: new Tensor(ids, [T, heads * k]), scores: s };
}

/**
 * Reusable buffers for row-sparse table gradients. A chunk is U x d floats (U <= T*h*k distinct
 * experts) and fresh memory costs a page fault per 4 KiB, so each table keeps a few buffers and
 * hands out any that no chunk in its `sparseGrad` still refers to (i.e. after the optimizer's
 * zeroGrad dropped it). Whoever keeps a chunk past zeroGrad must copy it.
 */
export class RowGradPool {
  private readonly pools = new Map<Tensor, Float32Array[]>();

  /** A [n] buffer for table's gradient rows; contents undefined (peerRowGrad writes every element). */
  take(table: Tensor, n: number): Float32Array {
    let pool = this.pools.get(table);
    if (!pool) this.pools.set(table, (pool = []));
    const inUse = new Set<ArrayBufferLike>((table.sparseGrad ?? []).map((c) => c.values.buffer));
    const free = pool.filter((b) => !inUse.has(b.buffer));
    const fit = free.find((b) => b.length >= n);
    if (fit) return fit.subarray(0, n);
    for (const b of free) pool.splice(pool.indexOf(b), 1); // too small: let them go
    const buf = new Float32Array(Math.max(n, Math.min(Math.ceil(n * 1.25), table.size))); // headroom: U varies
    adviseHugePages(buf);
    pool.push(buf);
    return buf.subarray(0, n);
  }
}

export interface PeerExpertOptions {
  /** Experts per head: the scores are softmaxed in consecutive groups of k. */
  k: number;
  activation: PeerActName;
  /**
   * Row-sparse table gradients: backward appends one { ids (ascending, unique), values [U, d] }
   * chunk (values from this pool) to u.sparseGrad and v.sparseGrad and gives autograd none, so no
   * [N, d] array exists. The tables must then be leaves. Null or absent: dense [N, d] gradients.
   */
  rowGrads?: RowGradPool | null;
  /**
   * With rowGrads: emit factored chunks (tensor.ts RowSparseGrad.factors: the coalesced index,
   * the per-pick coefficients and copies of x / dy) instead of [U, d] rows, so no gradient row is
   * stored; the optimizer forms them a block at a time. Backward then runs token-major.
   */
  factoredRowGrads?: boolean;
}

/**
 * The PEER expert mixture over retrieved experts. x: [T, d]; ids, scores: [T, hk] from
 * peerRetrieve; u, v: [N, d] expert tables (u null: product-key memory, values only), both float32
 * or both bf16 (storage only: rows are widened and everything accumulates in float32; bf16 tables
 * need row-sparse gradients, rowGrads, whose rows are float32):
 *   g = softmax(scores) within each head's k,  a[t,j] = u[ids[t,j]] . x[t]
 *   y[t] = sum_j g[t,j] act(a[t,j]) v[ids[t,j]]        (pkm: y[t] = sum_j g[t,j] v[ids[t,j]])
 * act is the exact erf GELU or ReLU. Gradients reach x (not with pkm), scores, u and v; the table
 * gradients are row-sparse (only the touched experts' rows), dense or as chunks (see rowGrads).
 * Backward coalesces the T*hk picks, then passes over the touched experts once (expert-major: each
 * row read once; taken when experts repeat, U <= n/2) or over the tokens plus row sums.
 * Buffers: y is fresh; g, a and the ids are kept for backward; chunk values belong to rowGrads.
 */
export function peerExperts(x: Tensor, ids: Tensor, scores: Tensor, u: Tensor | null, v: Tensor, o: PeerExpertOptions): Tensor {
  if (v.ndim !== 2) throw new Error(`peerExperts: v must be [N, d], got [${v.shape.join(', ')}]`);
  const [N, d] = v.shape, k = o.k;
  if (x.ndim !== 2 || x.shape[1] !== d) throw new Error(`peerExperts: x must be [T, ${d}], got [${x.shape.join(', ')}]`);
  const T = x.shape[0];
  if (ids.dtype !== 'i32' || ids.ndim !== 2 || ids.shape[0] !== T) throw new Error(`peerExperts: ids must be int32 [${T}, h*k], got ${ids}`);
  const hk = ids.shape[1];
  if (scores.ndim !== 2 || scores.shape[0] !== T || scores.shape[1] !== hk) throw new Error(`peerExperts: scores must be [${T}, ${hk}] like ids, got [${scores.shape.join(', ')}]`);
  if (!(Number.isInteger(k) && k >= 1 && hk % k === 0)) throw new Error(`peerExperts: k must divide h*k = ${hk}, got ${k}`);
  if (u && (u.ndim !== 2 || u.shape[0] !== N || u.shape[1] !== d)) throw new Error(`peerExperts: u must be [${N}, ${d}] like v, got [${u.shape.join(', ')}]`);
  if (u && u.dtype !== v.dtype) throw new Error(`peerExperts: u and v must have the same dtype, got ${u.dtype} and ${v.dtype}`);
  if (v.dtype === 'bf16' && !o.rowGrads && (v.requiresGrad || u?.requiresGrad)) throw new Error('peerExperts: bf16 tables need row-sparse gradients (rowGrads): a dense [N, d] gradient would be float32 and no dense optimizer updates bf16 weights');
  if (!(o.activation in PeerAct)) throw new Error(`peerExperts: unknown activation '${o.activation}'`);
  const pool = o.rowGrads ?? null;
  if (pool && (v.node || u?.node)) throw new Error('peerExperts: row-sparse gradients (rowGrads) need the tables to be leaves');
  const act = PeerAct[o.activation];
  const xc = x.contiguous(), sc = scores.contiguous(), idc = ids.contiguous().i32;
  const n = T * hk;
  const K = backend();
  const uD = u ? tableData(u) : null, vD = tableData(v);
  const inputs = u ? [xc, sc, v, u] : [xc, sc, v];
  const y = alloc(T * d);
  // Float32 tables may take the dense path over the picked experts (peer_union.ts), which needs the
  // coalesced picks up front; the row kernels' backward needs them anyway.
  let ix: PickIndex | null = null;
  if (vD instanceof Float32Array && dispatchAllowsUnion()) ix = coalesce(K, n, N, idc);
  const f = ix && useUnion(ix.U, hk) ? unionForward(T, d, hk, k, act, xc.f32, uD as Float32Array | null, vD as Float32Array, sc.f32, ix, y) : null;
  const g = f ? null : alloc(n), a = f || !u ? null : alloc(n);
  if (!f) K.peerForward(T, d, N, hk, k, act, xc.f32, uD, vD, idc, sc.f32, g!, a, y);
  return attach(new Tensor(y, [T, d]), inputs, (gy) => {
    const { U, uniq, offsets, order } = ix ?? coalesce(K, n, N, idc);
    const rowIds = uniq.subarray(0, U).slice();
    const gx = u ? alloc(T * d) : null, gscores = alloc(n);
    if (pool && o.factoredRowGrads) { // bf16 tables: never the union path
      // fresh (unpooled) arrays: the chunk keeps them until the optimizer step
      const cv = new Float32Array(n), cu = u ? new Float32Array(n) : null;
      K.peerBackward(T, d, N, hk, k, act, xc.f32, uD, vD, idc, g!, a, gy, gx, gscores, cu, cv);
      const index = { offsets: offsets.subarray(0, U + 1), order };
      if (v.requiresGrad) (v.sparseGrad ??= []).push({ ids: rowIds, values: new Float32Array(0), factors: { ...index, coef: cv, src: gy.slice(), per: hk } });
      if (u && cu && u.requiresGrad) (u.sparseGrad ??= []).push({ ids: rowIds, values: new Float32Array(0), factors: { ...index, coef: cu, src: xc.f32.slice(), per: hk } });
      return u ? [gx, gscores, null, null] : [null, gscores, null];
    }
    const rows = (t: Tensor) => (pool ? pool.take(t, U * d) : scratch(U * d));
    const gvRows = v.requiresGrad ? rows(v) : null;
    const guRows = u && u.requiresGrad ? rows(u) : null;
    if (f) {
      unionBackward(T, d, hk, k, act, xc.f32, gy, f, U, gx, gscores, guRows, gvRows);
    } else if (2 * U <= n) {
      K.peerBackwardRows(T, d, N, hk, k, act, xc.f32, uD, vD, idc, g!, a, gy, U, uniq, offsets, order, gx, gscores, guRows, gvRows);
    } else {
      const cv = scratch(n), cu = u ? scratch(n) : null;
      K.peerBackward(T, d, N, hk, k, act, xc.f32, uD, vD, idc, g!, a, gy, gx, gscores, cu, cv);
      if (gvRows) K.peerRowGrad(U, d, hk, offsets, order, cv, gy, gvRows);
      if (guRows) K.peerRowGrad(U, d, hk, offsets, order, cu, xc.f32, guRows);
      release(cv, cu);
    }
    const gv = emitRows(v, gvRows, rowIds, pool, N, d);
    release(g, a);
    return u ? [gx, gscores, gv, emitRows(u, guRows, rowIds, pool, N, d)] : [null, gscores, gv];
  }, 'peerExperts');
}

/** peerCoalesce of the n picks. */
function coalesce(K: Kernels, n: number, N: number, ids: Int32Array): PickIndex {
  const uniq = new Int32Array(n), offsets = new Int32Array(n + 1), order = new Int32Array(n);
  const U = K.peerCoalesce(n, N, ids, uniq, offsets, order);
  return { U, uniq, offsets, order };
}

/**
 * A table's coalesced gradient rows r ([U, d], rows of rowIds) handed on: appended to the table's
 * row-sparse chunks with a pool (autograd then gets none), else scattered into a dense [N, d].
 */
function emitRows(t: Tensor, r: Float32Array | null, rowIds: Int32Array, pool: RowGradPool | null, N: number, d: number): Float32Array | null {
  if (!r) return null;
  if (pool) {
    (t.sparseGrad ??= []).push({ ids: rowIds, values: r });
    return null;
  }
  const dense = allocZeroed(N * d); // rows nobody picked stay 0
  for (let i = 0; i < rowIds.length; i++) dense.set(r.subarray(i * d, i * d + d), rowIds[i] * d);
  release(r);
  return dense;
}

/** A table's elements for the PEER kernels: float32, or bfloat16 bit patterns. */
function tableData(t: Tensor): Float32Array | Uint16Array {
  return t.dtype === 'bf16' ? t.bf16 : t.f32;
}
