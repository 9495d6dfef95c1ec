/** Fused layer ops: LayerNorm, cross-entropy, causal attention, embedding, dropout. */
import { backend } from '../../backend/index.js';
import { Tensor, attach } from '../tensor.js';

/** LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * w + b (biased variance). */
export function layerNorm(x: Tensor, w: Tensor, b: Tensor, eps = 1e-5): Tensor {
  const d = x.shape[x.ndim - 1];
  if (w.size !== d || b.size !== d) throw new Error(`layerNorm: weight/bias must have ${d} elements`);
  const xc = x.contiguous();
  const rows = x.size / d;
  const y = new Float32Array(x.size), mean = new Float32Array(rows), rstd = new Float32Array(rows);
  const k = backend();
  k.layerNorm(rows, d, eps, xc.f32, w.f32, b.f32, y, mean, rstd);
  return attach(new Tensor(y, x.shape), [xc, w, b], (g) => {
    const gx = new Float32Array(x.size), gw = new Float32Array(d), gb = new Float32Array(d);
    k.layerNormBackward(rows, d, xc.f32, w.f32, mean, rstd, g, gx, gw, gb);
    return [gx, gw, gb];
  }, 'layerNorm');
}

/**
 * Mean cross-entropy of logits [N, V] against integer targets [N]; targets < 0 are ignored
 * (excluded from the mean). Returns a 0-d tensor. Softmax and loss are fused: the backward pass
 * re-derives probabilities from the saved log-sum-exp instead of keeping a [N, V] copy.
 */
export function crossEntropy(logits: Tensor, targets: Tensor): Tensor {
  const V = logits.shape[logits.ndim - 1];
  const N = logits.size / V;
  if (targets.dtype !== 'i32' || targets.size !== N) throw new Error(`crossEntropy: targets must be int32 with ${N} elements`);
  const lc = logits.contiguous(), tc = targets.contiguous();
  const losses = new Float32Array(N), lse = new Float32Array(N);
  const k = backend();
  k.crossEntropy(N, V, lc.f32, tc.i32, losses, lse);
  let count = 0, total = 0;
  const t = tc.i32;
  for (let i = 0; i < N; i++) if (t[i] >= 0) { count++; total += losses[i]; }
  const mean = count ? total / count : 0;
  return attach(new Tensor(Float32Array.of(mean), []), [lc], (g) => {
    const gLoss = new Float32Array(N).fill(count ? g[0] / count : 0);
    const gl = new Float32Array(N * V);
    k.crossEntropyBackward(N, V, lc.f32, t, lse, gLoss, gl);
    return [gl];
  }, 'crossEntropy');
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
  const out = new Float32Array(B * S * d), lse = new Float32Array(B * heads * S);
  const k = backend();
  k.attention(B, S, heads, hd, scale, qc.f32, out, lse);
  return attach(new Tensor(out, [B, S, d]), [qc], (g) => {
    const gqkv = new Float32Array(qc.size);
    k.attentionBackward(B, S, heads, hd, scale, qc.f32, out, lse, g, gqkv);
    return [gqkv];
  }, 'attention');
}

/** Row lookup: out[..., :] = table[ids[...], :]; the backward scatter-adds into the table's gradient. */
export function embedding(table: Tensor, ids: Tensor): Tensor {
  if (ids.dtype !== 'i32') throw new Error('embedding: ids must be int32');
  const [, d] = table.shape;
  const ic = ids.contiguous();
  const n = ic.size;
  const out = new Float32Array(n * d);
  const k = backend();
  k.indexSelect(n, d, table.f32, ic.i32, out);
  return attach(new Tensor(out, [...ids.shape, d]), [table], (g) => {
    const gt = new Float32Array(table.size);
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
  const out = new Float32Array(x.size), mask = new Uint8Array(x.size);
  const k = backend();
  k.dropout(p, seed >>> 0, xc.f32, out, mask);
  return attach(new Tensor(out, x.shape), [xc], (g) => {
    const gx = new Float32Array(x.size);
    k.dropout(p, seed >>> 0, g, gx, mask); // same seed, same mask, same scaling
    return [gx];
  }, 'dropout');
}

