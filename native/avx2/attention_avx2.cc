// AVX2+FMA inner parts of the blocked causal attention in ../ops_attention.cc: a small GEMM with
// causal-triangle skipping (6x16 register tiles), the online-softmax tile update of the forward pass
// and the P/dS tile of the backward pass. Only intrinsics and plain C++ here (see binding.gyp note):
// no STL, everything internal except the three exported functions the driver calls through pointers.
#include <immintrin.h>
#include <cstdint>

namespace {

// exp(x) for float lanes, Cephes-style: x = n ln2 + r, |r| <= ln2/2, e^r by a degree-6 polynomial,
// 2^n through the exponent bits. Relative error ~1e-7. Returns 0 below -87.3 (so exp(-inf) = 0),
// propagates NaN.
inline __m256 exp256(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3365f), hi = _mm256_set1_ps(88.3762f);
  __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  __m256 xc = _mm256_min_ps(hi, _mm256_max_ps(lo, x));  // NaN stays NaN (second operand returned)
  __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  __m256 r2 = _mm256_mul_ps(r, r);
  p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  return _mm256_andnot_ps(under, y);
}

inline float hmax(__m256 v) {
  __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  a = _mm_max_ps(a, _mm_movehl_ps(a, a));
  a = _mm_max_ss(a, _mm_shuffle_ps(a, a, 1));
  return _mm_cvtss_f32(a);
}

inline float hsum(__m256 v) {
  __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  a = _mm_add_ps(a, _mm_movehl_ps(a, a));
  a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
  return _mm_cvtss_f32(a);
}

// lanes c+0..7 < valid
inline __m256 laneMask(int c, int valid) {
  __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(valid - c), iota));
}

inline int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// C[MR x 8NV] = init + sum_{p in [kb,ke)} a(i,p) * B[p, :]
// a(i,p) = TA ? A[p*lda + i] : A[i*lda + p]; init = C*cs[i] | C | 0.
template <int MR, int NV, bool TA>
inline void ukern(int kb, int ke, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                  int64_t ldc, const float* cs, bool acc) {
  __m256 c[MR][NV];
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++) {
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) {
      if (cs) c[i][v] = _mm256_mul_ps(_mm256_loadu_ps(C + i * ldc + 8 * v), _mm256_set1_ps(cs[i]));
      else if (acc) c[i][v] = _mm256_loadu_ps(C + i * ldc + 8 * v);
      else c[i][v] = _mm256_setzero_ps();
    }
  }
  const float* bp = B + (int64_t)kb * ldb;
  if (TA) {
    const float* ap = A + (int64_t)kb * lda;
    for (int p = kb; p < ke; p++, ap += lda, bp += ldb) {
      __m256 b0 = _mm256_loadu_ps(bp), b1 = NV > 1 ? _mm256_loadu_ps(bp + 8) : b0;
#pragma GCC unroll 6
      for (int i = 0; i < MR; i++) {
        __m256 a = _mm256_broadcast_ss(ap + i);
        c[i][0] = _mm256_fmadd_ps(a, b0, c[i][0]);
        if (NV > 1) c[i][NV - 1] = _mm256_fmadd_ps(a, b1, c[i][NV - 1]);
      }
    }
  } else {
    const float* ap = A + kb;
    for (int p = kb; p < ke; p++, ap++, bp += ldb) {
      __m256 b0 = _mm256_loadu_ps(bp), b1 = NV > 1 ? _mm256_loadu_ps(bp + 8) : b0;
#pragma GCC unroll 6
      for (int i = 0; i < MR; i++) {
        __m256 a = _mm256_broadcast_ss(ap + i * lda);
        c[i][0] = _mm256_fmadd_ps(a, b0, c[i][0]);
        if (NV > 1) c[i][NV - 1] = _mm256_fmadd_ps(a, b1, c[i][NV - 1]);
      }
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++) {
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) _mm256_storeu_ps(C + i * ldc + 8 * v, c[i][v]);
  }
}

using UK = void (*)(int, int, const float*, int64_t, const float*, int64_t, float*, int64_t, const float*, bool);

template <bool TA>
struct Table {
  UK k[7][3];
  Table() {
    k[0][1] = k[0][2] = nullptr;
    k[1][1] = ukern<1, 1, TA>; k[1][2] = ukern<1, 2, TA>;
    k[2][1] = ukern<2, 1, TA>; k[2][2] = ukern<2, 2, TA>;
    k[3][1] = ukern<3, 1, TA>; k[3][2] = ukern<3, 2, TA>;
    k[4][1] = ukern<4, 1, TA>; k[4][2] = ukern<4, 2, TA>;
    k[5][1] = ukern<5, 1, TA>; k[5][2] = ukern<5, 2, TA>;
    k[6][1] = ukern<6, 1, TA>; k[6][2] = ukern<6, 2, TA>;
  }
};

const Table<false> kTabN;
const Table<true> kTabT;

