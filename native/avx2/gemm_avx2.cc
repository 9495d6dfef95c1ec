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

// Writes an M x 16 tile from accumulators: C = alpha*acc + beta*C + bias (beta 0: C not read).
template <int M>
inline void storeTile(float* c, int64_t ldc, const __m256 (&acc)[M][2], float alpha, float beta,
                      const float* bias) {
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  const __m256 b0 = loadBias(bias, 0), b1 = loadBias(bias, 8);
  const int mode = beta == 0.f ? 0 : (beta == 1.f ? 1 : 2);
#pragma GCC unroll 8
  for (int r = 0; r < M; r++) storeRow(c + r * ldc, acc[r][0], acc[r][1], va, vb, mode, b0, b1);
}

inline void prefetchTile(const float* c, int64_t ldc, int rows) {
  for (int r = 0; r < rows; r++) {
    _mm_prefetch((const char*)(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch((const char*)(c + r * ldc + 15), _MM_HINT_T0);
  }
}

// Short-edge kernels (M < 6 rows, full 16 columns) in intrinsics: at most 10 accumulators, so the
// compiler keeps everything in registers.
template <int M>
void kernelRows(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta,
                const float* bias) {
  __m256 acc[M][2];
#pragma GCC unroll 8
  for (int r = 0; r < M; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  prefetchTile(c, ldc, M);
  for (int64_t p = 0; p < kc; p++) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 8
    for (int r = 0; r < M; r++) {
      const __m256 av = _mm256_broadcast_ss(a + r);
      acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
    }
    a += 6;  // packed A slivers are always MR = 6 wide (zero-padded)
    b += 16;
  }
  storeTile<M>(c, ldc, acc, alpha, beta, bias);
}

// The main 6x16 kernel. The k loop is hand-scheduled inline assembly: 12 accumulators pinned in
// registers, ymm0-1 hold the B row, ymm2-3 alternate as A broadcasts (compilers tend to spill
// one accumulator here, which costs ~10%).
#define MOELAB_G6_STEP(u)                                   \
  "vmovaps " #u "*64(%[b]), %%ymm0\n\t"                     \
  "vmovaps " #u "*64+32(%[b]), %%ymm1\n\t"                  \
  "vbroadcastss " #u "*24(%[a]), %%ymm2\n\t"                \
  "vfmadd231ps %%ymm0, %%ymm2, %[c00]\n\t"                  \
  "vfmadd231ps %%ymm1, %%ymm2, %[c01]\n\t"                  \
  "vbroadcastss " #u "*24+4(%[a]), %%ymm3\n\t"              \
  "vfmadd231ps %%ymm0, %%ymm3, %[c10]\n\t"                  \
  "vfmadd231ps %%ymm1, %%ymm3, %[c11]\n\t"                  \
  "vbroadcastss " #u "*24+8(%[a]), %%ymm2\n\t"              \
  "vfmadd231ps %%ymm0, %%ymm2, %[c20]\n\t"                  \
  "vfmadd231ps %%ymm1, %%ymm2, %[c21]\n\t"                  \
  "vbroadcastss " #u "*24+12(%[a]), %%ymm3\n\t"             \
  "vfmadd231ps %%ymm0, %%ymm3, %[c30]\n\t"                  \
  "vfmadd231ps %%ymm1, %%ymm3, %[c31]\n\t"                  \
  "vbroadcastss " #u "*24+16(%[a]), %%ymm2\n\t"             \
  "vfmadd231ps %%ymm0, %%ymm2, %[c40]\n\t"                  \
  "vfmadd231ps %%ymm1, %%ymm2, %[c41]\n\t"                  \
  "vbroadcastss " #u "*24+20(%[a]), %%ymm3\n\t"             \
  "vfmadd231ps %%ymm0, %%ymm3, %[c50]\n\t"                  \
  "vfmadd231ps %%ymm1, %%ymm3, %[c51]\n\t"

void kernel6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta,
                const float* bias) {
  __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
  // Pull this tile of C into L1 while the k loop runs (it is otherwise a cache miss at the end).
  prefetchTile(c, ldc, 6);
  int64_t k4 = kc >> 2, k1 = kc & 3;
  __asm__ volatile(
      "vxorps %[c00], %[c00], %[c00]\n\t"
      "vxorps %[c01], %[c01], %[c01]\n\t"
      "vxorps %[c10], %[c10], %[c10]\n\t"
      "vxorps %[c11], %[c11], %[c11]\n\t"
      "vxorps %[c20], %[c20], %[c20]\n\t"
      "vxorps %[c21], %[c21], %[c21]\n\t"
      "vxorps %[c30], %[c30], %[c30]\n\t"
      "vxorps %[c31], %[c31], %[c31]\n\t"
      "vxorps %[c40], %[c40], %[c40]\n\t"
      "vxorps %[c41], %[c41], %[c41]\n\t"
      "vxorps %[c50], %[c50], %[c50]\n\t"
      "vxorps %[c51], %[c51], %[c51]\n\t"
      "test %[k4], %[k4]\n\t"
      "jz 2f\n\t"
      ".p2align 5\n"
      "1:\n\t"
      "prefetcht0 384(%[a])\n\t"
      MOELAB_G6_STEP(0)
      MOELAB_G6_STEP(1)
      MOELAB_G6_STEP(2)
      MOELAB_G6_STEP(3)
      "add $96, %[a]\n\t"
      "add $256, %[b]\n\t"
      "dec %[k4]\n\t"
      "jnz 1b\n"
      "2:\n\t"
      "test %[k1], %[k1]\n\t"
      "jz 4f\n"
      "3:\n\t"
      MOELAB_G6_STEP(0)
      "add $24, %[a]\n\t"
      "add $64, %[b]\n\t"
      "dec %[k1]\n\t"
      "jnz 3b\n"
      "4:\n\t"
      : [c00] "=x"(c00), [c01] "=x"(c01), [c10] "=x"(c10), [c11] "=x"(c11), [c20] "=x"(c20),
        [c21] "=x"(c21), [c30] "=x"(c30), [c31] "=x"(c31), [c40] "=x"(c40), [c41] "=x"(c41),
        [c50] "=x"(c50), [c51] "=x"(c51), [a] "+r"(a), [b] "+r"(b), [k4] "+r"(k4), [k1] "+r"(k1)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "cc", "memory");
  const __m256 acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  storeTile<6>(c, ldc, acc, alpha, beta, bias);
}
#undef MOELAB_G6_STEP

alignas(32) const float kZeros[8] = {0, 0, 0, 0, 0, 0, 0, 0};

inline __m256 load4x2(const float* lo, const float* hi) {
  return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(lo)), _mm_loadu_ps(hi), 1);
}

