// AVX2+FMA inner loops of the PEER kernels in ../ops_peer.cc: sub-key scoring (6x16 register
// tiles against packed sub-key panels), the threshold-skipping top-k scan, gathered row dot
// products / weighted row sums with software prefetch, and the sparse Adam row update (fp32 and
// bf16 moments). Only intrinsics and plain C++ (see the binding.gyp note): no STL; internal helpers
// live in an anonymous namespace.
#include <immintrin.h>
#include <cstdint>

#include "topk_insert.h"

namespace {

inline float hsum(__m256 v) {
  __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  a = _mm_add_ps(a, _mm_movehl_ps(a, a));
  a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
  return _mm_cvtss_f32(a);
}

using moelab::topkInsert;

// A descending list of 16 (value, index) pairs in four registers. insert(v, i) puts (v, i) after
// every entry >= v and shifts the rest down one lane (the last falls off), branch-free; with the
// list sorted this is the scalar insert() rule. Empty lanes hold -inf.
struct Top16 {
  __m256 v0, v1;
  __m256i i0, i1;
  Top16() : v0(_mm256_set1_ps(-__builtin_inff())), v1(v0), i0(_mm256_set1_epi32(-1)), i1(i0) {}
  inline void insert(float v, int32_t i) {
    const __m256i rot = _mm256_setr_epi32(7, 0, 1, 2, 3, 4, 5, 6);
    const __m256 vb = _mm256_set1_ps(v);
    const __m256i ib = _mm256_set1_epi32(i);
    const __m256 ge0 = _mm256_cmp_ps(v0, vb, _CMP_GE_OQ), ge1 = _mm256_cmp_ps(v1, vb, _CMP_GE_OQ);
    const __m256 g0r = _mm256_permutevar8x32_ps(ge0, rot), g1r = _mm256_permutevar8x32_ps(ge1, rot);
    const __m256 sh0m = _mm256_blend_ps(g0r, _mm256_castsi256_ps(_mm256_set1_epi32(-1)), 1);  // ge of the lane before
    const __m256 sh1m = _mm256_blend_ps(g1r, g0r, 1);
    const __m256 r0 = _mm256_permutevar8x32_ps(v0, rot), r1 = _mm256_permutevar8x32_ps(v1, rot);
    const __m256 s1 = _mm256_blend_ps(r1, r0, 1);
    const __m256i q0 = _mm256_permutevar8x32_epi32(i0, rot), q1 = _mm256_permutevar8x32_epi32(i1, rot);
    const __m256i t1 = _mm256_blend_epi32(q1, q0, 1);
    v0 = _mm256_blendv_ps(_mm256_blendv_ps(r0, vb, sh0m), v0, ge0);
    v1 = _mm256_blendv_ps(_mm256_blendv_ps(s1, vb, sh1m), v1, ge1);
    i0 = _mm256_castps_si256(_mm256_blendv_ps(_mm256_blendv_ps(_mm256_castsi256_ps(q0), _mm256_castsi256_ps(ib), sh0m),
                                              _mm256_castsi256_ps(i0), ge0));
    i1 = _mm256_castps_si256(_mm256_blendv_ps(_mm256_blendv_ps(_mm256_castsi256_ps(t1), _mm256_castsi256_ps(ib), sh1m),
                                              _mm256_castsi256_ps(i1), ge1));
  }
  inline float lane(int j) const {
    const __m256 src = j < 8 ? v0 : v1;
    return _mm_cvtss_f32(_mm256_castps256_ps128(_mm256_permutevar8x32_ps(src, _mm256_set1_epi32(j & 7))));
  }
  inline void store(float* vals, int32_t* idx, int k) const {
    alignas(32) float tv[16];
    alignas(32) int32_t ti[16];
    _mm256_store_ps(tv, v0);
    _mm256_store_ps(tv + 8, v1);
    _mm256_store_si256(reinterpret_cast<__m256i*>(ti), i0);
    _mm256_store_si256(reinterpret_cast<__m256i*>(ti + 8), i1);
    for (int j = 0; j < k; j++) {
      vals[j] = tv[j];
      idx[j] = ti[j];
    }
  }
};

// S[r, 0..16) = sum_c Q[r*ldq + c] * Kp[c*16 + 0..16) for r < MR.
template <int MR>
inline void scoreTile(int half, const float* Q, int64_t ldq, const float* Kp, float* S, int64_t lds) {
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int c = 0; c < half; c++) {
    __m256 b0 = _mm256_loadu_ps(Kp + c * 16), b1 = _mm256_loadu_ps(Kp + c * 16 + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
      __m256 a = _mm256_broadcast_ss(Q + r * ldq + c);
      acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++) {
    _mm256_storeu_ps(S + r * lds, acc[r][0]);
    _mm256_storeu_ps(S + r * lds + 8, acc[r][1]);
  }
}

inline void prefetchRow(const float* row, int64_t d) {
  const char* p = reinterpret_cast<const char*>(row);
  for (int64_t b = 0; b < d * 4; b += 64) _mm_prefetch(p + b, _MM_HINT_T0);
}

inline void loadBf16x8(const uint16_t* p, __m256* out) {
  __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  *out = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

// float32 -> bfloat16 bits, round to nearest even; NaN -> quiet NaN with the sign kept.
inline void storeBf16x8(uint16_t* p, __m256 x) {
  __m256i b = _mm256_castps_si256(x);
  __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(b, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
  __m256i nanv = _mm256_or_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(0x40));
  __m256i isnan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  r = _mm256_blendv_epi8(r, _mm256_and_si256(nanv, _mm256_set1_epi32(0xffff)), isnan);
  __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), packed);
}

