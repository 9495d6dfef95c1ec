/** Fused layer ops: LayerNorm, cross-entropy and token log-probs, causal attention, embedding, dropout. */
import { backend } from '../../backend/index.js';
import { isGradEnabled } from '../autograd.js';
import { Tensor, attach } from '../tensor.js';
import { alloc, allocZeroed, release, scratch } from '../pool.js';
import { attentionPrecision } from '../precision.js';

/** LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * w + b (biased variance). */
export function layerNorm(x: Tensor, w: Tensor, b: Tensor, eps = 1e-5): Tensor {
  const d = x.shape[x.ndim - 1];
  if (w.size !== d || b.size !== d) throw new Error(`layerNorm: weight/bias must have ${d} elements`);
  const xc = x.contiguous();
  const rows = x.size / d;
  const y = alloc(x.size), mean = alloc(rows), rstd = alloc(rows);
  const k = backend();
  k.layerNorm(rows, d, eps, xc.f32, w.f32, b.f32, y, mean, rstd);
  return attach(new Tensor(y, x.shape), [xc, w, b], (g) => {
    const gx = alloc(x.size), gw = allocZeroed(d), gb = allocZeroed(d); // gw, gb accumulate
    k.layerNormBackward(rows, d, xc.f32, w.f32, mean, rstd, g, gx, gw, gb);
    release(mean, rstd);
    return [gx, gw, gb];
  }, 'layerNorm');
}

/** logits [..., V] as [N, V] rows with int32 targets [N], both contiguous. */
function lossRows(fn: string, logits: Tensor, targets: Tensor): { N: number; V: number; lc: Tensor; t: Int32Array } {
  const V = logits.shape[logits.ndim - 1];
  const N = logits.size / V;
  if (targets.dtype !== 'i32' || targets.size !== N) throw new Error(`${fn}: targets must be int32 with ${N} elements (one per row of logits [${logits.shape.join(', ')}])`);
  return { N, V, lc: logits.contiguous(), t: targets.contiguous().i32 };
}

/**
 * Mean cross-entropy of logits [..., V] (N rows) against int32 targets [N]; targets < 0 are ignored
 * (excluded from the mean). Returns a 0-d tensor. Softmax and loss are fused: the backward pass
 * re-derives probabilities from the saved log-sum-exp instead of keeping a [N, V] copy.
 */
export function crossEntropy(logits: Tensor, targets: Tensor): Tensor {
  const { N, V, lc, t } = lossRows('crossEntropy', logits, targets);
  const losses = scratch(N), lse = alloc(N);
  const k = backend();
  k.crossEntropy(N, V, lc.f32, t, losses, lse);
  let count = 0, total = 0;
  for (let i = 0; i < N; i++) if (t[i] >= 0) { count++; total += losses[i]; }
  release(losses);
  const mean = count ? total / count : 0;
  return attach(new Tensor(Float32Array.of(mean), []), [lc], (g) => {
    const gLoss = scratch(N).fill(count ? g[0] / count : 0);
    const gl = alloc(N * V);
    k.crossEntropyBackward(N, V, lc.f32, t, lse, gLoss, gl);
    release(gLoss, lse);
    return [gl];
  }, 'crossEntropy');
}

/**
 * Per-row log-probability of the target: out[r] = logits[r, t_r] - log sum_j exp(logits[r, j])
 * (= -crossEntropy of row r), from the fused cross-entropy kernel, so no [N, V] log-softmax is
 * formed. logits [..., V], targets int32 with one entry per row; out has the leading shape of
 * logits. Rows whose target is < 0 or whose mask entry is 0 are excluded: out = 0, zero gradient.
 * mask: Float32Array or float Tensor with one 0/1 entry per row. Backward:
 *   glogits[r, j] = -g[r] * (softmax(logits[r])_j - [j == t_r]).
 */
export function tokenLogProbs(logits: Tensor, targets: Tensor, mask?: Float32Array | Tensor): Tensor {
  const { N, V, lc, t: t0 } = lossRows('tokenLogProbs', logits, targets);
  let t = t0;
  if (mask !== undefined) {
    const m = mask instanceof Tensor ? mask.contiguous().f32 : mask;
    if (m.length !== N) throw new Error(`tokenLogProbs: mask has ${m.length} entries, logits have ${N} rows`);
    t = Int32Array.from(t0); // excluded rows become ignored targets (the kernel's t < 0 rule)
    for (let i = 0; i < N; i++) {
      if (m[i] === 0) t[i] = -1;
      else if (m[i] !== 1) throw new Error(`tokenLogProbs: mask entries must be 0 (excluded) or 1, got ${m[i]} at row ${i}`);
    }
  }
  const out = alloc(N), lse = alloc(N);
  const k = backend();
  k.crossEntropy(N, V, lc.f32, t, out, lse);
  for (let i = 0; i < N; i++) out[i] = out[i] === 0 ? 0 : -out[i]; // no -0 for excluded rows
  return attach(new Tensor(out, logits.shape.slice(0, -1)), [lc], (g) => {
    const gLoss = scratch(N);
    for (let i = 0; i < N; i++) gLoss[i] = -g[i];
    const gl = alloc(N * V);
    k.crossEntropyBackward(N, V, lc.f32, t, lse, gLoss, gl);
    release(gLoss, lse);
    return [gl];
  }, 'tokenLogProbs');
}

