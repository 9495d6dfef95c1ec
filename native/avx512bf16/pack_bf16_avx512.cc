// Packing for the AVX512_BF16 GEMM: fp32 blocks -> bf16 pair panels (layout in gemm_bf16.h: slot q
// of lane r holds op(X)(r, 2q) in its low half and op(X)(r, 2q+1) in its high half). Rounding is
// vcvtne2ps2bf16, nearest even like bf16RoundNearest except that subnormals flush to zero, which
// vdpbf16ps does to its inputs anyway, so the products are the same.
//
// The packing of a block costs a fixed amount per element while the kernel's work per element is
// the other dimension (n for A, m for B); at the model's n = 256 a scalar packing of A took a
// quarter of the GEMM. Both source orientations are vectorised:
// - lanes across (a column of op(A) / a row of op(B) contiguous): the two source lines of pair q
//   are converted 16 lanes at a time and their halves interleaved with one vpermw;
// - lines along k (a row of op(A) / a column of op(B) contiguous): 32 floats of each of 16 lines
//   become 16 pair slots each, and a 16 x 16 transpose of those slots gives the 16 pair groups.
// Edges (lanes past the block, the second half of a last odd pair) come from masked loads as zeros.
#include "pack_bf16.h"

#include <immintrin.h>

#include "gemm_bf16.h"

// GCC 12 flags the deliberately undefined pass-through operand inside its own unpack intrinsics
// (_mm512_undefined_epi32, "__Y = __Y") as maybe-uninitialized once they are inlined here.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace moelab {
namespace gemmk {

namespace {

constexpr int MR = 12, NR = 32;
constexpr int64_t kPrefetchPairs = 6;

inline __mmask16 firstN(int64_t n) {
  return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

// Word order that turns cvtne2ps2bf16(odd, even) = [even0..even15, odd0..odd15] into the pairs
// (even_r | odd_r << 16), r < 16.
alignas(64) const uint16_t kInterleave[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                              8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};

inline __m512i pairsAcross(__m512 even, __m512 odd, __m512i idx) {
  return _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(odd, even));
}

// In-place transpose of a 16 x 16 matrix of 32-bit slots (r[i] holds row i).
inline void transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  // u[4g + e] holds, in each 128-bit lane l, element 4l + e of rows 4g..4g+3
  for (int g = 0; g < 16; g += 4) {
    u[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
    u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
    u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
    u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
  }
  for (int e = 0; e < 4; e++) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[e], u[4 + e], 0x88), w0 = _mm512_shuffle_i32x4(u[e], u[4 + e], 0xdd);
    const __m512i v1 = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0x88), w1 = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0xdd);
    r[e] = _mm512_shuffle_i32x4(v0, v1, 0x88);
    r[8 + e] = _mm512_shuffle_i32x4(v0, v1, 0xdd);
    r[4 + e] = _mm512_shuffle_i32x4(w0, w1, 0x88);
    r[12 + e] = _mm512_shuffle_i32x4(w0, w1, 0xdd);
  }
}

// Lines along k: line l (< lines <= 16) of the group has element p at src[l*ld + p], p < kc. Writes
// slot (q, l) to dst[q*W + l] for q < ceil(kc/2), l < 16 (the store mask keeps l < W when W = 12);
// lines past `lines` are zero. Before rounding, kShift[p] (a shift along k, shared by the lines) and
// lineShift[l] (one per line) are subtracted when given; padding stays zero.
template <int W>
void linesAlongK(int64_t lines, int64_t kc, const float* src, int64_t ld, uint32_t* dst, const float* kShift,
                 const float* lineShift) {
  const __mmask16 keep = W >= 16 ? (__mmask16)0xffff : firstN(W);
  const int64_t kq = (kc + 1) / 2;
  __m512i r[16];
  for (int64_t q0 = 0; q0 < kq; q0 += 16) {
    const int64_t rem = kc - 2 * q0;
    const __mmask16 mlo = firstN(rem), mhi = firstN(rem - 16);
    __m512 klo = _mm512_setzero_ps(), khi = _mm512_setzero_ps();
    if (kShift) klo = _mm512_maskz_loadu_ps(mlo, kShift + 2 * q0), khi = _mm512_maskz_loadu_ps(mhi, kShift + 2 * q0 + 16);
    for (int l = 0; l < 16; l++) {
      if (l >= lines) {
        r[l] = _mm512_setzero_si512();
        continue;
      }
      const float* s = src + l * ld + 2 * q0;
      __m512 lo = rem >= 32 ? _mm512_loadu_ps(s) : _mm512_maskz_loadu_ps(mlo, s);
      __m512 hi = rem >= 32 ? _mm512_loadu_ps(s + 16) : _mm512_maskz_loadu_ps(mhi, s + 16);
      if (kShift) {
        lo = _mm512_sub_ps(lo, klo);
        hi = _mm512_sub_ps(hi, khi);
      }
      if (lineShift) {
        const __m512 v = _mm512_set1_ps(lineShift[l]);
        lo = _mm512_maskz_sub_ps(mlo, lo, v);
        hi = _mm512_maskz_sub_ps(mhi, hi, v);
      }
      r[l] = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
    }
    transpose16(r);
    const int64_t nq = kq - q0 < 16 ? kq - q0 : 16;
    uint32_t* d = dst + q0 * W;
    for (int64_t q = 0; q < nq; q++) _mm512_mask_storeu_epi32(d + q * W, keep, r[q]);
  }
}

