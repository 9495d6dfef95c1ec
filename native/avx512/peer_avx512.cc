// AVX-512 selection for PEER retrieval (../ops_peer.cc): the per-half top-k of the sub-key scores
// and the top-k of the pruned k*k candidate sums, both as "filter, then rank" instead of the AVX2
// file's insertion into a sorted register list (whose dependent blends and lane extraction cost
// ~25 cycles per insert, with ~k(1 + ln(n/k)) inserts per row):
//   1. a threshold no larger than the k-th largest value (top-k: the smallest of 16 lane maxima,
//      each the max of a disjoint set of elements, so at least 16 elements reach it);
//   2. the elements reaching it compressed (vcompressps in registers), index order kept;
//   3. each survivor's rank = #{greater} + #{equal and earlier}, counted for 16 survivors at a
//      time (one compare and masked add per other survivor); rank < k is scattered to slot rank.
// The ranks are exactly the positions the insertion rule gives (descending, ties keep the lower
// index), so results equal the AVX2 and portable kernels bit for bit. Rows with NaN, or with so
// many survivors that ranking would cost more than inserting (-inf rows, heavy ties), take the
// AVX2 functions. Intrinsics and plain C++ only (see the binding.gyp note).
// GCC 12 header false positives (see ops_avx512.cc)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <cstdint>

namespace moelab {

int peerTopkAvx2(const float* s, int n, int k, float* vals, int32_t* idx);
void peerCandidatesAvx2(const float* v1, const float* v2, int k, float* cv, int32_t* ci);

namespace {

constexpr int kMaxSurvivors = 96;  // above this, ranking (quadratic) loses to insertion

// Ranks the c survivors (cv/ci in index order, padded with -inf to a multiple of 16) and writes
// those ranked below k to vals/idx[rank]. Sixteen ranks at a time: survivor j is ahead of lane i
// when v_j > v_i, or v_j == v_i and j < i (so every earlier j with v_j >= v_i counts).
inline void rankSelect(const float* cv, const int32_t* ci, int c, int k, float* vals, int32_t* idx) {
  const __m512i one = _mm512_set1_epi32(1), lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int i0 = 0; i0 < c; i0 += 16) {
    const __m512 vi = _mm512_loadu_ps(cv + i0);
    __m512i r0 = _mm512_setzero_si512(), r1 = r0;
    int j = 0;
    for (; j + 1 < i0; j += 2) {  // earlier survivors: ahead when >= (ties go to the earlier index)
      r0 = _mm512_mask_add_epi32(r0, _mm512_cmp_ps_mask(vi, _mm512_set1_ps(cv[j]), _CMP_LE_OQ), r0, one);
      r1 = _mm512_mask_add_epi32(r1, _mm512_cmp_ps_mask(vi, _mm512_set1_ps(cv[j + 1]), _CMP_LE_OQ), r1, one);
    }
    for (; j < i0; j++) r0 = _mm512_mask_add_epi32(r0, _mm512_cmp_ps_mask(vi, _mm512_set1_ps(cv[j]), _CMP_LE_OQ), r0, one);
    const int jEnd = c < i0 + 16 ? c : i0 + 16;
    for (; j < jEnd; j++) {  // the same 16: equal counts only for lanes after j
      const __m512 vj = _mm512_set1_ps(cv[j]);
      const __mmask16 after = _mm512_cmpgt_epi32_mask(lane, _mm512_set1_epi32(j - i0));
      const __mmask16 m = _mm512_cmp_ps_mask(vi, vj, _CMP_LT_OQ) | (_mm512_cmp_ps_mask(vi, vj, _CMP_EQ_OQ) & after);
      r0 = _mm512_mask_add_epi32(r0, m, r0, one);
    }
    for (; j + 1 < c; j += 2) {  // later survivors: ahead only when strictly greater
      r0 = _mm512_mask_add_epi32(r0, _mm512_cmp_ps_mask(vi, _mm512_set1_ps(cv[j]), _CMP_LT_OQ), r0, one);
      r1 = _mm512_mask_add_epi32(r1, _mm512_cmp_ps_mask(vi, _mm512_set1_ps(cv[j + 1]), _CMP_LT_OQ), r1, one);
    }
    for (; j < c; j++) r0 = _mm512_mask_add_epi32(r0, _mm512_cmp_ps_mask(vi, _mm512_set1_ps(cv[j]), _CMP_LT_OQ), r0, one);
    const __m512i rank = _mm512_add_epi32(r0, r1);
    const __mmask16 live = (__mmask16)(c - i0 >= 16 ? 0xffff : (1u << (c - i0)) - 1);
    const __mmask16 keep = _mm512_mask_cmplt_epi32_mask(live, rank, _mm512_set1_epi32(k));
    alignas(64) int32_t rk[16];  // scalar stores: vscatter is microcoded (slow) on AMD
    _mm512_store_si512(rk, rank);
    for (unsigned m = keep; m; m &= m - 1) {
      const int l = __builtin_ctz(m);
      vals[rk[l]] = cv[i0 + l];
      idx[rk[l]] = ci[i0 + l];
    }
  }
}

}  // namespace