/**
 * Causal multi-head self-attention, fused. qkv: [B, S, 3*d] as produced by one Linear(d, 3d)
 * (q, k, v each split into `heads` heads of d/heads). Returns [B, S, d] (heads concatenated).
 * Only the [B, heads, S] log-sum-exp is kept for backward, never the S x S probabilities.
 */
export function causalAttention(qkv: Tensor, heads: number): Tensor {
  const [B, S, d3] = qkv.shape;
  const d = d3 / 3;
  if (qkv.ndim !== 3 || !Number.isInteger(d) || d % heads !== 0) throw new Error(`causalAttention: bad qkv shape [${qkv.shape.join(', ')}] for ${heads} heads`);
  const hd = d / heads;
  const scale = 1 / Math.sqrt(hd);
  const qc = qkv.contiguous();
  const out = alloc(B * S * d), lse = alloc(B * heads * S);
  const k = backend();
  const bf16 = attentionPrecision() === 'bf16';
  (bf16 ? k.attentionBf16 : k.attention)(B, S, heads, hd, scale, qc.f32, out, lse);
  return attach(new Tensor(out, [B, S, d]), [qc], (g) => {
    const gqkv = alloc(qc.size);
    (bf16 ? k.attentionBackwardBf16 : k.attentionBackward)(B, S, heads, hd, scale, qc.f32, out, lse, g, gqkv);
    release(lse);
    return [gqkv];
  }, 'attention');
}

/**
 * Causal attention of new tokens against a key/value cache (incremental decoding; not
 * differentiable). qkv [n, 3*d] or [1, n, 3*d] is one sequence's QKV projection at absolute positions
 * pos0 .. pos0+n-1 (per row: q, k, v, each `heads` heads of d/heads). Their keys and values are
 * written into kCache / vCache ([maxLen, d] row-major, rows pos0 .. pos0+n-1), then
 *   out[i] = sum_{t <= pos0+i} softmax_t(q_i . k_t / sqrt(d/heads)) v_t   per head.
 * Returns a fresh [n, d]; the caches are the caller's and are modified in place.
 */
export function cachedAttention(qkv: Tensor, heads: number, kCache: Float32Array, vCache: Float32Array, pos0: number): Tensor {
  const d3 = qkv.shape[qkv.ndim - 1], d = d3 / 3, n = qkv.size / d3;
  if (!Number.isInteger(d) || d % heads !== 0) throw new Error(`cachedAttention: bad qkv shape [${qkv.shape.join(', ')}] for ${heads} heads`);
  if (isGradEnabled() && qkv.requiresGrad) throw new Error('cachedAttention is not differentiable: run it under noGrad()');
  const maxLen = kCache.length / d;
  if (vCache.length !== kCache.length || !Number.isInteger(maxLen)) throw new Error(`cachedAttention: caches must both be [maxLen, ${d}]`);
  if (!(Number.isInteger(pos0) && pos0 >= 0) || pos0 + n > maxLen) throw new Error(`KV cache full: ${pos0 + n} > ${maxLen} positions`);
  const rows = qkv.contiguous().f32;
  const q = scratch(n * d);
  for (let i = 0; i < n; i++) {
    const r = i * d3;
    q.set(rows.subarray(r, r + d), i * d);
    kCache.set(rows.subarray(r + d, r + 2 * d), (pos0 + i) * d);
    vCache.set(rows.subarray(r + 2 * d, r + d3), (pos0 + i) * d);
  }
  const hd = d / heads;
  const out = alloc(n * d);
  backend().attentionKV(n, heads, hd, pos0, 1 / Math.sqrt(hd), q, kCache, vCache, out);
  release(q);
  return new Tensor(out, [n, d]);
}

/** Row lookup: out[..., :] = table[ids[...], :]; the backward scatter-adds into the table's gradient. */
export function embedding(table: Tensor, ids: Tensor): Tensor {
  if (ids.dtype !== 'i32') throw new Error('embedding: ids must be int32');
  const [, d] = table.shape;
  const ic = ids.contiguous();
  const n = ic.size;
  const out = alloc(n * d);
  const k = backend();
  k.indexSelect(n, d, table.f32, ic.i32, out);
  return attach(new Tensor(out, [...ids.shape, d]), [table], (g) => {
    const gt = allocZeroed(table.size); // indexAdd accumulates
    k.indexAdd(n, d, ic.i32, g, gt);
    return [gt];
  }, 'embedding');
}

/**
 * Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p).
 * Identity when p == 0 or when not training. `seed` makes the mask reproducible.
 */
export function dropout(x: Tensor, p: number, seed: number, training = true): Tensor {
  if (!training || p === 0) return x;
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: p must be in [0, 1), got ${p}`);
  const xc = x.contiguous();
  const out = alloc(x.size), mask = new Uint8Array(x.size);
  const k = backend();
  k.dropout(p, seed >>> 0, xc.f32, out, mask);
  return attach(new Tensor(out, x.shape), [xc], (g) => {
    const gx = alloc(x.size);
    k.dropout(p, seed >>> 0, g, gx, mask); // same seed, same mask, same scaling
    return [gx];
  }, 'dropout');
}

