// AVX2+FMA SGEMM: a 6x16 micro-kernel (12 ymm accumulators, 2 B loads and 6 broadcasts per k step)
// and packing routines with 8x8 register transposes. Plain functions and intrinsics only (this file
// is compiled with -mavx2 -mfma; see gemm.h for why no STL here).
#include <immintrin.h>

#include "gemm.h"

namespace moelab {
namespace gemmk {

namespace {

constexpr int MR = 6, NR = 16;

inline __m256 loadBias(const float* bias, int off) {
  return bias ? _mm256_loadu_ps(bias + off) : _mm256_setzero_ps();
}

// One output row: c[0..16) = alpha*(x0,x1) + beta*c + bias.
inline void storeRow(float* c, __m256 x0, __m256 x1, __m256 va, __m256 vb, int mode, __m256 b0, __m256 b1) {
  x0 = _mm256_fmadd_ps(x0, va, b0);
  x1 = _mm256_fmadd_ps(x1, va, b1);
  if (mode == 1) {
    x0 = _mm256_add_ps(x0, _mm256_loadu_ps(c));
    x1 = _mm256_add_ps(x1, _mm256_loadu_ps(c + 8));
  } else if (mode == 2) {
    x0 = _mm256_fmadd_ps(_mm256_loadu_ps(c), vb, x0);
    x1 = _mm256_fmadd_ps(_mm256_loadu_ps(c + 8), vb, x1);
  }
  _mm256_storeu_ps(c, x0);
  _mm256_storeu_ps(c + 8, x1);
}

void kernel6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta,
                const float* bias) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();

#define MOELAB_G6_STEP(u)                                  \
  {                                                        \
    const __m256 b0 = _mm256_load_ps(b + (u) * 16);        \
    const __m256 b1 = _mm256_load_ps(b + (u) * 16 + 8);    \
    __m256 av = _mm256_broadcast_ss(a + (u) * 6 + 0);      \
    c00 = _mm256_fmadd_ps(av, b0, c00);                    \
    c01 = _mm256_fmadd_ps(av, b1, c01);                    \
    av = _mm256_broadcast_ss(a + (u) * 6 + 1);             \
    c10 = _mm256_fmadd_ps(av, b0, c10);                    \
    c11 = _mm256_fmadd_ps(av, b1, c11);                    \
    av = _mm256_broadcast_ss(a + (u) * 6 + 2);             \
    c20 = _mm256_fmadd_ps(av, b0, c20);                    \
    c21 = _mm256_fmadd_ps(av, b1, c21);                    \
    av = _mm256_broadcast_ss(a + (u) * 6 + 3);             \
    c30 = _mm256_fmadd_ps(av, b0, c30);                    \
    c31 = _mm256_fmadd_ps(av, b1, c31);                    \
    av = _mm256_broadcast_ss(a + (u) * 6 + 4);             \
    c40 = _mm256_fmadd_ps(av, b0, c40);                    \
    c41 = _mm256_fmadd_ps(av, b1, c41);                    \
    av = _mm256_broadcast_ss(a + (u) * 6 + 5);             \
    c50 = _mm256_fmadd_ps(av, b0, c50);                    \
    c51 = _mm256_fmadd_ps(av, b1, c51);                    \
  }