// In-lane 4x4 transposes of a 2x(4x4) block: on return x[q] = column q of the input rows.
inline void transpose4x2(__m256& x0, __m256& x1, __m256& x2, __m256& x3) {
  const __m256 t0 = _mm256_unpacklo_ps(x0, x1), t1 = _mm256_unpackhi_ps(x0, x1);
  const __m256 t2 = _mm256_unpacklo_ps(x2, x3), t3 = _mm256_unpackhi_ps(x2, x3);
  x0 = _mm256_shuffle_ps(t0, t2, 0x44);
  x1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  x2 = _mm256_shuffle_ps(t1, t3, 0x44);
  x3 = _mm256_shuffle_ps(t1, t3, 0xEE);
}

// Loads an 8x8 block (row q at r[q]) transposed: out[c] = (r[0][c], ..., r[7][c]). Rows 0-3 and
// 4-7 are paired in the two 128-bit lanes at load time, so only in-lane shuffles are needed (no
// cross-lane permutes, which are slow on Zen 1).
inline void loadTransposed8(const float* const r[8], __m256 out[8]) {
  __m256 a0 = load4x2(r[0], r[4]), a1 = load4x2(r[1], r[5]), a2 = load4x2(r[2], r[6]), a3 = load4x2(r[3], r[7]);
  __m256 b0 = load4x2(r[0] + 4, r[4] + 4), b1 = load4x2(r[1] + 4, r[5] + 4);
  __m256 b2 = load4x2(r[2] + 4, r[6] + 4), b3 = load4x2(r[3] + 4, r[7] + 4);
  transpose4x2(a0, a1, a2, a3);
  transpose4x2(b0, b1, b2, b3);
  out[0] = a0, out[1] = a1, out[2] = a2, out[3] = a3;
  out[4] = b0, out[5] = b1, out[6] = b2, out[7] = b3;
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
    const float* rows[8] = {r0 + p, r1 + p, r2 + p, r3 + p, r4 + p, r5 + p, kZeros, kZeros};
    __m256 r[8];
    loadTransposed8(rows, r);
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

// Transposed A (op(A) columns contiguous): walk k outer so each source row is read once and
// contiguously, scattering 6-float pieces to the slivers.
void packATransposed(int64_t mc, int64_t kc, const float* a, int64_t cs, float* dst) {
  const int64_t full = mc / MR;
  for (int64_t p = 0; p < kc; p++) {
    const float* sp = a + p * cs;
    if (p + 8 < kc)
      for (int64_t i = 0; i < mc; i += 16) __builtin_prefetch(sp + 8 * cs + i, 0, 3);
    float* dp = dst + p * MR;
    for (int64_t s = 0; s < full; s++) {
      const float* x = sp + s * MR;
      float* y = dp + s * MR * kc;
      _mm_storeu_ps(y, _mm_loadu_ps(x));
      // two floats as one 64-bit move; the _epi64 forms are the ones defined for unaligned addresses
      // (_mm_load_sd / _mm_store_sd dereference a double*: undefined behaviour at 4-byte alignment)
      _mm_storel_epi64((__m128i*)(y + 4), _mm_loadl_epi64((const __m128i*)(x + 4)));
    }
  }
}

void packA(int64_t mc, int64_t kc, const float* a, int64_t rs, int64_t cs, float* dst) {
  int64_t i0 = 0;
  if (rs == 1 && mc >= MR) {
    packATransposed(mc, kc, a, cs, dst);
    i0 = mc / MR * MR;
  }
  for (; i0 < mc; i0 += MR) {
    const int64_t mr = mc - i0 < MR ? mc - i0 : MR;
    float* d = dst + i0 * kc;
    const float* s = a + i0 * rs;
    if (mr == MR && cs == 1) {
      packASliverRowMajor(kc, s, rs, d);
    } else {
      for (int64_t p = 0; p < kc; p++) {
        float* dp = d + p * MR;
        for (int64_t r = 0; r < mr; r++) dp[r] = s[r * rs + p * cs];
        for (int64_t r = mr; r < MR; r++) dp[r] = 0.f;
      }
    }
  }
}

// B rows contiguous, one sliver: two vector copies per k step. Source rows are usually far apart
// (a multiple of 4 KiB is common), which the hardware prefetcher handles poorly, so prefetch a
// few rows ahead.
void packBSliverRows(int64_t kc, const float* s, int64_t rs, float* d) {
  constexpr int64_t PD = 8;
  for (int64_t p = 0; p < kc; p++) {
    const float* sp = s + p * rs;
    __builtin_prefetch(sp + PD * rs, 0, 3);
    const __m256 x0 = _mm256_loadu_ps(sp), x1 = _mm256_loadu_ps(sp + 8);
    _mm256_store_ps(d + p * 16, x0);
    _mm256_store_ps(d + p * 16 + 8, x1);
  }
}

// B rows contiguous, a whole block of full slivers: walk the source in row order (4 rows at a
// time) so it streams from memory at full bandwidth, scattering 64-byte pieces to the slivers.
// Used when B is too big to be cache-resident; about 1.5x faster than sliver order from DRAM.
void packBBlockRows(int64_t kc, int64_t nc, const float* s, int64_t rs, float* d) {
  int64_t p = 0;
  for (; p + 4 <= kc; p += 4) {
    const float* sp = s + p * rs;
    float* dp = d + p * 16;
    for (int64_t j = 0; j < nc; j += 16) {
      float* dj = dp + j * kc;
      for (int q = 0; q < 4; q++) {
        const __m256 x0 = _mm256_loadu_ps(sp + q * rs + j), x1 = _mm256_loadu_ps(sp + q * rs + j + 8);
        _mm256_store_ps(dj + q * 16, x0);
        _mm256_store_ps(dj + q * 16 + 8, x1);
      }
    }
  }
  for (; p < kc; p++)
    for (int64_t j = 0; j < nc; j += 16) {
      _mm256_store_ps(d + j * kc + p * 16, _mm256_loadu_ps(s + p * rs + j));
      _mm256_store_ps(d + j * kc + p * 16 + 8, _mm256_loadu_ps(s + p * rs + j + 8));
    }
}

// Transposed B: 16 source rows, each contiguous along k. Eight rows at a time over the whole
// depth: with source rows 4 KiB apart all of them land in one L1 set, and 8 rows is what an 8-way
// L1 keeps, so each line is read from L2 once (interleaving all 16 rows was 2x slower).
void packBSliverCols(int64_t kc, const float* s, int64_t cs, float* d) {
  for (int h = 0; h < 2; h++) {
    const float* sh = s + (h * 8) * cs;
    const float* rows[8];
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8) {
      for (int q = 0; q < 8; q++) rows[q] = sh + q * cs + p;
      __m256 r[8];
      loadTransposed8(rows, r);
      float* dp = d + p * 16 + h * 8;
      for (int q = 0; q < 8; q++) _mm256_store_ps(dp + q * 16, r[q]);
    }
    for (; p < kc; p++)
      for (int j = 0; j < 8; j++) d[p * NR + h * 8 + j] = sh[j * cs + p];
  }
}