inline float bf16ToF32(uint16_t h) {
  union { uint32_t u; float f; } c;
  c.u = (uint32_t)h << 16;
  return c.f;
}

inline uint16_t f32ToBf16(float x) {
  union { uint32_t u; float f; } c;
  c.f = x;
  if ((c.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((c.u >> 16) | 0x40);
  return (uint16_t)((c.u + 0x7fffu + ((c.u >> 16) & 1u)) >> 16);
}

// Row element loads: float rows as they are, bfloat16 rows widened exactly (bits << 16), so a
// kernel instantiated for bf16 rows computes what the float one computes on the widened rows.
inline __m256 ld8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 ld8(const uint16_t* p) {
  __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}
inline float ld1(float x) { return x; }
inline float ld1(uint16_t h) {
  union { uint32_t u; float f; } c;
  c.u = (uint32_t)h << 16;
  return c.f;
}
inline void prefetchRow(const uint16_t* row, int64_t d) {
  const char* p = reinterpret_cast<const char*>(row);
  for (int64_t b = 0; b < d * 2; b += 64) _mm_prefetch(p + b, _MM_HINT_T0);
}

// out[j] = table[ids[j]] . x for j < n (rows of d floats), four rows at a time, prefetching the next four.
// Scalar tails use explicit fmaf: the compiler's FMA contraction could otherwise differ between the
// float and bf16 instantiations and break their exact agreement.
template <typename E>
inline void gatherDots(const float* x, const E* table, const int32_t* ids, int n, int64_t d, float* out) {
  const int64_t d8 = d & ~int64_t(7);
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    for (int e = j + 4; e < j + 8 && e < n; e++) prefetchRow(table + (int64_t)ids[e] * d, d);
    const E* r0 = table + (int64_t)ids[j] * d;
    const E* r1 = table + (int64_t)ids[j + 1] * d;
    const E* r2 = table + (int64_t)ids[j + 2] * d;
    const E* r3 = table + (int64_t)ids[j + 3] * d;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t c = 0; c < d8; c += 8) {
      __m256 xv = _mm256_loadu_ps(x + c);
      a0 = _mm256_fmadd_ps(ld8(r0 + c), xv, a0);
      a1 = _mm256_fmadd_ps(ld8(r1 + c), xv, a1);
      a2 = _mm256_fmadd_ps(ld8(r2 + c), xv, a2);
      a3 = _mm256_fmadd_ps(ld8(r3 + c), xv, a3);
    }
    float s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
    for (int64_t c = d8; c < d; c++) {
      s0 = __builtin_fmaf(ld1(r0[c]), x[c], s0);
      s1 = __builtin_fmaf(ld1(r1[c]), x[c], s1);
      s2 = __builtin_fmaf(ld1(r2[c]), x[c], s2);
      s3 = __builtin_fmaf(ld1(r3[c]), x[c], s3);
    }
    out[j] = s0;
    out[j + 1] = s1;
    out[j + 2] = s2;
    out[j + 3] = s3;
  }
  for (; j < n; j++) {
    const E* r0 = table + (int64_t)ids[j] * d;
    __m256 a0 = _mm256_setzero_ps();
    for (int64_t c = 0; c < d8; c += 8) a0 = _mm256_fmadd_ps(ld8(r0 + c), _mm256_loadu_ps(x + c), a0);
    float s0 = hsum(a0);
    for (int64_t c = d8; c < d; c++) s0 = __builtin_fmaf(ld1(r0[c]), x[c], s0);
    out[j] = s0;
  }
}

