// Reference causal multi-head self-attention: forward, backward and KV-cache decoding.
// Written for clarity: each (batch, head) materialises its S x S score matrix. Accumulation is in
// JS numbers (float64); results are rounded to float32 only when stored.
import type { F32 } from '../kernels.js';

/** Offset of q (part 0), k (1) or v (2) for token s, head h of batch b in qkv [B, S, 3, H, hd]. */
function qkvAt(S: number, H: number, hd: number, b: number, s: number, part: number, h: number): number {
  return (((b * S + s) * 3 + part) * H + h) * hd;
}

/** Offset of token s, head h of batch b in out/gout [B, S, H, hd]. */
function outAt(S: number, H: number, hd: number, b: number, s: number, h: number): number {
  return ((b * S + s) * H + h) * hd;
}

/**
 * Causal self-attention. For each b, h and query s:
 *   z[t] = scale * q[s].k[t]  for t <= s
 *   lse[b,h,s] = log sum_{t<=s} exp(z[t])
 *   out[b,s,h] = sum_{t<=s} exp(z[t] - lse) v[t]
 */
export function attention(B: number, S: number, H: number, hd: number, scale: number,
  qkv: F32, out: F32, lse: F32): void {
  const z = new Float64Array(S);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let s = 0; s < S; s++) {
        const qo = qkvAt(S, H, hd, b, s, 0, h);
        let m = -Infinity;
        for (let t = 0; t <= s; t++) {
          const ko = qkvAt(S, H, hd, b, t, 1, h);
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += qkv[qo + i] * qkv[ko + i];
          z[t] = scale * dot;
          if (z[t] > m) m = z[t];
        }
        let sum = 0;
        for (let t = 0; t <= s; t++) sum += Math.exp(z[t] - m);
        const l = m + Math.log(sum);
        lse[(b * H + h) * S + s] = l;
        const oo = outAt(S, H, hd, b, s, h);
        for (let i = 0; i < hd; i++) {
          let acc = 0;
          for (let t = 0; t <= s; t++) acc += Math.exp(z[t] - l) * qkv[qkvAt(S, H, hd, b, t, 2, h) + i];
          out[oo + i] = acc;
        }
      }
    }
  }
}

/**
 * Backward of attention(), using the saved out and lse. With P[s,t] = exp(scale*q[s].k[t] - lse[s])
 * for t <= s (0 otherwise), dO = gout and D[s] = dO[s].out[s]:
 *   dP[s,t] = dO[s].v[t],  dS[s,t] = P[s,t] (dP[s,t] - D[s])
 *   dq[s] = scale * sum_t dS[s,t] k[t],  dk[t] = scale * sum_s dS[s,t] q[s],  dv[t] = sum_s P[s,t] dO[s]
 * gqkv [B, S, 3, H, hd] is written (every element).
 */
export function attentionBackward(B: number, S: number, H: number, hd: number, scale: number,
  qkv: F32, out: F32, lse: F32, gout: F32, gqkv: F32): void {
  const n = B * S * 3 * H * hd;
  const g = new Float64Array(n);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let s = 0; s < S; s++) {
        const qo = qkvAt(S, H, hd, b, s, 0, h);
        const oo = outAt(S, H, hd, b, s, h);
        const l = lse[(b * H + h) * S + s];
        let D = 0;
        for (let i = 0; i < hd; i++) D += gout[oo + i] * out[oo + i];
        for (let t = 0; t <= s; t++) {
          const ko = qkvAt(S, H, hd, b, t, 1, h);
          const vo = qkvAt(S, H, hd, b, t, 2, h);
          let dot = 0, dP = 0;
          for (let i = 0; i < hd; i++) {
            dot += qkv[qo + i] * qkv[ko + i];
            dP += gout[oo + i] * qkv[vo + i];
          }
          const P = Math.exp(scale * dot - l);
          const dS = P * (dP - D);
          for (let i = 0; i < hd; i++) {
            g[qo + i] += scale * dS * qkv[ko + i];
            g[ko + i] += scale * dS * qkv[qo + i];
            g[vo + i] += P * gout[oo + i];
          }
        }
      }
    }
  }
  for (let i = 0; i < n; i++) gqkv[i] = g[i];
}

/**
 * Attention of Sq new queries (absolute positions pos0 + i) against a KV cache [Smax, H, hd]:
 *   out[i,h] = sum_{t <= pos0+i} softmax_t(scale * q[i,h].kCache[t,h]) vCache[t,h]
 */
export function attentionKV(Sq: number, H: number, hd: number, pos0: number, scale: number,
  q: F32, kCache: F32, vCache: F32, out: F32): void {
  const z = new Float64Array(pos0 + Sq);
  for (let i = 0; i < Sq; i++) {
    const last = pos0 + i;
    for (let h = 0; h < H; h++) {
      const qo = (i * H + h) * hd;
      let m = -Infinity;
      for (let t = 0; t <= last; t++) {
        const ko = (t * H + h) * hd;
        let dot = 0;
        for (let c = 0; c < hd; c++) dot += q[qo + c] * kCache[ko + c];
        z[t] = scale * dot;
        if (z[t] > m) m = z[t];
      }
      let sum = 0;
      for (let t = 0; t <= last; t++) sum += Math.exp(z[t] - m);
      for (let c = 0; c < hd; c++) {
        let acc = 0;
        for (let t = 0; t <= last; t++) acc += Math.exp(z[t] - m) * vCache[(t * H + h) * hd + c];
        out[qo + c] = acc / sum;
      }
    }
  }
}
