// Reference bf16 kernels: bit-exact roundings (the native conversions must match them bit for bit)
// and the bf16 GEMMs as "round every operand, then the fp32 reference GEMM" (which sums in double,
// so it is the exact product of the rounded operands up to one final rounding).
import type { F32, I32 } from '../kernels.js';
import type { U16 } from '../kernels/peer.js';
import { len, need } from './check.js';
import { gemm, gemmGroupedK, gemmGroupedRows, gemmUnary } from './gemm.js';
import { attention, attentionBackward } from './attention.js';
import { hash32 } from './math.js';

const f = new Float32Array(1);
const u = new Uint32Array(f.buffer);

/** bf16 bits of x, round to nearest even (NaN stays a quiet NaN). */
function roundNearest(x: number): number {
  f[0] = x;
  const b = u[0];
  if ((b & 0x7fffffff) > 0x7f800000) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** bf16 bits of x, stochastic rounding with 16 random bits r. */
function roundStochastic(x: number, r: number): number {
  f[0] = x;
  const b = u[0];
  if ((b & 0x7fffffff) > 0x7f800000) return (b >>> 16) | 0x40;
  if ((b & 0x7f800000) === 0x7f800000) return b >>> 16;
  return ((b + (r & 0xffff)) >>> 16) & 0xffff;
}

function widen(h: number): number {
  u[0] = (h & 0xffff) << 16;
  return f[0];
}

/** A copy of x with every element rounded to bf16 (nearest even) and widened back. */
function rounded(x: F32): F32 {
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = widen(roundNearest(x[i]));
  return y;
}

/**
 * A rounded copy of x, where the rows x cols operand op(X)(r, q) = x[trans ? q*ld + r : r*ld + q]
 * has shift[q] subtracted first when shift is given.
 */
function roundedOperand(x: F32, trans: boolean, rows: number, cols: number, ld: number, shift: F32 | null | undefined,
  fn: string, name: string): F32 {
  if (!shift) return rounded(x);
  len(fn, name, shift, cols);
  const y = rounded(x);
  for (let r = 0; r < rows; r++) {
    for (let q = 0; q < cols; q++) {
      const i = trans ? q * ld + r : r * ld + q;
      y[i] = widen(roundNearest(Math.fround(x[i] - shift[q])));
    }
  }
  return y;
}

/** See Bf16Kernels.gemmBf16. */
export function gemmBf16(transA: boolean, transB: boolean, m: number, n: number, k: number, alpha: number,
  a: F32, lda: number, b: F32, ldb: number, beta: number, c: F32, ldc: number, bias: F32 | null,
  shiftA: F32 | null = null, shiftB: F32 | null = null): void {
  gemm(transA, transB, m, n, k, alpha, roundedOperand(a, transA, m, k, lda, shiftA, 'gemmBf16', 'shiftA'), lda,
    roundedOperand(b, transB, k, n, ldb, shiftB, 'gemmBf16', 'shiftB'), ldb, beta, c, ldc, bias);
}

/** See Bf16Kernels.gemmUnaryBf16. */
export function gemmUnaryBf16(op: number, backward: boolean, transA: boolean, transB: boolean, m: number, n: number, k: number,
  alpha: number, a: F32, lda: number, b: F32, ldb: number, beta: number, c: F32, ldc: number,
  bias: F32 | null, aux: F32, ldaux: number, shiftA: F32 | null = null, shiftB: F32 | null = null): void {
  gemmUnary(op, backward, transA, transB, m, n, k, alpha,
    roundedOperand(a, transA, m, k, lda, shiftA, 'gemmUnaryBf16', 'shiftA'), lda,
    roundedOperand(b, transB, k, n, ldb, shiftB, 'gemmUnaryBf16', 'shiftB'), ldb, beta, c, ldc, bias, aux, ldaux);
}

/**
 * qkv with q rounded to bf16 and k, v replaced by their offsets from the head's means over the
 * sequence, rounded (the native kernels' shift, see Bf16Kernels.attentionBf16), and the means
 * ck, cv ([B, H, hd] each).
 */
function shiftedRounded(B: number, S: number, H: number, hd: number, qkv: F32): { x: F32; ck: F32; cv: F32 } {
  const x = new Float32Array(qkv.length), ck = new Float32Array(B * H * hd), cv = new Float32Array(B * H * hd);
  const at = (b: number, s: number, w: number, h: number): number => ((b * S + s) * 3 + w) * H * hd + h * hd;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let w = 1; w <= 2; w++) {
        const c = (w === 1 ? ck : cv).subarray((b * H + h) * hd, (b * H + h + 1) * hd);
        for (let e = 0; e < hd; e++) {
          let acc = 0;
          for (let s = 0; s < S; s++) acc += qkv[at(b, s, w, h) + e];
          c[e] = Math.fround(acc / S);
          for (let s = 0; s < S; s++) x[at(b, s, w, h) + e] = widen(roundNearest(Math.fround(qkv[at(b, s, w, h) + e] - c[e])));
        }
      }
      for (let s = 0; s < S; s++) for (let e = 0; e < hd; e++) x[at(b, s, 0, h) + e] = widen(roundNearest(qkv[at(b, s, 0, h) + e]));
    }
  }
  return { x, ck, cv };
}