// y[0..d) = sum_{j<n} w[j] * table[ids[j]] (written), in register blocks of 32 columns, prefetching
// the rows of the next block of four.
template <typename E>
inline void gatherAxpy(const E* table, const int32_t* ids, const float* w, int n, int64_t d, float* y) {
  for (int j = 0; j < n && j < 4; j++) prefetchRow(table + (int64_t)ids[j] * d, d);
  int64_t c = 0;
  for (; c + 32 <= d; c += 32) {
    __m256 y0 = _mm256_setzero_ps(), y1 = y0, y2 = y0, y3 = y0;
    for (int j = 0; j < n; j++) {
      if (c == 0 && (j & 3) == 0)
        for (int e = j + 4; e < j + 8 && e < n; e++) prefetchRow(table + (int64_t)ids[e] * d, d);
      const E* r = table + (int64_t)ids[j] * d + c;
      __m256 wv = _mm256_set1_ps(w[j]);
      y0 = _mm256_fmadd_ps(wv, ld8(r), y0);
      y1 = _mm256_fmadd_ps(wv, ld8(r + 8), y1);
      y2 = _mm256_fmadd_ps(wv, ld8(r + 16), y2);
      y3 = _mm256_fmadd_ps(wv, ld8(r + 24), y3);
    }
    _mm256_storeu_ps(y + c, y0);
    _mm256_storeu_ps(y + c + 8, y1);
    _mm256_storeu_ps(y + c + 16, y2);
    _mm256_storeu_ps(y + c + 24, y3);
  }
  for (; c + 8 <= d; c += 8) {
    __m256 y0 = _mm256_setzero_ps();
    for (int j = 0; j < n; j++) y0 = _mm256_fmadd_ps(_mm256_set1_ps(w[j]), ld8(table + (int64_t)ids[j] * d + c), y0);
    _mm256_storeu_ps(y + c, y0);
  }
  for (; c < d; c++) {
    float s = 0;
    for (int j = 0; j < n; j++) s = __builtin_fmaf(w[j], ld1(table[(int64_t)ids[j] * d + c]), s);
    y[c] = s;
  }
}

// y[0..d) += a * x[0..d)
template <typename E>
inline void axpyRow(float a, const E* x, float* y, int64_t d) {
  const __m256 av = _mm256_set1_ps(a);
  int64_t c = 0;
  for (; c + 8 <= d; c += 8) _mm256_storeu_ps(y + c, _mm256_fmadd_ps(av, ld8(x + c), _mm256_loadu_ps(y + c)));
  for (; c < d; c++) y[c] = __builtin_fmaf(a, ld1(x[c]), y[c]);
}