template <bool TA>
void gemmT(int m, int n, int k, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc,
           const float* cscale, bool acc, int tri, int diag) {
  const UK (*tab)[3] = TA ? kTabT.k : kTabN.k;
  for (int i0 = 0; i0 < m; i0 += 6) {
    int mr = m - i0 < 6 ? m - i0 : 6;
    int nn = n, kb = 0, ke = k;
    if (tri == 1) {
      int lim = diag + i0 + mr;
      nn = lim <= 0 ? 0 : (((lim + 7) & ~7) < n ? ((lim + 7) & ~7) : n);
    } else if (tri == 2) {
      ke = clampi(diag + i0 + mr, 0, k);
    } else if (tri == 3) {
      kb = clampi(i0 - diag, 0, k);
    }
    const float* Ai = TA ? A + i0 : A + (int64_t)i0 * lda;
    float* Ci = C + (int64_t)i0 * ldc;
    const float* csi = cscale ? cscale + i0 : nullptr;
    int j = 0;
    for (; j + 16 <= nn; j += 16) tab[mr][2](kb, ke, Ai, lda, B + j, ldb, Ci + j, ldc, csi, acc);
    for (; j < nn; j += 8) tab[mr][1](kb, ke, Ai, lda, B + j, ldb, Ci + j, ldc, csi, acc);
  }
}

}  // namespace

namespace moelab {

// C[m x n] = init + op(A)[m x k] * B[k x n]; n is a multiple of 8 and B, C have n readable columns.
// op(A)(i,p) = transA ? A[p*lda + i] : A[i*lda + p]. init = C*cscale[i] (cscale), C (acc) or 0.
// tri skips work the causal mask zeroes, per 6-row group starting at i0 (valid(i,c): c <= diag+i):
//   1: columns >= roundup8(diag+i0+6) are not computed (left as they were)
//   2: the k range ends at diag+i0+6 (rows of A are probabilities, zero beyond)
//   3: the k range starts at i0-diag (A is transposed probabilities of a tile, zero before)
void attnGemmAvx2(int m, int n, int k, const float* A, int64_t lda, bool transA, const float* B, int64_t ldb,
                  float* C, int64_t ldc, const float* cscale, bool acc, int tri, int diag) {
  if (transA) gemmT<true>(m, n, k, A, lda, B, ldb, C, ldc, cscale, acc, tri, diag);
  else gemmT<false>(m, n, k, A, lda, B, ldb, C, ldc, cscale, acc, tri, diag);
}

// Online-softmax update of one score tile S [rows x n] (n multiple of 8; valid(i,c): c <= diag+i):
// m/l are the running max and sum of each row; P = exp(S - m_new) replaces S (0 where masked) and
// alpha[i] = exp(m_old - m_new) is the factor the row's output accumulator must be rescaled by.
void attnSoftmaxTileAvx2(int rows, int n, float* S, int64_t lds, int diag, float* m, float* l, float* alpha) {
  const __m256 ninf = _mm256_set1_ps(-__builtin_inff());
  for (int i = 0; i < rows; i++) {
    float* s = S + (int64_t)i * lds;
    int valid = clampi(diag + i + 1, 0, n);
    if (valid == 0) {
      for (int c = 0; c < n; c += 8) _mm256_storeu_ps(s + c, _mm256_setzero_ps());
      alpha[i] = 1.0f;
      continue;
    }
    __m256 vm = ninf;
    for (int c = 0; c < n; c += 8) vm = _mm256_max_ps(vm, _mm256_blendv_ps(ninf, _mm256_loadu_ps(s + c), laneMask(c, valid)));
    float mx = hmax(vm);
    float mold = m[i];
    float mnew = mold > mx ? mold : mx;
    float a = _mm256_cvtss_f32(exp256(_mm256_set1_ps(mold - mnew)));
    if (mold == -__builtin_inff()) a = 0.0f;
    __m256 vmn = _mm256_set1_ps(mnew), vs = _mm256_setzero_ps();
    for (int c = 0; c < n; c += 8) {
      __m256 p = _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_loadu_ps(s + c), vmn)), laneMask(c, valid));
      _mm256_storeu_ps(s + c, p);
      vs = _mm256_add_ps(vs, p);
    }
    l[i] = l[i] * a + hsum(vs);
    m[i] = mnew;
    alpha[i] = a;
  }
}

// Backward tile: S (scores, scale folded in) becomes P = exp(S - lse[i]) and dP becomes
// dS = P * (dP - D[i]); both 0 where masked (valid(i,c): c <= diag+i). n multiple of 8.
void attnBwdTileAvx2(int rows, int n, float* S, float* dP, int64_t ld, int diag, const float* lse, const float* D) {
  for (int i = 0; i < rows; i++) {
    float* s = S + (int64_t)i * ld;
    float* dp = dP + (int64_t)i * ld;
    int valid = clampi(diag + i + 1, 0, n);
    __m256 L = _mm256_set1_ps(lse[i]), Dv = _mm256_set1_ps(D[i]);
    for (int c = 0; c < n; c += 8) {
      __m256 mk = laneMask(c, valid);
      __m256 p = _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_loadu_ps(s + c), L)), mk);
      __m256 ds = _mm256_and_ps(_mm256_mul_ps(p, _mm256_sub_ps(_mm256_loadu_ps(dp + c), Dv)), mk);
      _mm256_storeu_ps(s + c, p);
      _mm256_storeu_ps(dp + c, ds);
    }
  }
}

}  // namespace moelab
