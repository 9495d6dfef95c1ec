// AVX-512 SGEMM: a 12x32 micro-kernel (24 zmm accumulators, 2 B loads and 12 broadcasts per k
// step). Packing uses the portable loops from gemm.h, which the compiler vectorizes with AVX-512
// here. Plain functions and intrinsics only (see gemm.h).
#include <immintrin.h>

#include "gemm.h"

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

void kernel12x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta,
                 const float* bias) {
  __m512 acc[MR][2];
  for (int r = 0; r < MR; r++) {
    acc[r][0] = _mm512_setzero_ps();
    acc[r][1] = _mm512_setzero_ps();
  }
  for (int64_t p = 0; p < kc; p++) {
    const __m512 b0 = _mm512_load_ps(b);
    const __m512 b1 = _mm512_load_ps(b + 16);
    _mm_prefetch((const char*)(b + 256), _MM_HINT_T0);
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
      const __m512 av = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
    }
    a += MR;
    b += NR;
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  const __m512 bb0 = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
  const __m512 bb1 = bias ? _mm512_loadu_ps(bias + 16) : _mm512_setzero_ps();
  const int mode = beta == 0.f ? 0 : (beta == 1.f ? 1 : 2);
#pragma GCC unroll 12
  for (int r = 0; r < MR; r++) storeRow(c + r * ldc, acc[r][0], acc[r][1], va, vb, mode, bb0, bb1);
}

void packA(int64_t mc, int64_t kc, const float* a, int64_t rs, int64_t cs, float* dst) {
  gemmPackAPortable<MR>(mc, kc, a, rs, cs, dst);
}
void packB(int64_t kc, int64_t nc, const float* b, int64_t rs, int64_t cs, float* dst) {
  gemmPackBPortable<NR>(kc, nc, b, rs, cs, dst);
}

}  // namespace

void avx512KernelSet(KernelSet* ks) {
  ks->name = "avx512";
  ks->mr = MR;
  ks->nr = NR;
  ks->kc = 384;
  ks->mc = 192;
  ks->nc = 3072;
  ks->kernel = kernel12x32;
  ks->packA = packA;
  ks->packB = packB;
}

}  // namespace gemmk
}  // namespace moelab