inline __m256i lowbias32x8(__m256i x) {
  x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
  x = _mm256_mullo_epi32(x, _mm256_set1_epi32(0x7feb352d));
  x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 15));
  x = _mm256_mullo_epi32(x, _mm256_set1_epi32((int)0x846ca68bu));
  return _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
}

inline uint32_t lowbias32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  return x ^ (x >> 16);
}

// float32 -> bfloat16 bits rounded stochastically: the low 16 bits of lowbias32(key + c) are added
// to the float's bits before truncation, so x rounds up with probability equal to its distance from
// the lower neighbour (unbiased). Inf and NaN round to nearest (NaN stays NaN).
inline void storeBf16SrX8(uint16_t* p, __m256 x, uint32_t key, int64_t c) {
  __m256i idx = _mm256_add_epi32(_mm256_set1_epi32((int)(key + (uint32_t)c)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256i r = _mm256_and_si256(lowbias32x8(idx), _mm256_set1_epi32(0xffff));
  __m256i b = _mm256_castps_si256(x);
  __m256i sr = _mm256_srli_epi32(_mm256_add_epi32(b, r), 16);
  __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
  __m256i rne = _mm256_srli_epi32(_mm256_add_epi32(b, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
  __m256i nanv = _mm256_and_si256(_mm256_or_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(0x40)), _mm256_set1_epi32(0xffff));
  __m256i expAll = _mm256_cmpeq_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x7f800000)), _mm256_set1_epi32(0x7f800000));
  __m256i isnan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  r = _mm256_blendv_epi8(sr, rne, expAll);
  r = _mm256_blendv_epi8(r, nanv, isnan);
  __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), packed);
}

inline uint16_t f32ToBf16Sr(float x, uint32_t key, int64_t c) {
  union { float f; uint32_t u; } v;
  v.f = x;
  const uint32_t u = v.u;
  if ((u & 0x7f800000u) == 0x7f800000u) {
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)(u >> 16);
  }
  return (uint16_t)((u + (lowbias32(key + (uint32_t)c) & 0xffffu)) >> 16);
}

inline void st8(float* p, __m256 x) { _mm256_storeu_ps(p, x); }
inline void st8(uint16_t* p, __m256 x) { storeBf16x8(p, x); }
inline float st1(float x, float*) { return x; }
inline uint16_t st1(float x, uint16_t*) { return f32ToBf16(x); }

// One SparseAdam row of a bfloat16 table p with float or bfloat16 moments: moments as in
// sparseAdamRow(Bf16)Avx2, the new weight widen(p) - step m / (sqrt(v) + eps) computed in float and
// stored with stochastic rounding keyed by (key, column).
template <typename M>
inline void adamRowSr(int64_t d, const float* g, uint16_t* p, M* m, M* v, float b1c, float b2c, float step, float eps,
                      uint32_t key) {
  const __m256 B1 = _mm256_set1_ps(b1c), B2 = _mm256_set1_ps(b2c), ST = _mm256_set1_ps(step), EP = _mm256_set1_ps(eps);
  int64_t c = 0;
  for (; c + 8 <= d; c += 8) {
    __m256 gv = _mm256_loadu_ps(g + c), mv = ld8(m + c), vv = ld8(v + c);
    mv = _mm256_fmadd_ps(B1, _mm256_sub_ps(gv, mv), mv);
    vv = _mm256_fmadd_ps(B2, _mm256_fmsub_ps(gv, gv, vv), vv);
    st8(m + c, mv);
    st8(v + c, vv);
    __m256 upd = _mm256_div_ps(_mm256_mul_ps(ST, mv), _mm256_add_ps(_mm256_sqrt_ps(vv), EP));
    storeBf16SrX8(p + c, _mm256_sub_ps(ld8(p + c), upd), key, c);
  }
  for (; c < d; c++) {
    float m0 = ld1(m[c]), v0 = ld1(v[c]);
    float mv = m0 + b1c * (g[c] - m0);
    float vv = v0 + b2c * (g[c] * g[c] - v0);
    m[c] = st1(mv, m);
    v[c] = st1(vv, v);
    p[c] = f32ToBf16Sr(ld1(p[c]) - step * mv / (__builtin_sqrtf(vv) + eps), key, c);
  }
}
}  // namespace