  int64_t p = 0;
  for (; p + 4 <= kc; p += 4) {
    _mm_prefetch((const char*)(a + 96), _MM_HINT_T0);
    MOELAB_G6_STEP(0)
    MOELAB_G6_STEP(1)
    MOELAB_G6_STEP(2)
    MOELAB_G6_STEP(3)
    a += 24;
    b += 64;
  }
  for (; p < kc; p++) {
    MOELAB_G6_STEP(0)
    a += 6;
    b += 16;
  }
#undef MOELAB_G6_STEP

  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  const __m256 b0 = loadBias(bias, 0), b1 = loadBias(bias, 8);
  const int mode = beta == 0.f ? 0 : (beta == 1.f ? 1 : 2);
  storeRow(c, c00, c01, va, vb, mode, b0, b1);
  storeRow(c + ldc, c10, c11, va, vb, mode, b0, b1);
  storeRow(c + 2 * ldc, c20, c21, va, vb, mode, b0, b1);
  storeRow(c + 3 * ldc, c30, c31, va, vb, mode, b0, b1);
  storeRow(c + 4 * ldc, c40, c41, va, vb, mode, b0, b1);
  storeRow(c + 5 * ldc, c50, c51, va, vb, mode, b0, b1);
}

// In-register 8x8 transpose: on return r[q] holds column q of the input rows.
inline void transpose8(__m256 r[8]) {
  __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// A sliver with rows along memory stride rs and k contiguous (cs == 1): transposes 6 rows x 8 k
// steps at a time. Each 8-float store spills 2 floats into the next step's slot, which the next
// store overwrites; the buffer carries slack past its end for the final spill.
void packASliverRowMajor(int64_t kc, const float* s, int64_t rs, float* d) {
  const float* r0 = s;
  const float* r1 = s + rs;
  const float* r2 = s + 2 * rs;
  const float* r3 = s + 3 * rs;
  const float* r4 = s + 4 * rs;
  const float* r5 = s + 5 * rs;
  int64_t p = 0;
  for (; p + 8 <= kc; p += 8) {
    __m256 r[8] = {_mm256_loadu_ps(r0 + p), _mm256_loadu_ps(r1 + p), _mm256_loadu_ps(r2 + p),
                   _mm256_loadu_ps(r3 + p), _mm256_loadu_ps(r4 + p), _mm256_loadu_ps(r5 + p),
                   _mm256_setzero_ps(),     _mm256_setzero_ps()};
    transpose8(r);
    float* dp = d + p * 6;
    for (int q = 0; q < 8; q++) _mm256_storeu_ps(dp + q * 6, r[q]);
  }
  for (; p < kc; p++) {
    float* dp = d + p * 6;
    dp[0] = r0[p];
    dp[1] = r1[p];
    dp[2] = r2[p];
    dp[3] = r3[p];
    dp[4] = r4[p];
    dp[5] = r5[p];
  }
}

void packA(int64_t mc, int64_t kc, const float* a, int64_t rs, int64_t cs, float* dst) {
  for (int64_t i0 = 0; i0 < mc; i0 += MR) {
    const int64_t mr = mc - i0 < MR ? mc - i0 : MR;
    float* d = dst + i0 * kc;
    const float* s = a + i0 * rs;
    if (mr == MR && cs == 1) {
      packASliverRowMajor(kc, s, rs, d);
    } else if (mr == MR && rs == 1) {  // transposed A: 6 contiguous floats per k step
      for (int64_t p = 0; p < kc; p++) {
        const float* sp = s + p * cs;
        float* dp = d + p * 6;
        _mm_storeu_ps(dp, _mm_loadu_ps(sp));
        _mm_store_sd((double*)(dp + 4), _mm_load_sd((const double*)(sp + 4)));
      }
    } else {
      for (int64_t p = 0; p < kc; p++) {
        float* dp = d + p * MR;
        for (int64_t r = 0; r < mr; r++) dp[r] = s[r * rs + p * cs];
        for (int64_t r = mr; r < MR; r++) dp[r] = 0.f;
      }
    }
  }
}

void packB(int64_t kc, int64_t nc, const float* b, int64_t rs, int64_t cs, float* dst) {
  for (int64_t j0 = 0; j0 < nc; j0 += NR) {
    const int64_t nr = nc - j0 < NR ? nc - j0 : NR;
    float* d = dst + j0 * kc;
    const float* s = b + j0 * cs;
    if (nr == NR && cs == 1) {  // B rows contiguous: two vector copies per k step
      int64_t p = 0;
      for (; p + 2 <= kc; p += 2) {
        const float* sp = s + p * rs;
        __m256 x0 = _mm256_loadu_ps(sp), x1 = _mm256_loadu_ps(sp + 8);
        __m256 x2 = _mm256_loadu_ps(sp + rs), x3 = _mm256_loadu_ps(sp + rs + 8);
        _mm256_store_ps(d + p * 16, x0);
        _mm256_store_ps(d + p * 16 + 8, x1);
        _mm256_store_ps(d + p * 16 + 16, x2);
        _mm256_store_ps(d + p * 16 + 24, x3);
      }
      for (; p < kc; p++) {
        const float* sp = s + p * rs;
        _mm256_store_ps(d + p * 16, _mm256_loadu_ps(sp));
        _mm256_store_ps(d + p * 16 + 8, _mm256_loadu_ps(sp + 8));
      }
    } else if (nr == NR && rs == 1) {  // transposed B: 16 columns each contiguous along k
      int64_t p = 0;
      for (; p + 8 <= kc; p += 8) {
        for (int h = 0; h < 2; h++) {
          const float* sh = s + (h * 8) * cs + p;
          __m256 r[8];
          for (int q = 0; q < 8; q++) r[q] = _mm256_loadu_ps(sh + q * cs);
          transpose8(r);
          float* dp = d + p * 16 + h * 8;
          for (int q = 0; q < 8; q++) _mm256_store_ps(dp + q * 16, r[q]);
        }
      }
      for (; p < kc; p++)
        for (int j = 0; j < NR; j++) d[p * NR + j] = s[j * cs + p];
    } else {
      for (int64_t p = 0; p < kc; p++) {
        float* dp = d + p * NR;
        for (int64_t j = 0; j < nr; j++) dp[j] = s[p * rs + j * cs];
        for (int64_t j = nr; j < NR; j++) dp[j] = 0.f;
      }
    }
  }
}

}  // namespace

void avx2KernelSet(KernelSet* ks) {
  ks->name = "avx2";
  ks->mr = MR;
  ks->nr = NR;
  ks->kc = 256;
  ks->mc = 144;
  ks->nc = 2048;
  ks->kernel = kernel6x16;
  ks->packA = packA;
  ks->packB = packB;
}

}  // namespace gemmk
}  // namespace moelab
