// AVX2+FMA inner parts of the blocked causal attention in ../ops_attention.cc: a small GEMM with
// causal-triangle skipping (6x16 register tiles), the online-softmax tile update of the forward pass
// and the P/dS tile of the backward pass. Only intrinsics and plain C++ here (see binding.gyp note):
// no STL, everything internal except the three exported functions the driver calls through pointers.
#include <immintrin.h>
#include <cstdint>

namespace {

// 2^x for float lanes: x = n + r with n = round(x), |r| <= 1/2, 2^r by a degree-5 near-minimax
// polynomial (relative error 1.6e-7), 2^n through the exponent bits. Inputs below -126 give 2^-126
// (callers mask what must be exactly 0); NaN propagates.
inline __m256 exp2v(__m256 x) {
  const __m256 magic = _mm256_set1_ps(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  x = _mm256_max_ps(_mm256_set1_ps(-126.0f), x);      // (second operand returned on NaN)
  __m256 t = _mm256_add_ps(x, magic);
  __m256 r = _mm256_sub_ps(x, _mm256_sub_ps(t, magic));
  __m256 p = _mm256_set1_ps(1.3276466634124517e-3f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(9.675540961325169e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.550713464617729e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(2.4022120237350464e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(6.931469440460205e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0000001192092896f));
  // low bits of t hold n (the magic's low 23 bits are 0x400000, whose bits vanish in the shift)
  __m256i e = _mm256_add_epi32(_mm256_slli_epi32(_mm256_castps_si256(t), 23), _mm256_set1_epi32(127 << 23));
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
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

// Online-softmax update of one score tile S [rows x n] (n multiple of 8; valid(i,c): c <= diag+i),
// in base 2: z = sc * S with sc = scale * log2(e). m/l are the running max of z and sum of 2^(z-m)
// per row; P = 2^(z - m_new) replaces S (0 where masked) and alpha[i] = 2^(m_old - m_new) is the
// factor the row's output accumulator must be rescaled by.
void attnSoftmaxTileAvx2(int rows, int n, float* S, int64_t lds, int diag, float sc, float* m, float* l,
                         float* alpha) {
  const __m256 ninf = _mm256_set1_ps(-__builtin_inff()), vsc = _mm256_set1_ps(sc);
  for (int i = 0; i < rows; i++) {
    float* s = S + (int64_t)i * lds;
    int valid = clampi(diag + i + 1, 0, n);
    if (valid == 0) {
      for (int c = 0; c < n; c += 8) _mm256_storeu_ps(s + c, _mm256_setzero_ps());
      alpha[i] = 1.0f;
      continue;
    }
    __m256 vm = ninf;
    int c = 0;
    for (; c + 8 <= valid; c += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(s + c));
    if (c < valid) vm = _mm256_max_ps(vm, _mm256_blendv_ps(ninf, _mm256_loadu_ps(s + c), laneMask(c, valid)));
    const float mx = hmax(vm) * sc;  // sc > 0 keeps the argmax; sc <= 0 handled below
    float mnew;
    if (sc > 0) {
      mnew = m[i] > mx ? m[i] : mx;
    } else {  // rare: recompute the max of the scaled values
      __m256 vz = ninf;
      for (int c2 = 0; c2 < n; c2 += 8)
        vz = _mm256_max_ps(vz, _mm256_blendv_ps(ninf, _mm256_mul_ps(_mm256_loadu_ps(s + c2), vsc), laneMask(c2, valid)));
      const float mz = hmax(vz);
      mnew = m[i] > mz ? m[i] : mz;
    }
    const float mold = m[i];
    float a = _mm256_cvtss_f32(exp2v(_mm256_set1_ps(mold - mnew)));
    if (mold == -__builtin_inff()) a = 0.0f;
    const __m256 vmn = _mm256_set1_ps(mnew);
    __m256 vs = _mm256_setzero_ps();
    for (c = 0; c + 8 <= valid; c += 8) {
      __m256 p = exp2v(_mm256_fmsub_ps(_mm256_loadu_ps(s + c), vsc, vmn));
      _mm256_storeu_ps(s + c, p);
      vs = _mm256_add_ps(vs, p);
    }
    for (; c < n; c += 8) {
      __m256 p = _mm256_and_ps(exp2v(_mm256_fmsub_ps(_mm256_loadu_ps(s + c), vsc, vmn)), laneMask(c, valid));
      _mm256_storeu_ps(s + c, p);
      vs = _mm256_add_ps(vs, p);
    }
    l[i] = l[i] * a + hsum(vs);
    m[i] = mnew;
    alpha[i] = a;
  }
}

// Backward tile: S (raw scores q.k) becomes P = 2^(sc*S - lse[i]*log2(e)) and dP becomes
// dS = P * (dP - D[i]) * dsScale; both 0 where masked (valid(i,c): c <= diag+i). n multiple of 8.
void attnBwdTileAvx2(int rows, int n, float* S, float* dP, int64_t ld, int diag, float sc, float dsScale,
                     const float* lse, const float* D) {
  const __m256 vsc = _mm256_set1_ps(sc), vds = _mm256_set1_ps(dsScale);
  for (int i = 0; i < rows; i++) {
    float* s = S + (int64_t)i * ld;
    float* dp = dP + (int64_t)i * ld;
    int valid = clampi(diag + i + 1, 0, n);
    const __m256 L = _mm256_set1_ps(lse[i] * 1.44269504088896341f), Dv = _mm256_set1_ps(D[i]);
    int c = 0;
    for (; c + 8 <= valid; c += 8) {
      __m256 p = exp2v(_mm256_fmsub_ps(_mm256_loadu_ps(s + c), vsc, L));
      _mm256_storeu_ps(s + c, p);
      _mm256_storeu_ps(dp + c, _mm256_mul_ps(_mm256_mul_ps(p, vds), _mm256_sub_ps(_mm256_loadu_ps(dp + c), Dv)));
    }
    for (; c < n; c += 8) {
      __m256 mk = laneMask(c, valid);
      __m256 p = _mm256_and_ps(exp2v(_mm256_fmsub_ps(_mm256_loadu_ps(s + c), vsc, L)), mk);
      __m256 ds = _mm256_and_ps(_mm256_mul_ps(_mm256_mul_ps(p, vds), _mm256_sub_ps(_mm256_loadu_ps(dp + c), Dv)), mk);
      _mm256_storeu_ps(s + c, p);
      _mm256_storeu_ps(dp + c, ds);
    }
  }
}

// dst[c*ldd + r] = src[r*lds + c] for r < rows, c < cols (8x8 register transposes, scalar edges).
void attnTransposeAvx2(int rows, int cols, const float* src, int64_t lds, float* dst, int64_t ldd) {
  int r = 0;
  for (; r + 8 <= rows; r += 8) {
    int c = 0;
    for (; c + 8 <= cols; c += 8) {
      const float* sp = src + (int64_t)r * lds + c;
      __m256 a0 = _mm256_loadu_ps(sp), a1 = _mm256_loadu_ps(sp + lds), a2 = _mm256_loadu_ps(sp + 2 * lds),
             a3 = _mm256_loadu_ps(sp + 3 * lds), a4 = _mm256_loadu_ps(sp + 4 * lds), a5 = _mm256_loadu_ps(sp + 5 * lds),
             a6 = _mm256_loadu_ps(sp + 6 * lds), a7 = _mm256_loadu_ps(sp + 7 * lds);
      __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1), t2 = _mm256_unpacklo_ps(a2, a3),
             t3 = _mm256_unpackhi_ps(a2, a3), t4 = _mm256_unpacklo_ps(a4, a5), t5 = _mm256_unpackhi_ps(a4, a5),
             t6 = _mm256_unpacklo_ps(a6, a7), t7 = _mm256_unpackhi_ps(a6, a7);
      __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
             u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
             u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
             u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
      float* dp = dst + (int64_t)c * ldd + r;
      _mm256_storeu_ps(dp, _mm256_permute2f128_ps(u0, u4, 0x20));
      _mm256_storeu_ps(dp + ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
      _mm256_storeu_ps(dp + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
      _mm256_storeu_ps(dp + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
      _mm256_storeu_ps(dp + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
      _mm256_storeu_ps(dp + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
      _mm256_storeu_ps(dp + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
      _mm256_storeu_ps(dp + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
    for (; c < cols; c++)
      for (int rr = r; rr < r + 8; rr++) dst[(int64_t)c * ldd + rr] = src[(int64_t)rr * lds + c];
  }
  for (; r < rows; r++)
    for (int c = 0; c < cols; c++) dst[(int64_t)c * ldd + r] = src[(int64_t)r * lds + c];
}

}  // namespace moelab
