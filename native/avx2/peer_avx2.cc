// AVX2+FMA inner loops of the PEER kernels in ../ops_peer.cc: sub-key scoring (6x16 register
// tiles against packed sub-key panels), the threshold-skipping top-k scan, gathered row dot
// products / weighted row sums with software prefetch, and the sparse Adam row update (fp32 and
// bf16 moments). Only intrinsics and plain C++ (see the binding.gyp note): no STL; internal helpers
// live in an anonymous namespace.
#include <immintrin.h>
#include <cstdint>

namespace {

inline float hsum(__m256 v) {
  __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  a = _mm_add_ps(a, _mm_movehl_ps(a, a));
  a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
  return _mm_cvtss_f32(a);
}

// Same contract as topkInsert in ../ops_peer.cc (and ref/peer.ts): descending, ties keep the
// earlier index, NaN never displaces.
inline int insert(float* vals, int32_t* idx, int cnt, int k, float v, int32_t i) {
  int pos;
  if (cnt == k) {
    if (!(v > vals[k - 1])) return cnt;
    pos = k - 1;
  } else {
    pos = cnt++;
  }
  while (pos > 0 && v > vals[pos - 1]) {
    vals[pos] = vals[pos - 1];
    idx[pos] = idx[pos - 1];
    pos--;
  }
  vals[pos] = v;
  idx[pos] = i;
  return cnt;
}

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

}  // namespace

namespace moelab {

// S[r, p*16 + j] = Q[r] . K[p*16 + j] for r < rows, over nPanels panels of 16 sub-keys each packed
// as Kp[p][c][16] (c < half).
void peerScoreAvx2(int rows, int nPanels, int half, const float* Q, int64_t ldq, const float* Kp, float* S,
                   int64_t lds) {
  int r = 0;
  for (; r + 6 <= rows; r += 6)
    for (int p = 0; p < nPanels; p++)
      scoreTile<6>(half, Q + r * ldq, ldq, Kp + (int64_t)p * half * 16, S + r * lds + p * 16, lds);
  const int rest = rows - r;
  for (int p = 0; p < nPanels && rest > 0; p++) {
    const float* kp = Kp + (int64_t)p * half * 16;
    float* s = S + r * lds + p * 16;
    const float* q = Q + r * ldq;
    switch (rest) {
      case 1: scoreTile<1>(half, q, ldq, kp, s, lds); break;
      case 2: scoreTile<2>(half, q, ldq, kp, s, lds); break;
      case 3: scoreTile<3>(half, q, ldq, kp, s, lds); break;
      case 4: scoreTile<4>(half, q, ldq, kp, s, lds); break;
      default: scoreTile<5>(half, q, ldq, kp, s, lds); break;
    }
  }
}

// Top-k of s[0..n) into vals/idx (descending, ties keep the lower index); returns min(k, n).
int peerTopkAvx2(const float* s, int n, int k, float* vals, int32_t* idx) {
  int cnt = 0, i = 0;
  for (; i < n && cnt < k; i++) cnt = insert(vals, idx, cnt, k, s[i], i);
  if (cnt < k) return cnt;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(s + i);
    int mask = _mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_set1_ps(vals[k - 1]), _CMP_GT_OQ));
    while (mask) {
      int b = __builtin_ctz(mask);
      mask &= mask - 1;
      cnt = insert(vals, idx, cnt, k, s[i + b], i + b);
    }
  }
  for (; i < n; i++) cnt = insert(vals, idx, cnt, k, s[i], i);
  return cnt;
}

// out[j] = table[ids[j]] . x for j < n (rows of d floats), four rows at a time, prefetching the next four.
void peerGatherDotsAvx2(const float* x, const float* table, const int32_t* ids, int n, int64_t d, float* out) {
  const int64_t d8 = d & ~int64_t(7);
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    for (int e = j + 4; e < j + 8 && e < n; e++) prefetchRow(table + (int64_t)ids[e] * d, d);
    const float* r0 = table + (int64_t)ids[j] * d;
    const float* r1 = table + (int64_t)ids[j + 1] * d;
    const float* r2 = table + (int64_t)ids[j + 2] * d;
    const float* r3 = table + (int64_t)ids[j + 3] * d;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t c = 0; c < d8; c += 8) {
      __m256 xv = _mm256_loadu_ps(x + c);
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0 + c), xv, a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(r1 + c), xv, a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(r2 + c), xv, a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(r3 + c), xv, a3);
    }
    float s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
    for (int64_t c = d8; c < d; c++) {
      s0 += r0[c] * x[c];
      s1 += r1[c] * x[c];
      s2 += r2[c] * x[c];
      s3 += r3[c] * x[c];
    }
    out[j] = s0;
    out[j + 1] = s1;
    out[j + 2] = s2;
    out[j + 3] = s3;
  }
  for (; j < n; j++) {
    const float* r0 = table + (int64_t)ids[j] * d;
    __m256 a0 = _mm256_setzero_ps();
    for (int64_t c = 0; c < d8; c += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0 + c), _mm256_loadu_ps(x + c), a0);
    float s0 = hsum(a0);
    for (int64_t c = d8; c < d; c++) s0 += r0[c] * x[c];
    out[j] = s0;
  }
}

// y[0..d) = sum_{j<n} w[j] * table[ids[j]] (written), in register blocks of 32 columns, prefetching
// the rows of the next block of four.
void peerGatherAxpyAvx2(const float* table, const int32_t* ids, const float* w, int n, int64_t d, float* y) {
  for (int j = 0; j < n && j < 4; j++) prefetchRow(table + (int64_t)ids[j] * d, d);
  int64_t c = 0;
  for (; c + 32 <= d; c += 32) {
    __m256 y0 = _mm256_setzero_ps(), y1 = y0, y2 = y0, y3 = y0;
    for (int j = 0; j < n; j++) {
      if (c == 0 && (j & 3) == 0)
        for (int e = j + 4; e < j + 8 && e < n; e++) prefetchRow(table + (int64_t)ids[e] * d, d);
      const float* r = table + (int64_t)ids[j] * d + c;
      __m256 wv = _mm256_set1_ps(w[j]);
      y0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(r), y0);
      y1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(r + 8), y1);
      y2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(r + 16), y2);
      y3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(r + 24), y3);
    }
    _mm256_storeu_ps(y + c, y0);
    _mm256_storeu_ps(y + c + 8, y1);
    _mm256_storeu_ps(y + c + 16, y2);
    _mm256_storeu_ps(y + c + 24, y3);
  }
  for (; c + 8 <= d; c += 8) {
    __m256 y0 = _mm256_setzero_ps();
    for (int j = 0; j < n; j++) y0 = _mm256_fmadd_ps(_mm256_set1_ps(w[j]), _mm256_loadu_ps(table + (int64_t)ids[j] * d + c), y0);
    _mm256_storeu_ps(y + c, y0);
  }
  for (; c < d; c++) {
    float s = 0;
    for (int j = 0; j < n; j++) s += w[j] * table[(int64_t)ids[j] * d + c];
    y[c] = s;
  }
}

// y[0..d) += a * x[0..d)
void peerAxpyAvx2(float a, const float* x, float* y, int64_t d) {
  const __m256 av = _mm256_set1_ps(a);
  int64_t c = 0;
  for (; c + 8 <= d; c += 8) _mm256_storeu_ps(y + c, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + c), _mm256_loadu_ps(y + c)));
  for (; c < d; c++) y[c] += a * x[c];
}

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

}  // namespace moelab
