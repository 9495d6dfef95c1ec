/**
 * The PEER family of the kernel contract (He 2024, "Mixture of A Million Experts"): product-key
 * retrieval, the expert forward/backward over gathered rows, row-sparse gradient coalescing, lazy
 * sparse Adam and the query BatchNorm. Part of `Kernels` (../kernels.ts), with its conventions: raw
 * typed arrays, explicit sizes, row-major, outputs written unless "accumulates", Int32 ids.
 *
 * Shapes: T tokens, d model width, h heads, k experts per head, hk = h*k, dk = 2*half query size
 * per head, nSub sub-keys per half, N = nSub^2 experts (expert id = i1*nSub + i2).
 */
import type { F32, I32 } from '../kernels.js';

export type U16 = Uint16Array;

export interface PeerKernels {
  /**
   * Product-key retrieval without the [T*h, N] score matrix. Row r = t*h + j (token t, head j)
   * has its query q[r*dk .. r*dk+dk) (q is [T, h*dk]); the first half is scored against the
   * sub-keys keys[0] ([nSub, half]), the second against keys[1]. Per half the top-k sub-keys are
   * kept; of the k*k sums s1[a] + s2[b] the top k are written in descending order:
   *   ids[r*k + i] = i1*nSub + i2 (the chosen sub-keys are ids / nSub and ids % nSub),
   *   scores[r*k + i] = s1[i1] + s2[i2] (float32 sum of the two float32 sub-scores).
   * Ties keep the lower index (sub-key index, then candidate index a*k + b); NaN never displaces a
   * number. Requires 1 <= k <= nSub and nSub^2 < 2^31.
   */
  peerRetrieve(T: number, h: number, nSub: number, half: number, k: number, q: F32, keys: F32, ids: I32, scores: F32): void;

  /**
   * Backward of peerRetrieve given d loss / d scores (gscores [T*h, k]):
   *   gq [T, h*dk] (written): gq[r, :half] = sum_i gs_i keys[0][i1_i],  gq[r, half:] = sum_i gs_i keys[1][i2_i]
   *   gkeys [2, nSub, half] (accumulates): keys[0][i1_i] += gs_i q[r, :half],  keys[1][i2_i] += gs_i q[r, half:]
   */
  peerRetrieveBackward(T: number, h: number, nSub: number, half: number, k: number, q: F32, keys: F32, ids: I32,
    gscores: F32, gq: F32, gkeys: F32): void;

  /**
   * Expert forward for T tokens, hk = h*k experts each (ids [T, hk], raw scores [T, hk]):
   *   g = softmax of each consecutive group of k scores (one head)          -> g [T, hk]
   *   a[t,j] = u[ids[t,j]] . x[t]           (gathered batched GEMV)         -> a [T, hk]
   *   y[t] = sum_j g[t,j] act(a[t,j]) v[ids[t,j]]   (weighted embedding bag) -> y [T, d]
   * u, v: [N, d]; act: PeerAct code (gelu = exact erf GELU, relu). With u null (product-key memory)
   * the weights are g alone and a is not touched (may be null).
   * Tables (here and in peerBackward, peerBackwardRows): u and v both Float32Array, or both
   * Uint16Array holding bfloat16 bit patterns; bf16 rows are widened exactly and accumulated in
   * float32 in the same order, so the result equals the float kernel's on the widened tables.
   */
  peerForward(T: number, d: number, N: number, hk: number, k: number, act: number,
    x: F32, u: F32 | U16 | null, v: F32 | U16, ids: I32, scores: F32, g: F32, a: F32 | null, y: F32): void;