void packB(int64_t kc, int64_t nc, const float* b, int64_t rs, int64_t cs, float* dst) {
  int64_t j0 = 0;
  if (cs == 1 && nc >= 2 * NR) {
    j0 = nc / NR * NR;
    packBBlockRows(kc, j0, b, rs, dst);
  }
  for (; j0 < nc; j0 += NR) {
    const int64_t nr = nc - j0 < NR ? nc - j0 : NR;
    float* d = dst + j0 * kc;
    const float* s = b + j0 * cs;
    if (nr == NR && cs == 1) {
      packBSliverRows(kc, s, rs, d);
    } else if (nr == NR && rs == 1) {
      packBSliverCols(kc, s, cs, d);
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
  ks->kc = 384;
  ks->mc = 144;
  ks->nc = 2048;
  ks->kernel = kernel6x16;
  ks->kernelRows[1] = kernelRows<1>;
  ks->kernelRows[2] = kernelRows<2>;
  ks->kernelRows[3] = kernelRows<3>;
  ks->kernelRows[4] = kernelRows<4>;
  ks->kernelRows[5] = kernelRows<5>;
  ks->kernelRows[6] = kernel6x16;
  ks->packA = packA;
  ks->packB = packB;
}

}  // namespace gemmk
}  // namespace moelab
