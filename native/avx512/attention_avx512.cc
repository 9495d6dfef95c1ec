// AVX-512 inner parts of the blocked causal attention in ../ops_attention.cc, with the contracts of
// the AVX2 versions (avx2/attention_avx2.cc): a small GEMM with causal-triangle skipping (8x32
// register tiles: 16 zmm accumulators), the online-softmax tile update of the forward pass and the
// P/dS tile of the backward pass. Tiles are n columns with n a multiple of 8, so the last vector of
// a row may be half full: it is loaded and stored under a mask instead of falling back to scalars.
// Only intrinsics and plain C++ (see the binding.gyp note); exported: the three tile functions.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 header false positives
#pragma GCC diagnostic ignored "-Wuninitialized"        // (see avx512/ops_avx512.cc)
#include <immintrin.h>
#include <cstdint>

namespace {

typedef __m512 V;
typedef __mmask16 M;

// Plain loads/stores for whole vectors: a masked store does not forward to a later load of the
// same data (the next k-block's accumulate reads C right back).
inline V loadm(M m, const float* p) { return m == (M)0xffff ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p); }
inline void storem(float* p, M m, V v) {
  if (m == (M)0xffff) _mm512_storeu_ps(p, v);
  else _mm512_mask_storeu_ps(p, m, v);
}

