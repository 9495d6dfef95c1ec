/**
 * Attention of several branches against one shared, cached prefix (scoring the continuations of one
 * context; not differentiable). qkv [N, 3*d] (or [1, N, 3*d]) holds the packed QKV rows of B
 * branches, branch r at rows starts[r] .. starts[r+1]-1 (starts: B+1 offsets from 0 to N), its j-th
 * token at absolute position P + j. kCache / vCache [maxLen, d] hold the prefix's keys and values in
 * rows 0 .. P-1 (read only: the branches' own keys and values are read from qkv). Per head, for token
 * i of branch r, with K the keys {prefix t < P} and {own u in starts[r] .. i}:
 *   out[i] = sum_{x in K} softmax_x(q_i . k_x / sqrt(d/heads)) v_x
 * so a branch sees the prefix and its own earlier tokens, never another branch. Computed for all
 * branches at once: per head, scores [N, P + N] from two batched GEMMs (against the prefix, against
 * all N branch keys), the keys of other branches and later tokens set to -inf, a row softmax, and
 * two batched GEMMs with the values. The own part costs N^2: callers keep N to a few hundred.
 */
import { backend } from '../../backend/index.js';
import { isGradEnabled } from '../autograd.js';
import { Tensor } from '../tensor.js';
import { alloc, release, scratch } from '../pool.js';

export function branchAttention(qkv: Tensor, heads: number, kCache: Float32Array, vCache: Float32Array, P: number, starts: Int32Array): Tensor {
  const d3 = qkv.shape[qkv.ndim - 1], d = d3 / 3, N = qkv.size / d3;
  if (!Number.isInteger(d) || !(Number.isInteger(heads) && heads >= 1) || d % heads !== 0) throw new Error(`branchAttention: bad qkv shape [${qkv.shape.join(', ')}] for ${heads} heads`);
  if (isGradEnabled() && qkv.requiresGrad) throw new Error('branchAttention is not differentiable: run it under noGrad()');
  const maxLen = kCache.length / d;
  if (vCache.length !== kCache.length || !Number.isInteger(maxLen)) throw new Error(`branchAttention: caches must both be [maxLen, ${d}]`);
  if (!(Number.isInteger(P) && P >= 0 && P <= maxLen)) throw new Error(`branchAttention: prefix length ${P} outside the cache's ${maxLen} positions`);
  if (starts.length < 1 || starts[0] !== 0 || starts[starts.length - 1] !== N) throw new Error(`branchAttention: starts must run from 0 to ${N} (the rows of qkv), got [${Array.from(starts).join(', ')}]`);
  for (let r = 1; r < starts.length; r++) if (starts[r] < starts[r - 1]) throw new Error(`branchAttention: starts must not decrease, got [${Array.from(starts).join(', ')}]`);
  const out = alloc(N * d);
  if (N === 0) return new Tensor(out, [0, d]);
  const k = backend();
  const rows = qkv.contiguous().f32, hd = d / heads, W = P + N, scale = 1 / Math.sqrt(hd);
  const S = scratch(heads * N * W), prob = scratch(heads * N * W);
  // scores: head h's q rows start at column h*hd of qkv (row stride 3d); keys likewise
  if (P > 0) k.gemmBatched(heads, false, true, N, P, hd, scale, rows, hd, d3, kCache, hd, d, 0, S, N * W, W);
  k.gemmBatched(heads, false, true, N, N, hd, scale, rows, hd, d3, rows.subarray(d), hd, d3, 0, S.subarray(P), N * W, W);
  for (let r = 0; r + 1 < starts.length; r++) {
    const s0 = starts[r], s1 = starts[r + 1];
    for (let h = 0; h < heads; h++) {
      for (let i = s0; i < s1; i++) {
        const base = (h * N + i) * W + P;
        S.fill(-Infinity, base, base + s0);
        S.fill(-Infinity, base + i + 1, base + N);
      }
    }
  }
  k.softmax(heads * N, W, S, prob, false);
  if (P > 0) k.gemmBatched(heads, false, false, N, hd, P, 1, prob, N * W, W, vCache, hd, d, 0, out, hd, d);
  k.gemmBatched(heads, false, false, N, hd, N, 1, prob.subarray(P), N * W, W, rows.subarray(2 * d), hd, d3, P > 0 ? 1 : 0, out, hd, d);
  release(S, prob);
  return new Tensor(out, [N, d]);
}