  /**
   * Expert backward, per token (gy [T, d] = d loss / d y). With w = g act(a), gw = gy[t] . v[id]:
   *   cv[t,j] = w                    (v's row gradient is sum over occurrences of cv * gy[t])
   *   cu[t,j] = gw g act'(a)         (u's row gradient is sum over occurrences of cu * x[t])
   *   gx[t] = sum_j cu[t,j] u[id]    (written)
   *   gscores = softmax backward of dg = gw act(a) within each head: g (dg - sum_head g dg)
   * With u null (pkm): cv = g, dg = gw, and gx, cu are not touched (may be null).
   */
  peerBackward(T: number, d: number, N: number, hk: number, k: number, act: number,
    x: F32, u: F32 | U16 | null, v: F32 | U16, ids: I32, g: F32, a: F32 | null, gy: F32,
    gx: F32 | null, gscores: F32, cu: F32 | null, cv: F32): void;

  /**
   * Expert-major backward: peerBackward and peerRowGrad of both tables fused, reading each touched
   * expert's u and v rows once. (U, uniq, offsets, order) must be peerCoalesce(T*hk, N, ids, ...).
   * Writes gx [T, d] (when u is given), gscores [T, hk], and the coalesced row gradients
   *   gv[i] = sum over occurrences of w * gy[t],   gu[i] = sum over occurrences of gw g act'(a) * x[t]
   * for uniq[i] ([U, d] each; either may be null to skip it; gu must be null without u).
   */
  peerBackwardRows(T: number, d: number, N: number, hk: number, k: number, act: number,
    x: F32, u: F32 | U16 | null, v: F32 | U16, ids: I32, g: F32, a: F32 | null, gy: F32,
    U: number, uniq: I32, offsets: I32, order: I32, gx: F32 | null, gscores: F32, gu: F32 | null, gv: F32 | null): void;

  /**
   * Gate side of the dense union path (src/tensor/ops/peer_union.ts), for T tokens with hk picks
   * each whose experts form a union of U rows; cols [T, hk] in [0, U) is each pick's row in it.
   *   g = softmax of each consecutive group of k scores (as peerForward)       -> g [T, hk]
   *   a[t,j] = A[t, cols[t,j]]   (A [T, U] = x Us^T, the products with every union row)   -> a [T, hk]
   *   W[t, i] = sum over t's picks j with cols[t,j] = i of g[t,j] act(a[t,j])  -> W [T, U] (written)
   * With A null (product-key memory) W sums g alone and a is not touched (may be null).
   */
  peerUnionForward(T: number, hk: number, k: number, act: number, U: number, cols: I32, scores: F32,
    A: F32 | null, g: F32, a: F32 | null, W: F32): void;

  /**
   * Backward of peerUnionForward given GW [T, U] = gy Vs^T; with gw[t,j] = GW[t, cols[t,j]]:
   *   dg = gw act(a) (pkm: gw),  gscores = g (dg - sum_head g dg)                 -> gscores [T, hk]
   *   C[t, i] = sum over t's picks j with cols[t,j] = i of gw g act'(a)          -> C [T, U] (written)
   * a and C are both given (PEER) or both null (pkm).
   */
  peerUnionBackward(T: number, hk: number, k: number, act: number, U: number, cols: I32, g: F32,
    a: F32 | null, GW: F32, gscores: F32, C: F32 | null): void;

  /**
   * Stable counting sort of ids [n] in [0, N). Returns U, the number of distinct ids; uniq[0..U)
   * receives them ascending; the positions holding uniq[i] are order[offsets[i] .. offsets[i+1])
   * in ascending order. uniq needs n entries, offsets n+1, order n. O(n + N) time, N ints scratch.
   */
  peerCoalesce(n: number, N: number, ids: I32, uniq: I32, offsets: I32, order: I32): number;

  /**
   * Row gradients from a coalesced index (written, not accumulated), for i < U:
   *   out[i, :] = sum_{p in [offsets[i], offsets[i+1])} coef[order[p]] * src[floor(order[p] / per), :]
   * coef null means 1. PEER uses per = hk (entry -> token); coalescing sparse chunks uses per = 1.
   */
  peerRowGrad(U: number, d: number, per: number, offsets: I32, order: I32, coef: F32 | null, src: F32, out: F32): void;