// 2^x, as exp2v in the AVX2 file: x = n + r, |r| <= 1/2, degree-5 polynomial (relative error
// 1.6e-7), 2^n through the exponent bits; inputs below -126 give 2^-126; NaN propagates.
inline V exp2v(V x) {
  const V magic = _mm512_set1_ps(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  x = _mm512_max_ps(_mm512_set1_ps(-126.0f), x);
  V t = _mm512_add_ps(x, magic);
  V r = _mm512_sub_ps(x, _mm512_sub_ps(t, magic));
  V p = _mm512_set1_ps(1.3276466634124517e-3f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.675540961325169e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.550713464617729e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(2.4022120237350464e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(6.931469440460205e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0000001192092896f));
  __m512i e = _mm512_add_epi32(_mm512_slli_epi32(_mm512_castps_si512(t), 23), _mm512_set1_epi32(127 << 23));
  return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

// lanes c+0..15 < lim (lim - c clamped to [0, 16])
inline M upTo(int c, int lim) {
  int r = lim - c;
  return r <= 0 ? (M)0 : r >= 16 ? (M)0xffff : (M)((1u << r) - 1u);
}

inline int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

constexpr int MR = 8;

// C[MR x cols] = init + sum_{p in [kb,ke)} a(i,p) * B[p, :] for cols = 16*(NV-1) + popcount(last):
// a(i,p) = TA ? A[p*lda + i] : A[i*lda + p]; init = C*cs[i] | C | 0. The last vector uses mask `last`.
template <int R, int NV, bool TA>
void ukern(int kb, int ke, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc,
           const float* cs, bool acc, M last) {
  V c[R][NV];
  const M mk[2] = {NV == 2 ? (M)0xffff : last, last};
#pragma GCC unroll 8
  for (int i = 0; i < R; i++) {
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) {
      if (cs) c[i][v] = _mm512_mul_ps(loadm(mk[v], C + i * ldc + 16 * v), _mm512_set1_ps(cs[i]));
      else if (acc) c[i][v] = loadm(mk[v], C + i * ldc + 16 * v);
      else c[i][v] = _mm512_setzero_ps();
    }
  }
  const float* bp = B + (int64_t)kb * ldb;
  const float* ap = TA ? A + (int64_t)kb * lda : A + kb;
  const int64_t aStep = TA ? lda : 1, aRow = TA ? 1 : lda;
  for (int p = kb; p < ke; p++, ap += aStep, bp += ldb) {
    V b0 = _mm512_maskz_loadu_ps(mk[0], bp), b1 = NV > 1 ? _mm512_maskz_loadu_ps(mk[1], bp + 16) : b0;
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
      V a = _mm512_set1_ps(ap[i * aRow]);
      c[i][0] = _mm512_fmadd_ps(a, b0, c[i][0]);
      if (NV > 1) c[i][NV - 1] = _mm512_fmadd_ps(a, b1, c[i][NV - 1]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; i++) {
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) storem(C + i * ldc + 16 * v, mk[v], c[i][v]);
  }
}

using UK = void (*)(int, int, const float*, int64_t, const float*, int64_t, float*, int64_t, const float*, bool, M);

template <bool TA>
struct Table {
  UK k[MR + 1][3];
  Table() {
    k[0][1] = k[0][2] = nullptr;
    k[1][1] = ukern<1, 1, TA>; k[1][2] = ukern<1, 2, TA>;
    k[2][1] = ukern<2, 1, TA>; k[2][2] = ukern<2, 2, TA>;
    k[3][1] = ukern<3, 1, TA>; k[3][2] = ukern<3, 2, TA>;
    k[4][1] = ukern<4, 1, TA>; k[4][2] = ukern<4, 2, TA>;
    k[5][1] = ukern<5, 1, TA>; k[5][2] = ukern<5, 2, TA>;
    k[6][1] = ukern<6, 1, TA>; k[6][2] = ukern<6, 2, TA>;
    k[7][1] = ukern<7, 1, TA>; k[7][2] = ukern<7, 2, TA>;
    k[8][1] = ukern<8, 1, TA>; k[8][2] = ukern<8, 2, TA>;
  }
};

const Table<false> kTabN;
const Table<true> kTabT;

template <bool TA>
void gemmT(int m, int n, int k, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc,
           const float* cscale, bool acc, int tri, int diag) {
  const UK (*tab)[3] = TA ? kTabT.k : kTabN.k;
  for (int i0 = 0; i0 < m; i0 += MR) {
    int mr = m - i0 < MR ? m - i0 : MR;
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
    for (; j + 32 <= nn; j += 32) tab[mr][2](kb, ke, Ai, lda, B + j, ldb, Ci + j, ldc, csi, acc, (M)0xffff);
    if (j + 16 < nn) {  // 24 columns: one full vector and a half one
      tab[mr][2](kb, ke, Ai, lda, B + j, ldb, Ci + j, ldc, csi, acc, upTo(j + 16, nn));
    } else if (j < nn) {
      tab[mr][1](kb, ke, Ai, lda, B + j, ldb, Ci + j, ldc, csi, acc, upTo(j, nn));
    }
  }
}

}  // namespace

namespace moelab {

// Contracts: see attnGemmAvx2 / attnSoftmaxTileAvx2 / attnBwdTileAvx2 in avx2/attention_avx2.cc
// (here tri skips per 8-row group instead of 6; the skipped work is the same causal zeros).
void attnGemmAvx512(int m, int n, int k, const float* A, int64_t lda, bool transA, const float* B, int64_t ldb,
                    float* C, int64_t ldc, const float* cscale, bool acc, int tri, int diag) {
  if (transA) gemmT<true>(m, n, k, A, lda, B, ldb, C, ldc, cscale, acc, tri, diag);
  else gemmT<false>(m, n, k, A, lda, B, ldb, C, ldc, cscale, acc, tri, diag);
}

void attnSoftmaxTileAvx512(int rows, int n, float* S, int64_t lds, int diag, float sc, float* m, float* l,
                           float* alpha) {
  const V ninf = _mm512_set1_ps(-__builtin_inff()), vsc = _mm512_set1_ps(sc);
  for (int i = 0; i < rows; i++) {
    float* s = S + (int64_t)i * lds;
    int valid = clampi(diag + i + 1, 0, n);
    if (valid == 0) {
      for (int c = 0; c < n; c += 16) _mm512_mask_storeu_ps(s + c, upTo(c, n), _mm512_setzero_ps());
      alpha[i] = 1.0f;
      continue;
    }
    V vm = ninf;
    for (int c = 0; c < valid; c += 16) vm = _mm512_mask_max_ps(vm, upTo(c, valid), vm, _mm512_maskz_loadu_ps(upTo(c, valid), s + c));
    const float mx = _mm512_reduce_max_ps(vm) * sc;  // sc > 0 keeps the argmax; sc <= 0 handled below
    float mnew;
    if (sc > 0) {
      mnew = m[i] > mx ? m[i] : mx;
    } else {
      V vz = ninf;
      for (int c = 0; c < valid; c += 16)
        vz = _mm512_mask_max_ps(vz, upTo(c, valid), vz, _mm512_mul_ps(_mm512_maskz_loadu_ps(upTo(c, valid), s + c), vsc));
      const float mz = _mm512_reduce_max_ps(vz);
      mnew = m[i] > mz ? m[i] : mz;
    }
    const float mold = m[i];
    float a = _mm512_cvtss_f32(exp2v(_mm512_set1_ps(mold - mnew)));
    if (mold == -__builtin_inff()) a = 0.0f;
    const V vmn = _mm512_set1_ps(mnew);
    V vs = _mm512_setzero_ps();
    for (int c = 0; c < n; c += 16) {
      const M inRow = upTo(c, n);
      V p = _mm512_maskz_mov_ps(upTo(c, valid), exp2v(_mm512_fmsub_ps(loadm(inRow, s + c), vsc, vmn)));
      storem(s + c, inRow, p);
      vs = _mm512_add_ps(vs, p);
    }
    l[i] = l[i] * a + _mm512_reduce_add_ps(vs);
    m[i] = mnew;
    alpha[i] = a;
  }
}

void attnBwdTileAvx512(int rows, int n, float* S, float* dP, int64_t ld, int diag, float sc, float dsScale,
                       const float* lse, const float* D) {
  const V vsc = _mm512_set1_ps(sc), vds = _mm512_set1_ps(dsScale);
  for (int i = 0; i < rows; i++) {
    float* s = S + (int64_t)i * ld;
    float* dp = dP + (int64_t)i * ld;
    int valid = clampi(diag + i + 1, 0, n);
    const V L = _mm512_set1_ps(lse[i] * 1.44269504088896341f), Dv = _mm512_set1_ps(D[i]);
    for (int c = 0; c < n; c += 16) {
      const M inRow = upTo(c, n), ok = upTo(c, valid);
      V p = _mm512_maskz_mov_ps(ok, exp2v(_mm512_fmsub_ps(loadm(inRow, s + c), vsc, L)));
      V ds = _mm512_maskz_mov_ps(ok, _mm512_mul_ps(_mm512_mul_ps(p, vds), _mm512_sub_ps(loadm(inRow, dp + c), Dv)));
      storem(s + c, inRow, p);
      storem(dp + c, inRow, ds);
    }
  }
}

}  // namespace moelab
