// AVX-512 SGEMM: a 12x32 micro-kernel (24 zmm accumulators, 2 B loads and 12 broadcasts per k
// step). Packing uses the portable loops from gemm.h, which the compiler vectorizes with AVX-512
// here, except transposed-order slivers (packAColumns, packRowsTransposed). Plain functions and intrinsics only (see gemm.h).
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

// Columns of op(A) contiguous (A = X^T of a row-major X: the activations of a weight gradient).
// Each source row (one depth step) is read once, front to back, and its 12-float pieces go to every
// sliver; sliver by sliver (the portable order) re-reads each row's cache lines once per sliver,
// from L2 by then. The rows are strided (often a page apart), where hardware prefetchers give up,
// so the rows kAheadRows ahead are requested explicitly.
constexpr int64_t kAheadRows = 8;
void packAColumns(int64_t mc, int64_t kc, const float* a, int64_t cs, float* dst) {
  const __mmask16 full = (__mmask16)((1u << MR) - 1);
  const int64_t whole = mc / MR * MR;
  const __mmask16 tail = (__mmask16)((1u << (mc - whole)) - 1);
  for (int64_t p = 0; p < kc; p++) {
    const float* s = a + p * cs;
    if (p + kAheadRows < kc)
      for (int64_t i = 0; i < mc; i += 16) _mm_prefetch((const char*)(s + kAheadRows * cs + i), _MM_HINT_T0);
    float* d = dst + p * MR;
    for (int64_t i0 = 0; i0 < whole; i0 += MR) _mm512_mask_storeu_ps(d + i0 * kc, full, _mm512_maskz_loadu_ps(full, s + i0));
    // the last sliver is zero past mc
    if (whole < mc) _mm512_mask_storeu_ps(d + whole * kc, full, _mm512_maskz_loadu_ps(tail, s + whole));
  }
}

// Rows of op(A) contiguous (activations, output gradients): a full sliver is 12 rows read along k,
// written k-major (d[p*12 + r]); likewise a sliver of op(B) = W^T is 32 rows of W written
// d[p*32 + j]. 16 depth steps at a time, each group of 4 rows is transposed in 4x4 blocks per
// 128-bit lane, so a depth step's 4 values leave in one 16-byte store instead of 4 scalar ones
// (the portable loops' strided scalar stores).
// GCC 12 warns inside its own unpack / extract intrinsics (their unused pass-through operand is
// _mm512_undefined_ps): a false positive.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
template <int W>
inline void store4x4Lanes(float* d, int64_t at, __m512 r0, __m512 r1, __m512 r2, __m512 r3) {
  const __m512 t0 = _mm512_unpacklo_ps(r0, r1), t1 = _mm512_unpackhi_ps(r0, r1);
  const __m512 t2 = _mm512_unpacklo_ps(r2, r3), t3 = _mm512_unpackhi_ps(r2, r3);
  const __m512 u[4] = {_mm512_shuffle_ps(t0, t2, 0x44), _mm512_shuffle_ps(t0, t2, 0xEE),
                       _mm512_shuffle_ps(t1, t3, 0x44), _mm512_shuffle_ps(t1, t3, 0xEE)};
  // u[j] lane L holds depth step 4L + j of the 4 rows
  for (int j = 0; j < 4; j++) {
    _mm_storeu_ps(d + (0 + j) * W + at, _mm512_castps512_ps128(u[j]));
    _mm_storeu_ps(d + (4 + j) * W + at, _mm512_extractf32x4_ps(u[j], 1));
    _mm_storeu_ps(d + (8 + j) * W + at, _mm512_extractf32x4_ps(u[j], 2));
    _mm_storeu_ps(d + (12 + j) * W + at, _mm512_extractf32x4_ps(u[j], 3));
  }
}

#pragma GCC diagnostic pop

// W source rows s + r*ld, each read along k -> d[p*W + r] for p < kc.
template <int W>
void packRowsTransposed(int64_t kc, const float* s, int64_t ld, float* d) {
  int64_t p = 0;
  for (; p + 16 <= kc; p += 16) {
    const float* sp = s + p;
    float* dp = d + p * W;
    for (int g = 0; g < W; g += 4)
      store4x4Lanes<W>(dp, g, _mm512_loadu_ps(sp + g * ld), _mm512_loadu_ps(sp + (g + 1) * ld),
                       _mm512_loadu_ps(sp + (g + 2) * ld), _mm512_loadu_ps(sp + (g + 3) * ld));
  }
  for (; p < kc; p++)
    for (int r = 0; r < W; r++) d[p * W + r] = s[r * ld + p];
}

void packA(int64_t mc, int64_t kc, const float* a, int64_t rs, int64_t cs, float* dst) {
  if (rs == 1 && cs != 1) return packAColumns(mc, kc, a, cs, dst);
  if (cs == 1) {
    const int64_t whole = mc / MR * MR;
    for (int64_t i0 = 0; i0 < whole; i0 += MR) packRowsTransposed<MR>(kc, a + i0 * rs, rs, dst + i0 * kc);
    if (whole < mc) gemmPackAPortable<MR>(mc - whole, kc, a + whole * rs, rs, cs, dst + whole * kc);
    return;
  }
  gemmPackAPortable<MR>(mc, kc, a, rs, cs, dst);
}
void packB(int64_t kc, int64_t nc, const float* b, int64_t rs, int64_t cs, float* dst) {
  if (rs == 1 && cs != 1) {  // columns of op(B) contiguous: a weight used transposed
    const int64_t whole = nc / NR * NR;
    for (int64_t j0 = 0; j0 < whole; j0 += NR) packRowsTransposed<NR>(kc, b + j0 * cs, cs, dst + j0 * kc);
    if (whole < nc) gemmPackBPortable<NR>(kc, nc - whole, b + whole * cs, rs, cs, dst + whole * kc);
    return;
  }
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