// Scalar packing for blocks with neither orientation contiguous (not produced by the GEMM entry
// points, which always have a unit stride on one side, but kept general). laneShift[lane] and
// kShift[p] are subtracted when given.
template <int W>
void scalarPack(int64_t lanes, int64_t kc, const float* src, int64_t laneStride, int64_t kStride, uint32_t* dst,
                const float* laneShift, const float* kShift) {
  const int64_t kq = (kc + 1) / 2;
  auto at = [&](int64_t i, int64_t p) {
    float x = src[i * laneStride + p * kStride];
    if (kShift) x -= kShift[p];
    if (laneShift) x -= laneShift[i];
    return x;
  };
  for (int64_t s0 = 0; s0 < lanes; s0 += W) {
    uint32_t* d = dst + s0 * kq;
    for (int64_t q = 0; q < kq; q++)
      for (int64_t l = 0; l < W; l++) {
        const int64_t i = s0 + l;
        uint32_t v = 0;
        if (i < lanes) {
          v = bf16RoundNearest(at(i, 2 * q));
          if (2 * q + 1 < kc) v |= (uint32_t)bf16RoundNearest(at(i, 2 * q + 1)) << 16;
        }
        d[q * W + l] = v;
      }
  }
}

}  // namespace

void packABf16Shift(int64_t mc, int64_t kc, const float* a, int64_t rs, int64_t cs, const float* kShift,
                    const float* laneShift, float* dstf) {
  uint32_t* dst = reinterpret_cast<uint32_t*>(dstf);
  const int64_t kq = (kc + 1) / 2;
  if (cs == 1) {  // rows of op(A) contiguous (activations, output gradients)
    for (int64_t i0 = 0; i0 < mc; i0 += MR)
      linesAlongK<MR>(mc - i0 < MR ? mc - i0 : MR, kc, a + i0 * rs, rs, dst + i0 * kq, kShift,
                      laneShift ? laneShift + i0 : nullptr);
    return;
  }
  if (rs != 1) return scalarPack<MR>(mc, kc, a, rs, cs, dst, laneShift, kShift);
  // Columns of op(A) contiguous (A^T of a row-major array, the output gradient of a weight
  // gradient): pair q reads source rows 2q and 2q+1 front to back, once, for every sliver.
  // The source rows are strided (a new page for every pair), where hardware prefetchers stop, so
  // rows kPrefetchPairs pairs ahead are requested explicitly (cold blocks: 0.85 -> 0.30 ns/element).
  const __m512i idx = _mm512_load_si512(kInterleave);
  for (int64_t q = 0; q < kq; q++) {
    const float* s0 = a + 2 * q * cs;
    const bool odd = 2 * q + 1 < kc;
    if (q + kPrefetchPairs < kq) {
      const float* f0 = s0 + 2 * kPrefetchPairs * cs;
      const float* f1 = 2 * (q + kPrefetchPairs) + 1 < kc ? f0 + cs : f0;
      for (int64_t i = 0; i < mc; i += 16) {
        _mm_prefetch((const char*)(f0 + i), _MM_HINT_T0);
        _mm_prefetch((const char*)(f1 + i), _MM_HINT_T0);
      }
    }
    const __m512 se = _mm512_set1_ps(kShift ? kShift[2 * q] : 0.f), so = _mm512_set1_ps(kShift && odd ? kShift[2 * q + 1] : 0.f);
    for (int64_t i0 = 0; i0 < mc; i0 += MR) {
      const __mmask16 m = firstN(mc - i0 < MR ? mc - i0 : MR);
      // the lanes' shifts are zero past the edge, as are the loads, so padding stays zero
      const __m512 sl = laneShift ? _mm512_maskz_loadu_ps(m, laneShift + i0) : _mm512_setzero_ps();
      const __m512 ev = _mm512_sub_ps(_mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, s0 + i0), se), sl);
      const __m512 ov = odd ? _mm512_sub_ps(_mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, s0 + cs + i0), so), sl) : _mm512_setzero_ps();
      _mm512_mask_storeu_epi32(dst + i0 * kq + q * MR, firstN(MR), pairsAcross(ev, ov, idx));
    }
  }
}

