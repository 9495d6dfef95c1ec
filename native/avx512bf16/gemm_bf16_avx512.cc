// AVX512_BF16 GEMM kernels: C(fp32) += A(bf16) @ B(bf16) with `vdpbf16ps`, which multiplies a pair
// of bf16 values per 32-bit lane and adds both products to an fp32 accumulator. The 12x32 tile is the
// fp32 kernel's (24 zmm accumulators, 2 B loads and 12 broadcasts per step), but one step covers two
// k values, so each instruction does twice the multiply-adds. Packing rounds fp32 operands to bf16
// (round to nearest even, gemm_bf16.h) into the pair layout; callers keep fp32 arrays.
// Compiled with -mavx512bf16: reached only through bf16KernelSet(), after the cpuid check.
#include <immintrin.h>

#include "gemm.h"
#include "gemm_bf16.h"

namespace moelab {
namespace gemmk {

namespace {

constexpr int MR = 12, NR = 32;

inline uint32_t pairBits(float lo, float hi) {
  return (uint32_t)bf16RoundNearest(lo) | ((uint32_t)bf16RoundNearest(hi) << 16);
}

// 32 consecutive floats (16 adjacent pairs along k) -> 16 slots dst[i*stride], i < 16. The hardware
// conversion rounds to nearest even like bf16RoundNearest, except that it flushes subnormals to
// zero, which vdpbf16ps does to its inputs anyway. A scatter because the slots of one row (or
// column) lie MR (NR) apart in the panel.
inline void pairs16(const float* src, uint32_t* dst, __m512i offsets) {
  const __m512 lo = _mm512_loadu_ps(src), hi = _mm512_loadu_ps(src + 16);
  _mm512_i32scatter_epi32(dst, offsets, (__m512i)_mm512_cvtne2ps_pbh(hi, lo), 4);
}

inline __m512i strideOffsets(int stride) {
  return _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(stride));
}

// op(A)(i,p) = a[i*rs + p*cs] -> MR-row slivers of k pairs (gemm_bf16.h).
void packA(int64_t mc, int64_t kc, const float* a, int64_t rs, int64_t cs, float* dstf) {
  uint32_t* dst = reinterpret_cast<uint32_t*>(dstf);
  const int64_t kq = (kc + 1) / 2, kEven = kc / 2;
  if (rs == 1) {
    // op(A) columns contiguous (A^T of a row-major array, e.g. the output gradient in a weight
    // gradient): pair q of every sliver comes from the same two source rows 2q and 2q+1, so q runs
    // outside and those rows are read once, front to back, instead of 48 bytes at a time per sliver.
    for (int64_t q = 0; q < kq; q++) {
      const float* s0 = a + 2 * q * cs;
      const float* s1 = q < kEven ? s0 + cs : nullptr;
      for (int64_t i0 = 0; i0 < mc; i0 += MR) {
        const int64_t mr = mc - i0 < MR ? mc - i0 : MR;
        uint32_t* d = dst + i0 * kq + q * MR;
        if (mr == MR && s1) {
          for (int r = 0; r < MR; r++) d[r] = pairBits(s0[i0 + r], s1[i0 + r]);
        } else {
          for (int64_t r = 0; r < mr; r++) d[r] = s1 ? pairBits(s0[i0 + r], s1[i0 + r]) : bf16RoundNearest(s0[i0 + r]);
          for (int64_t r = mr; r < MR; r++) d[r] = 0;
        }
      }
    }
    return;
  }
  const __m512i offs = strideOffsets(MR);
  for (int64_t i0 = 0; i0 < mc; i0 += MR) {
    const int64_t mr = mc - i0 < MR ? mc - i0 : MR;
    uint32_t* d = dst + i0 * kq;
    const float* s = a + i0 * rs;
    for (int64_t r = 0; r < mr; r++) {
      const float* sr = s + r * rs;
      int64_t q = 0;
      if (cs == 1)  // a row of op(A) is contiguous: its pairs are adjacent floats
        for (; q + 16 <= kEven; q += 16) pairs16(sr + 2 * q, d + q * MR + r, offs);
      for (; q < kEven; q++) d[q * MR + r] = pairBits(sr[2 * q * cs], sr[(2 * q + 1) * cs]);
      if (kq > kEven) d[kEven * MR + r] = bf16RoundNearest(sr[2 * kEven * cs]);
    }
    for (int64_t r = mr; r < MR; r++)
      for (int64_t q = 0; q < kq; q++) d[q * MR + r] = 0;
  }
}

// op(B)(p,j) = b[p*rs + j*cs] -> NR-column slivers of k pairs.
void packB(int64_t kc, int64_t nc, const float* b, int64_t rs, int64_t cs, float* dstf) {
  uint32_t* dst = reinterpret_cast<uint32_t*>(dstf);
  const int64_t kq = (kc + 1) / 2, kEven = kc / 2;
  for (int64_t j0 = 0; j0 < nc; j0 += NR) {
    const int64_t nr = nc - j0 < NR ? nc - j0 : NR;
    uint32_t* d = dst + j0 * kq;
    const float* s = b + j0 * cs;
    if (cs == 1) {  // op(B) rows contiguous
      for (int64_t q = 0; q < kEven; q++) {
        const float* s0 = s + 2 * q * rs;
        const float* s1 = s0 + rs;
        if (nr == NR) {
          for (int j = 0; j < NR; j++) d[q * NR + j] = pairBits(s0[j], s1[j]);
        } else {
          for (int64_t j = 0; j < nr; j++) d[q * NR + j] = pairBits(s0[j], s1[j]);
          for (int64_t j = nr; j < NR; j++) d[q * NR + j] = 0;
        }
      }
      if (kq > kEven) {
        const float* s0 = s + 2 * kEven * rs;
        for (int64_t j = 0; j < nr; j++) d[kEven * NR + j] = bf16RoundNearest(s0[j]);
        for (int64_t j = nr; j < NR; j++) d[kEven * NR + j] = 0;
      }
    } else {
      const __m512i offs = strideOffsets(NR);
      for (int64_t j = 0; j < nr; j++) {
        const float* sj = s + j * cs;
        int64_t q = 0;
        if (rs == 1)  // a column of op(B) is contiguous
          for (; q + 16 <= kEven; q += 16) pairs16(sj + 2 * q, d + q * NR + j, offs);
        for (; q < kEven; q++) d[q * NR + j] = pairBits(sj[2 * q * rs], sj[(2 * q + 1) * rs]);
        if (kq > kEven) d[kEven * NR + j] = bf16RoundNearest(sj[2 * kEven * rs]);
      }
      for (int64_t j = nr; j < NR; j++)
        for (int64_t q = 0; q < kq; q++) d[q * NR + j] = 0;
    }
  }
}

inline void storeRow(float* c, __m512 x0, __m512 x1, __m512 va, __m512 vb, int mode, __m512 b0, __m512 b1) {
  x0 = _mm512_fmadd_ps(x0, va, b0);
  x1 = _mm512_fmadd_ps(x1, va, b1);
  if (mode == 1) {
    x0 = _mm512_add_ps(x0, _mm512_loadu_ps(c));
    x1 = _mm512_add_ps(x1, _mm512_loadu_ps(c + 16));
  } else if (mode == 2) {
    x0 = _mm512_fmadd_ps(_mm512_loadu_ps(c), vb, x0);
    x1 = _mm512_fmadd_ps(_mm512_loadu_ps(c + 16), vb, x1);
  }
  _mm512_storeu_ps(c, x0);
  _mm512_storeu_ps(c + 16, x1);
}

// C = alpha * (Apanel @ Bpanel) + beta * C + bias over a full 12x32 tile; kc counts k values.
void kernel12x32(int64_t kc, const float* af, const float* bf, float* c, int64_t ldc, float alpha, float beta,
                 const float* bias) {
  const uint32_t* a = reinterpret_cast<const uint32_t*>(af);
  const __m512i* b = reinterpret_cast<const __m512i*>(bf);
  __m512 acc[MR][2];
  for (int r = 0; r < MR; r++) {
    acc[r][0] = _mm512_setzero_ps();
    acc[r][1] = _mm512_setzero_ps();
  }
  const int64_t kq = (kc + 1) / 2;
  for (int64_t q = 0; q < kq; q++) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(b);
    const __m512bh b1 = (__m512bh)_mm512_load_si512(b + 1);
    _mm_prefetch((const char*)(b + 16), _MM_HINT_T0);
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[r]);
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
    }
    a += MR;
    b += 2;
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  const __m512 bb0 = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
  const __m512 bb1 = bias ? _mm512_loadu_ps(bias + 16) : _mm512_setzero_ps();
  const int mode = beta == 0.f ? 0 : (beta == 1.f ? 1 : 2);
#pragma GCC unroll 12
  for (int r = 0; r < MR; r++) storeRow(c + r * ldc, acc[r][0], acc[r][1], va, vb, mode, bb0, bb1);
}

}  // namespace

void avx512Bf16KernelSet(KernelSet* ks) {
  ks->name = "avx512bf16";
  ks->mr = MR;
  ks->nr = NR;
  ks->kc = 768;  // a B sliver of 384 pairs x 32 columns is 48 KiB, as the fp32 kernel's 384 x 32
  ks->mc = 192;
  ks->nc = 3072;
  ks->kernel = kernel12x32;
  ks->packA = packA;
  ks->packB = packB;
  ks->kpack = 2;
}

}  // namespace gemmk
}  // namespace moelab
