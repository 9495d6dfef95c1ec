/**
 * The bf16 family of the kernel contract: mixed-precision GEMMs and attention, and fp32 <-> bf16
 * conversions. Part of `Kernels` (../kernels.ts), with its conventions (raw typed arrays, explicit
 * sizes, row-major).
 *
 * bf16 is the top 16 bits of an fp32 (8 exponent bits, 7 stored mantissa bits), held in a
 * Uint16Array. Rounding to nearest even has relative error <= 2^-8 for normal values.
 *
 * The bf16 GEMMs have exactly the fp32 contract of gemm / gemmGroupedRows / gemmGroupedK, except that
 * every element of A and B is first rounded to bf16 (nearest even) and products are accumulated in
 * fp32; alpha, beta, bias and C stay fp32. Callers keep fp32 arrays (master weights stay fp32). Error
 * bound per output, with S = sum_p |op(A)_ip| |op(B)_pj|:
 *   |C_ij - exact_ij| <= (2^-7 + 2^-16) * S  +  (k + 2) * 2^-24 * S
 * (operand rounding: (1 + e1)(1 + e2) - 1 with |e| <= 2^-8; then fp32 summation). The native kernels
 * may compute products under ~1k multiply-adds in fp32 on unrounded operands, which is within that bound,
 * and they treat bf16 subnormals as zero (vdpbf16ps), which adds at most 2^-126 * |other operand| per term.
 * Native: AVX512_BF16 only; on other CPUs (or MOELAB_ISA below avx512) they throw an Error, see
 * CpuInfo.bf16. The reference implements them everywhere.
 *
 * Operand shifts: optional fp32 vectors subtracted from an operand's rows before rounding; the
 * kernel then computes the product of the shifted operands (S above sums those):
 * - gemmBf16, gemmUnaryBf16: shiftA [k], shiftB [n]: op(A)(i,p) - shiftA[p] and op(B)(p,j) - shiftB[j]
 *   in place of op(A) and op(B): alpha (op(A) - 1 shiftA^T)(op(B) - 1 shiftB^T) + beta C + bias;
 * - gemmGroupedRowsBf16: shift [k], gemmGroupedKBf16: shift [m]: every row of a (as stored, one row
 *   per token) minus shift.
 * The caller adds back what the shift removed, in fp32:
 * why it exists is that activations are often one large vector common to all rows plus a small
 * per-row signal (early in LM training, 95-100% of the energy of most GEMM inputs), and rounding
 * x = c + d costs 2^-9 |c| per element, more than d carries; x - c rounds with error 2^-9 |d|.
 */
import type { F32, I32 } from '../kernels.js';
import type { U16 } from './peer.js';

export interface Bf16Kernels {
  /** gemm() with A and B rounded to bf16 and fp32 accumulation (see the family doc for the bound). */
  gemmBf16(transA: boolean, transB: boolean, m: number, n: number, k: number, alpha: number,
    a: F32, lda: number, b: F32, ldb: number, beta: number, c: F32, ldc: number, bias: F32 | null,
    shiftA?: F32 | null, shiftB?: F32 | null): void;

  /**
   * gemmUnary() (the GEMM with a unary epilogue) with A and B rounded to bf16 and fp32 accumulation;
   * the epilogue is fp32 and applies to the shifted product (plus bias) when shifts are given.
   */
  gemmUnaryBf16(op: number, backward: boolean, transA: boolean, transB: boolean, m: number, n: number, k: number,
    alpha: number, a: F32, lda: number, b: F32, ldb: number, beta: number, c: F32, ldc: number,
    bias: F32 | null, aux: F32, ldaux: number, shiftA?: F32 | null, shiftB?: F32 | null): void;

  /** gemmGroupedRows() with A and B rounded to bf16 and fp32 accumulation; shift [k] is subtracted from a's rows. */
  gemmGroupedRowsBf16(G: number, offsets: I32, transB: boolean, n: number, k: number, alpha: number,
    a: F32, lda: number, b: F32, strideB: number, ldb: number, beta: number, c: F32, ldc: number,
    bias: F32 | null, shift?: F32 | null): void;