// Top-k (k <= 16) of s[0..n) into vals/idx, descending, ties keep the lower index; returns k.
int peerTopkAvx512(const float* s, int n, int k, float* vals, int32_t* idx) {
  if (k > 16 || n < 16) return peerTopkAvx2(s, n, k, vals, idx);
  const int full = n & ~15, tail = n - full;
  const __mmask16 tailMask = (__mmask16)((1u << tail) - 1);
  const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
  __m512 mx = _mm512_loadu_ps(s);
  __mmask16 nan = _mm512_cmp_ps_mask(mx, mx, _CMP_UNORD_Q);
  for (int i = 16; i < full; i += 16) {
    const __m512 v = _mm512_loadu_ps(s + i);
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    mx = _mm512_max_ps(mx, v);
  }
  if (tail) {
    const __m512 v = _mm512_mask_loadu_ps(ninf, tailMask, s + full);
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    mx = _mm512_max_ps(mx, v);
  }
  if (nan) return peerTopkAvx2(s, n, k, vals, idx);
  const __m512 thr = _mm512_set1_ps(_mm512_reduce_min_ps(mx));
  alignas(64) float cv[kMaxSurvivors + 32];
  alignas(64) int32_t ci[kMaxSurvivors + 32];
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  int c = 0;
  for (int i = 0; i < n; i += 16) {
    const __mmask16 in = i < full ? (__mmask16)0xffff : tailMask;
    const __m512 v = _mm512_mask_loadu_ps(ninf, in, s + i);
    const __mmask16 m = _mm512_mask_cmp_ps_mask(in, v, thr, _CMP_GE_OQ);
    // compress in registers, then a plain store (the memory form of vcompress is microcoded on AMD)
    _mm512_storeu_ps(cv + c, _mm512_maskz_compress_ps(m, v));
    _mm512_storeu_si512(ci + c, _mm512_maskz_compress_epi32(m, _mm512_add_epi32(iota, _mm512_set1_epi32(i))));
    c += __builtin_popcount(m);
    if (c > kMaxSurvivors) return peerTopkAvx2(s, n, k, vals, idx);
  }
  _mm512_storeu_ps(cv + c, ninf);
  rankSelect(cv, ci, c, k, vals, idx);
  return k;
}

// Top-k (k <= 16) of the candidates v1[a] + v2[b] with (a+1)(b+1) <= k, as index a*k + b, into
// cv/ci: descending, ties keep the lower candidate index.
void peerCandidatesAvx512(const float* v1, const float* v2, int k, float* out, int32_t* outIdx) {
  if (k > 16) return peerCandidatesAvx2(v1, v2, k, out, outIdx);
  alignas(64) float cv[64 + 16];  // sum over a of floor(k/(a+1)) <= 50 for k = 16
  alignas(64) int32_t ci[64 + 16];
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512 b = _mm512_maskz_loadu_ps((__mmask16)((1u << k) - 1), v2);
  __mmask16 nan = 0;
  int c = 0;
  for (int a = 0; a < k; a++) {
    const int bEnd = k / (a + 1);
    const __mmask16 m = (__mmask16)((1u << bEnd) - 1);
    const __m512 sum = _mm512_add_ps(_mm512_set1_ps(v1[a]), b);
    nan |= _mm512_mask_cmp_ps_mask(m, sum, sum, _CMP_UNORD_Q);
    _mm512_mask_storeu_ps(cv + c, m, sum);
    _mm512_mask_storeu_epi32(ci + c, m, _mm512_add_epi32(iota, _mm512_set1_epi32(a * k)));
    c += bEnd;
  }
  if (nan) return peerCandidatesAvx2(v1, v2, k, out, outIdx);
  _mm512_storeu_ps(cv + c, _mm512_set1_ps(-__builtin_inff()));
  rankSelect(cv, ci, c, k, out, outIdx);
}

}  // namespace moelab