namespace moelab {

// S[r, p*16 + j] = Q[r] . K[p*16 + j] for r < rows, over nPanels panels of 16 sub-keys each packed
// as Kp[p][c][16] (c < half).
void peerScoreAvx2(int rows, int nPanels, int half, const float* Q, int64_t ldq, const float* Kp, float* S,
                   int64_t lds) {
  // panel-outer: each 16-key panel (half*64 bytes) is read from L2 once and reused from L1 by every
  // 6-row tile of the block
  const int full = rows - rows % 6, rest = rows - full;
  for (int p = 0; p < nPanels; p++) {
    const float* kp = Kp + (int64_t)p * half * 16;
    for (int r = 0; r < full; r += 6) scoreTile<6>(half, Q + r * ldq, ldq, kp, S + r * lds + p * 16, lds);
    if (rest) {
      const float* q = Q + full * ldq;
      float* s = S + full * lds + p * 16;
      switch (rest) {
        case 1: scoreTile<1>(half, q, ldq, kp, s, lds); break;
        case 2: scoreTile<2>(half, q, ldq, kp, s, lds); break;
        case 3: scoreTile<3>(half, q, ldq, kp, s, lds); break;
        case 4: scoreTile<4>(half, q, ldq, kp, s, lds); break;
        default: scoreTile<5>(half, q, ldq, kp, s, lds); break;
      }
    }
  }
}

// Top-k of s[0..n) into vals/idx (descending, ties keep the lower index); returns min(k, n).
// k <= 16 (the common case): a 16-lane group-maximum pass gives thr0 <= the 16th largest value, so
// only elements >= thr0 are candidates (~50 of 256 or 1024 for random scores); candidates go, in
// index order, through the same insertion rule as the scalar version, done branch-free on a sorted
// list held in four registers. Same result as the scalar scan for any input without NaN.
int peerTopkAvx2(const float* s, int n, int k, float* vals, int32_t* idx) {
  if (k > 16 || n < 16) {
    int cnt = 0;
    for (int i = 0; i < n; i++) cnt = topkInsert(vals, idx, cnt, k, s[i], i);
    return cnt;
  }
  __m256 m0 = _mm256_loadu_ps(s), m1 = _mm256_loadu_ps(s + 8);
  int i = 16;
  for (; i + 16 <= n; i += 16) {
    m0 = _mm256_max_ps(m0, _mm256_loadu_ps(s + i));
    m1 = _mm256_max_ps(m1, _mm256_loadu_ps(s + i + 8));
  }
  __m256 mn = _mm256_min_ps(m0, m1);
  __m128 a = _mm_min_ps(_mm256_castps256_ps128(mn), _mm256_extractf128_ps(mn, 1));
  a = _mm_min_ps(a, _mm_movehl_ps(a, a));
  a = _mm_min_ss(a, _mm_shuffle_ps(a, a, 1));
  const float thr0 = _mm_cvtss_f32(a);
  Top16 t;
  int cnt = 0;
  float thr = thr0;
  __m256 thrv = _mm256_set1_ps(thr0);
  int cmpGt = 0;  // before the list is full: candidates are >= thr0; after: > the k-th value
  i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(s + i);
    int mask = _mm256_movemask_ps(cmpGt ? _mm256_cmp_ps(v, thrv, _CMP_GT_OQ) : _mm256_cmp_ps(v, thrv, _CMP_GE_OQ));
    while (mask) {
      const int b = __builtin_ctz(mask);
      mask &= mask - 1;
      const float x = s[i + b];
      if (cnt < k) {
        t.insert(x, i + b);
        if (++cnt == k) {
          thr = t.lane(k - 1);
          thrv = _mm256_set1_ps(thr);
          cmpGt = 1;
        }
      } else if (x > thr) {
        t.insert(x, i + b);
        thr = t.lane(k - 1);
        thrv = _mm256_set1_ps(thr);
      }
    }
  }
  for (; i < n; i++) {
    const float x = s[i];
    if (cnt < k) {
      if (!(x >= thr0)) continue;
      t.insert(x, i);
      if (++cnt == k) thr = t.lane(k - 1);
    } else if (x > thr) {
      t.insert(x, i);
      thr = t.lane(k - 1);
    }
  }
  if (cnt == k) {
    t.store(vals, idx, k);
    if (idx[k - 1] >= 0) return k;
  }
  // only with NaN or -inf scores (fewer than k candidates, or an entry that fell behind the -inf
  // padding): the plain scan, which always keeps k entries
  cnt = 0;
  for (int j = 0; j < n; j++) cnt = topkInsert(vals, idx, cnt, k, s[j], j);
  return cnt;
}