void packABf16(int64_t mc, int64_t kc, const float* a, int64_t rs, int64_t cs, float* dst) {
  packABf16Shift(mc, kc, a, rs, cs, nullptr, nullptr, dst);
}

void packBBf16Shift(int64_t kc, int64_t nc, const float* b, int64_t rs, int64_t cs, const float* shift, float* dstf) {
  uint32_t* dst = reinterpret_cast<uint32_t*>(dstf);
  const int64_t kq = (kc + 1) / 2;
  if (rs == 1 && cs != 1) {  // columns of op(B) contiguous (a weight used transposed, W^T)
    for (int64_t j0 = 0; j0 < nc; j0 += NR) {
      const int64_t nr = nc - j0 < NR ? nc - j0 : NR;
      uint32_t* d = dst + j0 * kq;
      linesAlongK<NR>(nr, kc, b + j0 * cs, cs, d, nullptr, shift ? shift + j0 : nullptr);
      // the second 16 columns of the sliver (zeros past nr)
      linesAlongK<NR>(nr - 16, kc, b + (j0 + 16) * cs, cs, d + 16, nullptr, shift ? shift + j0 + 16 : nullptr);
    }
    return;
  }
  if (cs != 1) return scalarPack<NR>(nc, kc, b, cs, rs, dst, shift, nullptr);
  // Rows of op(B) contiguous: pair q interleaves rows 2q and 2q+1, 16 columns at a time.
  const __m512i idx = _mm512_load_si512(kInterleave);
  for (int64_t j0 = 0; j0 < nc; j0 += NR) {
    const int64_t nr = nc - j0 < NR ? nc - j0 : NR;
    const __mmask16 m0 = firstN(nr), m1 = firstN(nr - 16);
    uint32_t* d = dst + j0 * kq;
    const float* s = b + j0;
    __m512 c0 = _mm512_setzero_ps(), c1 = _mm512_setzero_ps();
    if (shift) c0 = _mm512_maskz_loadu_ps(m0, shift + j0), c1 = _mm512_maskz_loadu_ps(m1, shift + j0 + 16);
    for (int64_t q = 0; q < kq; q++) {
      const float* s0 = s + 2 * q * rs;
      const bool odd = 2 * q + 1 < kc;
      __m512 e0, e1, o0 = _mm512_setzero_ps(), o1 = _mm512_setzero_ps();
      if (nr == NR) {
        e0 = _mm512_loadu_ps(s0), e1 = _mm512_loadu_ps(s0 + 16);
        if (odd) o0 = _mm512_loadu_ps(s0 + rs), o1 = _mm512_loadu_ps(s0 + rs + 16);
      } else {
        e0 = _mm512_maskz_loadu_ps(m0, s0), e1 = _mm512_maskz_loadu_ps(m1, s0 + 16);
        if (odd) o0 = _mm512_maskz_loadu_ps(m0, s0 + rs), o1 = _mm512_maskz_loadu_ps(m1, s0 + rs + 16);
      }
      if (shift) {  // c0, c1 are zero past nr, so the padding stays zero
        e0 = _mm512_sub_ps(e0, c0), e1 = _mm512_sub_ps(e1, c1);
        if (odd) o0 = _mm512_sub_ps(o0, c0), o1 = _mm512_sub_ps(o1, c1);
      }
      _mm512_storeu_si512(d + q * NR, pairsAcross(e0, o0, idx));
      _mm512_storeu_si512(d + q * NR + 16, pairsAcross(e1, o1, idx));
    }
  }
}

void packBBf16(int64_t kc, int64_t nc, const float* b, int64_t rs, int64_t cs, float* dst) {
  packBBf16Shift(kc, nc, b, rs, cs, nullptr, dst);
}

}  // namespace gemmk
}  // namespace moelab