/** lse of the shifted keys -> lse of the keys: + scale * q . ck (q unrounded), or - for the inverse. */
function shiftLse(B: number, S: number, H: number, hd: number, scale: number, qkv: F32, ck: F32, lse: F32, sign: number): F32 {
  const r = new Float32Array(lse.length);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let s = 0; s < S; s++) {
        let d = 0;
        for (let e = 0; e < hd; e++) d += qkv[((b * S + s) * 3) * H * hd + h * hd + e] * ck[(b * H + h) * hd + e];
        const i = (b * H + h) * S + s;
        r[i] = lse[i] + sign * Math.fround(scale * Math.fround(d));
      }
    }
  }
  return r;
}

/** See Bf16Kernels.attentionBf16 (q and the shifted k, v rounded; the probabilities stay fp32 here). */
export function attentionBf16(B: number, S: number, H: number, hd: number, scale: number, qkv: F32, out: F32, lse: F32): void {
  const { x, ck, cv } = shiftedRounded(B, S, H, hd, qkv);
  attention(B, S, H, hd, scale, x, out, lse);
  for (let i = 0; i < out.length; i++) out[i] += cv[Math.floor(i / (H * hd) / S) * H * hd + (i % (H * hd))];
  lse.set(shiftLse(B, S, H, hd, scale, qkv, ck, lse, 1));
}

/** See Bf16Kernels.attentionBackwardBf16 (q, the shifted k, v, and gout rounded). */
export function attentionBackwardBf16(B: number, S: number, H: number, hd: number, scale: number,
  qkv: F32, out: F32, lse: F32, gout: F32, gqkv: F32): void {
  const { x, ck, cv } = shiftedRounded(B, S, H, hd, qkv);
  const outS = new Float32Array(out.length);
  for (let i = 0; i < out.length; i++) outS[i] = out[i] - cv[Math.floor(i / (H * hd) / S) * H * hd + (i % (H * hd))];
  attentionBackward(B, S, H, hd, scale, x, outS, shiftLse(B, S, H, hd, scale, qkv, ck, lse, -1), rounded(gout), gqkv);
}

/** See Bf16Kernels.gemmGroupedRowsBf16. */
export function gemmGroupedRowsBf16(G: number, offsets: I32, transB: boolean, n: number, k: number, alpha: number,
  a: F32, lda: number, b: F32, strideB: number, ldb: number, beta: number, c: F32, ldc: number,
  bias: F32 | null, shift: F32 | null = null): void {
  const A = roundedOperand(a, false, G > 0 ? offsets[G] : 0, k, lda, shift, 'gemmGroupedRowsBf16', 'shift');
  gemmGroupedRows(G, offsets, transB, n, k, alpha, A, lda, rounded(b), strideB, ldb, beta, c, ldc, bias);
}

/** See Bf16Kernels.gemmGroupedKBf16. */
export function gemmGroupedKBf16(G: number, offsets: I32, m: number, n: number, alpha: number,
  a: F32, lda: number, b: F32, ldb: number, beta: number, c: F32, strideC: number, ldc: number, shift: F32 | null = null): void {
  const A = roundedOperand(a, false, G > 0 ? offsets[G] : 0, m, lda, shift, 'gemmGroupedKBf16', 'shift');
  gemmGroupedK(G, offsets, m, n, alpha, A, lda, rounded(b), ldb, beta, c, strideC, ldc);
}

/** See Bf16Kernels.f32ToBf16. */
export function f32ToBf16(x: F32, out: U16): void {
  len('f32ToBf16', 'x', x, out.length);
  for (let i = 0; i < out.length; i++) out[i] = roundNearest(x[i]);
}

/** See Bf16Kernels.f32ToBf16Stochastic. */
export function f32ToBf16Stochastic(x: F32, seed: number, out: U16): void {
  need(Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff, 'f32ToBf16Stochastic', `seed must be an integer in [0, 2^32), got ${seed}`);
  len('f32ToBf16Stochastic', 'x', x, out.length);
  for (let i = 0; i < out.length; i++) out[i] = roundStochastic(x[i], hash32(hash32(i) ^ seed));
}

/** See Bf16Kernels.bf16ToF32. */
export function bf16ToF32(x: U16, out: F32): void {
  len('bf16ToF32', 'x', x, out.length);
  for (let i = 0; i < out.length; i++) out[i] = widen(x[i]);
}