  /** gemmGroupedK() with A and B rounded to bf16 and fp32 accumulation; shift [m] is subtracted from a's rows. */
  gemmGroupedKBf16(G: number, offsets: I32, m: number, n: number, alpha: number,
    a: F32, lda: number, b: F32, ldb: number, beta: number, c: F32, strideC: number, ldc: number,
    shift?: F32 | null): void;

  /**
   * attention() with its matrix products on bf16 operands and fp32 accumulation. Keys and values
   * enter as offsets from the head's means over the sequence, c_k and c_v (fp32):
   *   out_s = c_v + sum_{t<=s} p_st (v_t - c_v),  p_st = softmax_t(scale * q_s . (k_t - c_k)),
   * equal to attention() in real arithmetic (the shift moves a row's scores by one constant); lse is
   * returned for the unshifted scores (+ scale * q_s . c_k). q, k - c_k, v - c_v and the
   * (unnormalised, blockwise) probabilities are rounded to bf16 (nearest even) where they enter a
   * product; the scores' scaling, the softmax statistics, lse and the normalisation stay fp32.
   * Why the shift: rounding then costs 2^-8 of how keys and values differ from each other, not of
   * their size, which matters when a head's values share one large component (early in training;
   * the score gradients are differences of near-equal numbers there). The means include later
   * positions, so an output depends on them at the level of bf16 rounding (never in its gradient).
   * The reference shifts and rounds the same way and runs the fp32 reference; the native kernel also
   * rounds the probabilities, so per output they differ by at most 2^-8 * max_t |v_t - c_v| (plus
   * fp32 summation), the bound the tests check.
   */
  attentionBf16(B: number, S: number, H: number, hd: number, scale: number, qkv: F32, out: F32, lse: F32): void;

  /**
   * attentionBackward() with the same precision and shift: q, k - c_k, v - c_v, gout, the recomputed
   * probabilities and the score gradients are rounded to bf16 where they enter a product;
   * D = rowsum(gout * (out - c_v)) and the softmax algebra are fp32. The reference rounds q, the
   * shifted k and v, and gout, then runs the fp32 reference.
   */
  attentionBackwardBf16(B: number, S: number, H: number, hd: number, scale: number,
    qkv: F32, out: F32, lse: F32, gout: F32, gqkv: F32): void;

  /**
   * out[i] = bf16 bits of x[i] rounded to nearest even, for i < out.length (u = fp32 bits of x[i]):
   *   NaN -> (u >>> 16) | 0x40 (stays a quiet NaN);  otherwise (u + 0x7fff + ((u >>> 16) & 1)) >>> 16.
   */
  f32ToBf16(x: F32, out: U16): void;

  /**
   * Stochastic rounding, for i < out.length (< 2^32): r_i = lowbias32(lowbias32(i) ^ seed) & 0xffff
   * (lowbias32 as in dropout), out[i] = (u + r_i) >>> 16; NaN as in f32ToBf16, +-Inf unchanged.
   * Rounds up with probability (x - lower) / ulp, so the expected result is x. seed is a uint32.
   */
  f32ToBf16Stochastic(x: F32, seed: number, out: U16): void;

  /** out[i] = the fp32 value of bf16 bits x[i] (exact: x[i] << 16), for i < out.length. */
  bf16ToF32(x: U16, out: F32): void;
}

/** Every bf16 kernel name, checked by the compiler against Bf16Kernels. */
export const BF16_KERNEL_NAMES: Record<keyof Bf16Kernels, true> = {
  gemmBf16: true, gemmUnaryBf16: true, gemmGroupedRowsBf16: true, gemmGroupedKBf16: true,
  attentionBf16: true, attentionBackwardBf16: true,
  f32ToBf16: true, f32ToBf16Stochastic: true, bf16ToF32: true,
};
