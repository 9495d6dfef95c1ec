// AVX512_BF16 GEMM kernels: C(fp32) += A(bf16) @ B(bf16) with `vdpbf16ps`, which multiplies a pair
// of bf16 values per 32-bit lane and adds both products to an fp32 accumulator. The 12x32 tile is the
// fp32 kernel's (24 zmm accumulators, 2 B loads and 12 broadcasts per step), but one step covers two
// k values, so each instruction does twice the multiply-adds. Packing (pack_bf16_avx512.cc) rounds
// fp32 operands to bf16 (round to nearest even, gemm_bf16.h) into the pair layout; callers keep fp32 arrays.
// Compiled with -mavx512bf16: reached only through bf16KernelSet(), after the cpuid check.
#include <immintrin.h>

#include "gemm.h"
#include "gemm_bf16.h"
#include "pack_bf16.h"

namespace moelab {
namespace gemmk {

namespace {

constexpr int MR = 12, NR = 32;

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
  ks->packA = packABf16;
  ks->packB = packBBf16;
  ks->packAShift = packABf16Shift;
  ks->packBShift = packBBf16Shift;
  ks->kpack = 2;
}

}  // namespace gemmk
}  // namespace moelab