// Top-k of the product-key candidates v1[a] + v2[b] (a*k + b; only pairs with (a+1)(b+1) <= k can
// rank in the top k) into cv/ci, descending, ties keep the lower candidate index.
void peerCandidatesAvx2(const float* v1, const float* v2, int k, float* cv, int32_t* ci) {
  if (k > 16) {
    int cnt = 0;
    for (int a = 0; a < k; a++) {
      const int bEnd = k / (a + 1);
      for (int b = 0; b < bEnd; b++) cnt = topkInsert(cv, ci, cnt, k, v1[a] + v2[b], a * k + b);
    }
    return;
  }
  Top16 t;
  int cnt = 0;
  float thr = 0;
  for (int a = 0; a < k; a++) {
    const int bEnd = k / (a + 1);
    for (int b = 0; b < bEnd; b++) {
      const float x = v1[a] + v2[b];
      if (cnt < k) {
        t.insert(x, a * k + b);
        if (++cnt == k) thr = t.lane(k - 1);
      } else if (x > thr) {
        t.insert(x, a * k + b);
        thr = t.lane(k - 1);
      }
    }
  }
  t.store(cv, ci, k);
  if (ci[k - 1] < 0) {  // -inf sums (infinite inputs) fell behind the padding: scalar rule
    cnt = 0;
    for (int a = 0; a < k; a++) {
      const int bEnd = k / (a + 1);
      for (int b = 0; b < bEnd; b++) cnt = topkInsert(cv, ci, cnt, k, v1[a] + v2[b], a * k + b);
    }
  }
}

// out[j] = table[ids[j]] . x for j < n (rows of d floats or bf16), four rows at a time, prefetching the next four.
void peerGatherDotsAvx2(const float* x, const float* table, const int32_t* ids, int n, int64_t d, float* out) {
  gatherDots(x, table, ids, n, d, out);
}
void peerGatherDotsBf16Avx2(const float* x, const uint16_t* table, const int32_t* ids, int n, int64_t d, float* out) {
  gatherDots(x, table, ids, n, d, out);
}

// y[0..d) = sum_{j<n} w[j] * table[ids[j]] (written).
void peerGatherAxpyAvx2(const float* table, const int32_t* ids, const float* w, int n, int64_t d, float* y) {
  gatherAxpy(table, ids, w, n, d, y);
}
void peerGatherAxpyBf16Avx2(const uint16_t* table, const int32_t* ids, const float* w, int n, int64_t d, float* y) {
  gatherAxpy(table, ids, w, n, d, y);
}

// y[0..d) += a * x[0..d)
void peerAxpyAvx2(float a, const float* x, float* y, int64_t d) { axpyRow(a, x, y, d); }
void peerAxpyBf16Avx2(float a, const uint16_t* x, float* y, int64_t d) { axpyRow(a, x, y, d); }