  /**
   * torch.nn.BatchNorm1d over the rows of x [T, C] (statistics in double). Training: mean and
   * biased variance of each channel over the T rows, mean[c] and rstd[c] = 1/sqrt(var + eps)
   * written, runMean/runVar updated in place with momentum (runVar from the unbiased variance;
   * needs T >= 2). Eval: mean = runMean, rstd = 1/sqrt(runVar + eps). Then
   *   y = (x - mean) * rstd * w + b.
   */
  peerBatchNorm(T: number, C: number, training: boolean, eps: number, momentum: number,
    x: F32, w: F32, b: F32, runMean: F32, runVar: F32, y: F32, mean: F32, rstd: F32): void;

  /**
   * Backward of peerBatchNorm with its saved mean/rstd: xhat = (x - mean) rstd,
   *   gw = sum_t gy xhat,  gb = sum_t gy   (written)
   *   gx = w rstd (gy - gb/T - xhat gw/T)  in training (batch statistics), w rstd gy in eval.
   */
  peerBatchNormBackward(T: number, C: number, training: boolean, x: F32, w: F32, mean: F32, rstd: F32,
    gy: F32, gx: F32, gw: F32, gb: F32): void;

  /**
   * Lazy Adam on the rows ids[0..U) (strictly increasing) of p [N, d], coalesced gradient rows
   * g [U, d], PyTorch SparseAdam semantics (no weight decay):
   *   m += (1-beta1)(g - m);  v += (1-beta2)(g^2 - v);  p -= lr*sqrt(bc2)/bc1 * m / (sqrt(v) + eps)
   * m, v: [N, d], both Float32Array or both Uint16Array (bfloat16 bits, computed in float32 and
   * stored rounded to nearest even). Other rows are not touched.
   * p may be a Uint16Array (a bfloat16 table): the new weight is computed in float32 from the
   * widened one and stored with stochastic rounding, so updates smaller than a bf16 ulp survive in
   * expectation. Element c of row r adds R = lowbias32(key + c) & 0xffff (uint32 arithmetic) to the
   * float's bits and keeps the upper 16, key = lowbias32(seed ^ lowbias32(r)); this rounds up with
   * probability (x - lower) / ulp, i.e. E[round(x)] = x up to the 2^-16 granularity of R. Inf and
   * NaN round to nearest. seed (uint32) is required then; callers derive it from (run seed, table,
   * step) so a resumed run draws the same bits. lowbias32 is the hash of ../ref/math.ts.
   */
  sparseAdam(U: number, d: number, ids: I32, g: F32, p: F32 | U16, m: F32 | U16, v: F32 | U16,
    lr: number, beta1: number, beta2: number, eps: number, bc1: number, bc2: number, seed?: number): void;

  /**
   * Advises the OS to back the 2 MiB-aligned interior of the array with transparent huge pages
   * (madvise MADV_HUGEPAGE): for multi-GiB expert tables and their optimizer moments this removes
   * most page faults on first touch and the TLB misses of random row gathers (~25% faster gathers
   * measured at N = 2^20). Advisory only: contents unchanged; returns whether the advice was taken
   * (false where unsupported, always false in the reference). Best called before the pages are written.
   */
  peerAdviseHugePages(a: F32 | U16): boolean;
}

/** Every PEER kernel name, checked by the compiler against PeerKernels (a missing or extra key fails to build). */
export const PEER_KERNEL_NAMES: Record<keyof PeerKernels, true> = {
  peerRetrieve: true, peerRetrieveBackward: true, peerForward: true, peerBackward: true, peerBackwardRows: true,
  peerUnionForward: true, peerUnionBackward: true,
  peerCoalesce: true, peerRowGrad: true, peerBatchNorm: true, peerBatchNormBackward: true, sparseAdam: true,
  peerAdviseHugePages: true,
};