// One row of SparseAdam: m += b1c (g - m); v += b2c (g^2 - v); p -= step * m / (sqrt(v) + eps).
void sparseAdamRowAvx2(int64_t d, const float* g, float* p, float* m, float* v, float b1c, float b2c, float step,
                       float eps) {
  const __m256 B1 = _mm256_set1_ps(b1c), B2 = _mm256_set1_ps(b2c), ST = _mm256_set1_ps(step), EP = _mm256_set1_ps(eps);
  int64_t c = 0;
  for (; c + 8 <= d; c += 8) {
    __m256 gv = _mm256_loadu_ps(g + c), mv = _mm256_loadu_ps(m + c), vv = _mm256_loadu_ps(v + c);
    mv = _mm256_fmadd_ps(B1, _mm256_sub_ps(gv, mv), mv);
    vv = _mm256_fmadd_ps(B2, _mm256_fmsub_ps(gv, gv, vv), vv);
    _mm256_storeu_ps(m + c, mv);
    _mm256_storeu_ps(v + c, vv);
    __m256 upd = _mm256_div_ps(_mm256_mul_ps(ST, mv), _mm256_add_ps(_mm256_sqrt_ps(vv), EP));
    _mm256_storeu_ps(p + c, _mm256_sub_ps(_mm256_loadu_ps(p + c), upd));
  }
  for (; c < d; c++) {
    float mv = m[c] + b1c * (g[c] - m[c]);
    float vv = v[c] + b2c * (g[c] * g[c] - v[c]);
    m[c] = mv;
    v[c] = vv;
    p[c] -= step * mv / (__builtin_sqrtf(vv) + eps);
  }
}

void sparseAdamRowBf16Avx2(int64_t d, const float* g, float* p, uint16_t* m, uint16_t* v, float b1c, float b2c,
                           float step, float eps) {
  const __m256 B1 = _mm256_set1_ps(b1c), B2 = _mm256_set1_ps(b2c), ST = _mm256_set1_ps(step), EP = _mm256_set1_ps(eps);
  int64_t c = 0;
  for (; c + 8 <= d; c += 8) {
    __m256 gv = _mm256_loadu_ps(g + c), mv, vv;
    loadBf16x8(m + c, &mv);
    loadBf16x8(v + c, &vv);
    mv = _mm256_fmadd_ps(B1, _mm256_sub_ps(gv, mv), mv);
    vv = _mm256_fmadd_ps(B2, _mm256_fmsub_ps(gv, gv, vv), vv);
    storeBf16x8(m + c, mv);
    storeBf16x8(v + c, vv);
    __m256 upd = _mm256_div_ps(_mm256_mul_ps(ST, mv), _mm256_add_ps(_mm256_sqrt_ps(vv), EP));
    _mm256_storeu_ps(p + c, _mm256_sub_ps(_mm256_loadu_ps(p + c), upd));
  }
  for (; c < d; c++) {
    float m0 = bf16ToF32(m[c]), v0 = bf16ToF32(v[c]);
    float mv = m0 + b1c * (g[c] - m0);
    float vv = v0 + b2c * (g[c] * g[c] - v0);
    m[c] = f32ToBf16(mv);
    v[c] = f32ToBf16(vv);
    p[c] -= step * mv / (__builtin_sqrtf(vv) + eps);
  }
}

void sparseAdamRowSrAvx2(int64_t d, const float* g, uint16_t* p, float* m, float* v, float b1c, float b2c, float step,
                         float eps, uint32_t key) {
  adamRowSr(d, g, p, m, v, b1c, b2c, step, eps, key);
}

void sparseAdamRowSrBf16Avx2(int64_t d, const float* g, uint16_t* p, uint16_t* m, uint16_t* v, float b1c, float b2c,
                             float step, float eps, uint32_t key) {
  adamRowSr(d, g, p, m, v, b1c, b2c, step, eps, key);
}

}  // namespace moelab
