// Fused causal multi-head attention (forward, backward, KV-cache decoding), FlashAttention-2 style.
//
// Forward: per (batch, head) and block of BR queries, scores against blocks of FBC keys, online
// softmax in base 2 (scale * log2 e folded into the exponent), O rescaled per key block; only
// lse per query is written. Backward: per key block of BC keys, over the query blocks at or below
// the diagonal: recompute S, P = 2^(S*sc - lse*log2 e), dV += P^T dO, dP = dO V^T,
// dS = scale * P (dP - D) with D = rowsum(dO * O), dK += dS^T Q, dQ += dS K.
// The causal upper triangle is skipped at 6-row (AVX2) or 8-row (AVX-512) x 8-column granularity
// inside every tile GEMM.
//
// Threads take whole heads from a shared counter while there are at least as many heads as threads;
// the remainder (heads % threads) is split by query blocks (forward) or key blocks with private
// dQ accumulators summed afterwards (backward). Q, K, V, dO rows are read in place from qkv/gout
// (packed with zero padding only when hd % 8 != 0); K and V are packed transposed into per-thread
// scratch that is reused across calls. The bf16 kernels instead pack each head's B operands once as
// bf16 pair panels (K^T and V forward; K^T, V^T, dO, Q, K backward) that every tile product slices,
// with keys and values shifted by their means first (see shiftedRows). This file validates, packs, threads and dispatches; the tile
// kernels are AVX-512 (avx512/attention_avx512.cc), AVX2 (avx2/attention_avx2.cc) or the portable
// versions below (MOELAB_ISA=generic).
#include "cpu.h"
#include "args.h"
#include "gemm.h"
#include "gemm_api.h"
#include "gemm_bf16.h"
#include "ops_simd.h"
#include "registry.h"
#include "threadpool.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <new>
#include <vector>

namespace moelab {

// avx2/attention_avx2.cc
void attnGemmAvx2(int m, int n, int k, const float* A, int64_t lda, bool transA, const float* B, int64_t ldb,
                  float* C, int64_t ldc, const float* cscale, bool acc, int tri, int diag);
void attnSoftmaxTileAvx2(int rows, int n, float* S, int64_t lds, int diag, float sc, float* m, float* l,
                         float* alpha);
void attnBwdTileAvx2(int rows, int n, float* S, float* dP, int64_t ld, int diag, float sc, float dsScale,
                     const float* lse, const float* D);
void attnTransposeAvx2(int rows, int cols, const float* src, int64_t lds, float* dst, int64_t ldd);
// avx512/attention_avx512.cc (the transpose stays AVX2: it is a small, memory-bound copy)
void attnGemmAvx512(int m, int n, int k, const float* A, int64_t lda, bool transA, const float* B, int64_t ldb,
                    float* C, int64_t ldc, const float* cscale, bool acc, int tri, int diag);
void attnSoftmaxTileAvx512(int rows, int n, float* S, int64_t lds, int diag, float sc, float* m, float* l,
                           float* alpha);
void attnBwdTileAvx512(int rows, int n, float* S, float* dP, int64_t ld, int diag, float sc, float dsScale,
                       const float* lse, const float* D);

namespace {

constexpr int BR = 64;  // queries per block
constexpr int BC = 64;  // keys per block (multiple of 8)
constexpr int FBC = 128;  // keys per block in the forward pass (fewer per-row softmax steps)

inline int roundup8(int64_t x) { return (int)((x + 7) & ~int64_t(7)); }

// Row stride (floats) of the transposed K/V scratch for n keys: an odd number of 64-byte lines, so
// the hd rows a GEMM panel walks spread over all L1 sets instead of piling into a few (with a
// power-of-two stride they all map to the same sets), and rows stay line-aligned.
inline int transStride(int64_t n) {
  int64_t lines = (n + 15) / 16;
  return (int)((lines | 1) * 16);
}

// ------------------------------------------------------------------ portable tile kernels
// Same contracts as the AVX2 versions (see avx2/attention_avx2.cc), with exact per-row masking.

void gemmGeneric(int m, int n, int k, const float* A, int64_t lda, bool transA, const float* B, int64_t ldb,
                 float* C, int64_t ldc, const float* cscale, bool acc, int tri, int diag) {
  for (int i = 0; i < m; i++) {
    int nn = n, kb = 0, ke = k;
    if (tri == 1) nn = std::clamp(diag + i + 1, 0, n);
    else if (tri == 2) ke = std::clamp(diag + i + 1, 0, k);
    else if (tri == 3) kb = std::clamp(i - diag, 0, k);
    float* c = C + (int64_t)i * ldc;
    for (int j = 0; j < nn; j++) c[j] = cscale ? c[j] * cscale[i] : acc ? c[j] : 0.0f;
    for (int p = kb; p < ke; p++) {
      float a = transA ? A[(int64_t)p * lda + i] : A[(int64_t)i * lda + p];
      const float* b = B + (int64_t)p * ldb;
      for (int j = 0; j < nn; j++) c[j] += a * b[j];
    }
  }
}

void softmaxTileGeneric(int rows, int n, float* S, int64_t lds, int diag, float sc, float* m, float* l,
                        float* alpha) {
  for (int i = 0; i < rows; i++) {
    float* s = S + (int64_t)i * lds;
    int valid = std::clamp(diag + i + 1, 0, n);
    if (valid == 0) {
      std::fill(s, s + n, 0.0f);
      alpha[i] = 1.0f;
      continue;
    }
    float mx = -INFINITY;
    for (int c = 0; c < valid; c++) mx = std::max(mx, s[c] * sc);
    float mold = m[i], mnew = std::max(mold, mx);
    float a = mold == -INFINITY ? 0.0f : std::exp2(mold - mnew);
    float sum = 0;
    for (int c = 0; c < valid; c++) sum += (s[c] = std::exp2(s[c] * sc - mnew));
    std::fill(s + valid, s + n, 0.0f);
    l[i] = l[i] * a + sum;
    m[i] = mnew;
    alpha[i] = a;
  }
}

void bwdTileGeneric(int rows, int n, float* S, float* dP, int64_t ld, int diag, float sc, float dsScale,
                    const float* lse, const float* D) {
  for (int i = 0; i < rows; i++) {
    float* s = S + (int64_t)i * ld;
    float* dp = dP + (int64_t)i * ld;
    int valid = std::clamp(diag + i + 1, 0, n);
    const float L = lse[i] * (float)M_LOG2E;
    for (int c = 0; c < valid; c++) {
      s[c] = std::exp2(s[c] * sc - L);
      dp[c] = s[c] * (dp[c] - D[i]) * dsScale;
    }
    std::fill(s + valid, s + n, 0.0f);
    std::fill(dp + valid, dp + n, 0.0f);
  }
}

void transposeGeneric(int rows, int cols, const float* src, int64_t lds, float* dst, int64_t ldd) {
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) dst[(int64_t)c * ldd + r] = src[(int64_t)r * lds + c];
}

struct TileKernels {
  decltype(&gemmGeneric) gemm;
  decltype(&softmaxTileGeneric) softmax;
  decltype(&bwdTileGeneric) bwd;
  decltype(&transposeGeneric) transpose;
  bool bf16 = false;  // the heads pack their B operands once (PackedB) and use gemmBf16Packed
};

// The bf16 tile GEMM's loop over 12-row groups and 32-column slivers, given op(A) packed at pa (kq
// pairs deep) and B as pair panels: sliver j of the call starts at pb + (j / NR) * panel, and depth
// index p of the call is row kOff + p of the panels (kOff even). Each group runs over its causal
// column and depth range widened to whole slivers and whole pairs (the widening only adds entries
// of A that the callers hold as zeros: masked probabilities and score gradients, or padding), and
// finished tiles are merged into C with its init (C*cscale | C | 0).
void bf16TileLoop(const gemmk::KernelSet& ks, int m, int n, int kq, const float* pa, const float* pb, int64_t panel,
                  int kOff, float* C, int64_t ldc, const float* cscale, bool acc, int tri, int diag) {
  const int MR = ks.mr, NR = ks.nr;
  alignas(64) float tile[16 * 32];
  for (int i0 = 0; i0 < m; i0 += MR) {
    const int mr = std::min(MR, m - i0);
    int nn = n, kb = 0, ke = 2 * kq;
    if (tri == 1) nn = std::clamp(roundup8(diag + i0 + mr), 0, n);
    else if (tri == 2) ke = std::clamp(diag + i0 + mr, 0, 2 * kq);
    else if (tri == 3) kb = std::clamp(i0 - diag, 0, 2 * kq);
    kb &= ~1;
    ke = std::min((ke + 1) & ~1, 2 * kq);
    const int depth = std::max(0, ke - kb);
    const float* ap = pa + (int64_t)(i0 / MR) * MR * kq + (int64_t)(kb / 2) * MR;
    for (int j = 0; j < nn; j += NR) {
      const int nr = std::min(NR, nn - j);
      const float* bp = pb + (int64_t)(j / NR) * panel + (int64_t)((kOff + kb) / 2) * NR;
      if (mr == MR && nr == NR && !cscale) {  // a whole tile straight into C
        ks.kernel(depth, ap, bp, C + (int64_t)i0 * ldc + j, ldc, 1.0f, acc ? 1.0f : 0.0f, nullptr);
        continue;
      }
      ks.kernel(depth, ap, bp, tile, NR, 1.0f, 0.0f, nullptr);
      for (int r = 0; r < mr; r++) {
        float* c = C + (int64_t)(i0 + r) * ldc + j;
        const float* t = tile + r * NR;
        if (cscale) {
          const float cs = cscale[i0 + r];
          for (int q = 0; q < nr; q++) c[q] = c[q] * cs + t[q];
        } else if (acc) {
          for (int q = 0; q < nr; q++) c[q] += t[q];
        } else {
          std::memcpy(c, t, sizeof(float) * nr);
        }
      }
    }
  }
}

// Packs op(A) ([m, k]) into a thread-local panel buffer (after `reserve` floats kept for B) and
// returns it; *pbOut is the 64-byte aligned start of the reserved part.
float* packBf16A(const gemmk::KernelSet& ks, int m, int k, const float* A, int64_t lda, bool transA, int64_t reserve,
                 float** pbOut) {
  const int MR = ks.mr, kq = (k + 1) / 2;
  const int64_t aLen = (int64_t)(m + MR - 1) / MR * MR * kq;
  thread_local std::vector<float> panels;
  if ((int64_t)panels.size() < aLen + reserve + 32) panels.resize((size_t)(aLen + reserve + 32));
  float* pb = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(panels.data()) + 63) & ~uintptr_t(63));
  float* pa = pb + reserve;  // reserve is a multiple of 16 floats, so pb's slivers stay 64-byte aligned
  ks.packA(m, k, A, transA ? 1 : lda, transA ? lda : 1, pa);
  *pbOut = pb;
  return pa;
}

// The tile GEMM's contract (see gemmGeneric) with op(A) and B rounded to bf16 (nearest even) and
// fp32 accumulation, on the bf16 GEMM's packing and 12x32 vdpbf16ps kernel: both operands are
// packed whole into pair panels (zero padded), then bf16TileLoop. Only with bf16KernelSet().
void gemmBf16Tile(int m, int n, int k, const float* A, int64_t lda, bool transA, const float* B, int64_t ldb,
                  float* C, int64_t ldc, const float* cscale, bool acc, int tri, int diag) {
  const gemmk::KernelSet& ks = *bf16KernelSet();
  const int NR = ks.nr, kq = (k + 1) / 2;
  const int64_t bLen = (int64_t)(n + NR - 1) / NR * NR * kq;
  float* pb;
  const float* pa = packBf16A(ks, m, k, A, lda, transA, bLen, &pb);
  ks.packB(k, n, B, ldb, 1, pb);
  bf16TileLoop(ks, m, n, kq, pa, pb, (int64_t)NR * kq, 0, C, ldc, cscale, acc, tri, diag);
}

// A whole B operand of a head ([k, n] at B with strides rsb along k, csb along n), packed once as
// bf16 pair panels so every tile product slices it instead of packing its own block: the slice of
// depth rows [k0, k0 + k') and columns [n0, n0 + n') (k0 even, n0 a multiple of 32) is what
// gemmBf16Packed multiplies by.
struct PackedB {
  const float* p = nullptr;
  int kq = 0;  // pairs of depth per panel
  int64_t panel() const { return (int64_t)32 * kq; }
};

PackedB packBf16B(std::vector<float>& store, int k, int n, const float* B, int64_t rsb, int64_t csb) {
  const gemmk::KernelSet& ks = *bf16KernelSet();
  const int NR = ks.nr, kq = (k + 1) / 2;
  const int64_t len = (int64_t)(n + NR - 1) / NR * NR * kq;
  if ((int64_t)store.size() < len + 16) store.resize((size_t)(len + 16));
  float* p = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(store.data()) + 63) & ~uintptr_t(63));
  ks.packB(k, n, B, rsb, csb, p);
  return PackedB{p, kq};
}

// gemmBf16Tile with B the slice (depth from k0, columns from n0) of a packed head operand.
void gemmBf16Packed(int m, int n, int k, const float* A, int64_t lda, bool transA, const PackedB& B, int k0, int n0,
                    float* C, int64_t ldc, const float* cscale, bool acc, int tri, int diag) {
  const gemmk::KernelSet& ks = *bf16KernelSet();
  float* unused;
  const float* pa = packBf16A(ks, m, k, A, lda, transA, 0, &unused);
  bf16TileLoop(ks, m, n, (k + 1) / 2, pa, B.p + (int64_t)(n0 / ks.nr) * B.panel(), B.panel(), k0, C, ldc, cscale, acc,
               tri, diag);
}

// bf16: the active ISA's softmax, backward and transpose tiles with the bf16 tile GEMM.
const TileKernels& tileKernels(bool bf16 = false) {
  static const TileKernels avx512{attnGemmAvx512, attnSoftmaxTileAvx512, attnBwdTileAvx512, attnTransposeAvx2};
  static const TileKernels avx512bf16{gemmBf16Tile, attnSoftmaxTileAvx512, attnBwdTileAvx512, attnTransposeAvx2, true};
  static const TileKernels avx2{attnGemmAvx2, attnSoftmaxTileAvx2, attnBwdTileAvx2, attnTransposeAvx2};
  static const TileKernels generic{gemmGeneric, softmaxTileGeneric, bwdTileGeneric, transposeGeneric};
  if (bf16) return avx512bf16;  // bf16KernelSet() implies the avx512 tier
  return activeIsa() == Isa::Avx512 ? avx512 : activeIsa() == Isa::Avx2 ? avx2 : generic;
}

// ------------------------------------------------------------------ forward

// One head's queries, keys and values, each row r at base + r*stride (hd contiguous floats).
// Query r sits at absolute position pos0 + r and attends to keys 0 .. pos0 + r.
struct FwdHead {
  const float* q; int64_t qs;
  const float* k; int64_t ks;
  const float* v; int64_t vs;
  float* o; int64_t os;
  float* lse;  // [nq] or null
  int nq, pos0;
};

inline int64_t fwdScratch(int nkMax, int hd) {
  int64_t hdp = roundup8(hd), Sp = transStride(nkMax);
  return hd * Sp + (hd % 8 ? (int64_t)nkMax * hdp : 0) + BR * hdp + BR * FBC + 3 * BR + 64;
}

inline float* align64(float* p) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t(63));
}

// The bf16 kernels multiply by k_t - c_k and v_t - c_v instead of k_t and v_t, with c_k, c_v the
// means of the head's keys and values over the sequence. Scores move by q . c_k, the same for a whole
// row, which the softmax ignores (lse is corrected back), and out = c_v + sum_t p_t (v_t - c_v): exact
// in real arithmetic. In bf16 it keeps the rounding error proportional to how keys and values differ
// from each other rather than to their size. Early in training a head's values share one large
// component (the mean carries ~100% of E|v|^2 at step 100 of dense-d256), and the score gradient
// P (dP - D), a difference of near-equal numbers there, lost all precision without the shift (dq off
// by 25x its own norm in layer 0, measured on captured tensors; 0.16% with it). The means use later
// positions, so outputs depend on them at the level of bf16 rounding only; gradients treat c_k, c_v
// as constants, which is exact (d out / d c_v = 1 - sum_t p_t = 0, likewise for c_k).
void shiftedRows(int n, int nAll, int hd, const float* src, int64_t lds, float* c, float* dst) {
  thread_local std::vector<double> acc;
  acc.assign((size_t)hd, 0.0);
  for (int t = 0; t < nAll; t++)
    for (int e = 0; e < hd; e++) acc[e] += src[t * lds + e];
  for (int e = 0; e < hd; e++) c[e] = (float)(acc[e] / nAll);
  for (int t = 0; t < n; t++)
    for (int e = 0; e < hd; e++) dst[(int64_t)t * hd + e] = src[t * lds + e] - c[e];
}

inline float dotf(int n, const float* a, const float* b) {
  double d = 0;
  for (int e = 0; e < n; e++) d += (double)a[e] * b[e];
  return (float)d;
}

// Copies rows [0, n) of src (stride lds, hd floats) into dst [n][hdp] with zero padding.
void packRows(int n, int hd, const float* src, int64_t lds, float* dst, int hdp) {
  for (int t = 0; t < n; t++) {
    std::memcpy(dst + (int64_t)t * hdp, src + t * lds, sizeof(float) * hd);
    std::fill(dst + (int64_t)t * hdp + hd, dst + (int64_t)(t + 1) * hdp, 0.0f);
  }
}

// K^T of rows [0, n) into KT [hd][Sp], columns n .. Sp-1 zeroed.
void packTransposed(const TileKernels& K, int n, int hd, const float* src, int64_t lds, float* KT, int Sp) {
  K.transpose(n, hd, src, lds, KT, Sp);
  for (int c = 0; c < hd; c++) std::fill(KT + (int64_t)c * Sp + n, KT + (int64_t)(c + 1) * Sp, 0.0f);
}

// Queries of blocks [qb0, qb1) of one head. Scores are kept in base 2 (sc = scale * log2 e).
// Q is read in place (only broadcast along hd); V is read in place when hd is a multiple of 8,
// else packed with zero padding; K is packed transposed.
void fwdHead(const TileKernels& K, const FwdHead& h, int hd, float scale, int qb0, int qb1, float* scratch) {
  const int hdp = roundup8(hd);
  const int rEnd = std::min(h.nq, qb1 * BR);
  const int nk = h.pos0 + rEnd;  // keys any of these queries needs
  const int Sp = transStride(nk);
  const float sc = scale * (float)M_LOG2E;
  float* KT = align64(scratch);             // [hd][Sp]
  float* Vp = KT + (int64_t)hd * Sp;        // [nk][hdp] when hd % 8
  float* O = Vp + (hd % 8 ? (int64_t)nk * hdp : 0);  // [BR][hdp]
  float* St = O + (int64_t)BR * hdp;        // [BR][FBC]
  float* m = St + BR * FBC;
  float* l = m + BR;
  float* alpha = l + BR;

  // bf16: K (as B of Q K^T, transposed) and V (as B of P V) packed once as bf16 panels; fp32: K^T
  // packed, V read in place (packed when hd % 8).
  thread_local std::vector<float> kStore, vStore;
  PackedB Kb, Vb;
  const float* V = h.v;
  int64_t ldv = h.vs;
  thread_local std::vector<float> shifted;
  float *ck = nullptr, *cv = nullptr;
  if (K.bf16) {
    const int nAll = h.pos0 + h.nq;
    if ((int64_t)shifted.size() < (int64_t)nk * hd + 2 * hd) shifted.resize((size_t)nk * hd + 2 * hd);
    ck = shifted.data() + (int64_t)nk * hd, cv = ck + hd;
    shiftedRows(nk, nAll, hd, h.k, h.ks, ck, shifted.data());
    Kb = packBf16B(kStore, hd, nk, shifted.data(), 1, hd);
    shiftedRows(nk, nAll, hd, h.v, h.vs, cv, shifted.data());
    Vb = packBf16B(vStore, nk, hd, shifted.data(), hd, 1);
  } else {
    packTransposed(K, nk, hd, h.k, h.ks, KT, Sp);
    if (hd % 8) {
      packRows(nk, hd, h.v, h.vs, Vp, hdp);
      V = Vp;
      ldv = hdp;
    }
  }

  for (int qb = qb0; qb < qb1; qb++) {
    const int r0 = qb * BR, nr = std::min(BR, h.nq - r0);
    if (nr <= 0) break;
    for (int i = 0; i < nr; i++) {
      m[i] = -INFINITY;
      l[i] = 0.0f;
    }
    const float* Q = h.q + r0 * h.qs;
    const int nkb = h.pos0 + r0 + nr;  // keys this block needs
    for (int t0 = 0; t0 < nkb; t0 += FBC) {
      const int nkt = std::min(FBC, nkb - t0), ncol = roundup8(nkt);
      const int diag = h.pos0 + r0 - t0;
      const float* oscale = t0 == 0 ? nullptr : alpha;
      if (K.bf16) {
        gemmBf16Packed(nr, ncol, hd, Q, h.qs, false, Kb, 0, t0, St, FBC, nullptr, false, 1, diag);
        K.softmax(nr, ncol, St, FBC, diag, sc, m, l, alpha);
        gemmBf16Packed(nr, hdp, nkt, St, FBC, false, Vb, t0, 0, O, hdp, oscale, false, 2, diag);
      } else {
        K.gemm(nr, ncol, hd, Q, h.qs, false, KT + t0, Sp, St, FBC, nullptr, false, 1, diag);
        K.softmax(nr, ncol, St, FBC, diag, sc, m, l, alpha);
        K.gemm(nr, hdp, nkt, St, FBC, false, V + t0 * ldv, ldv, O, hdp, oscale, false, 2, diag);
      }
    }
    for (int i = 0; i < nr; i++) {
      const float inv = 1.0f / l[i];
      float* od = h.o + (r0 + i) * h.os;
      const float* os = O + (int64_t)i * hdp;
      if (cv) {
        for (int c = 0; c < hd; c++) od[c] = os[c] * inv + cv[c];
      } else {
        for (int c = 0; c < hd; c++) od[c] = os[c] * inv;
      }
      if (h.lse) {
        h.lse[r0 + i] = (m[i] + std::log2(l[i])) * (float)M_LN2;
        if (ck) h.lse[r0 + i] += scale * dotf(hd, Q + (int64_t)i * h.qs, ck);
      }
    }
  }
}

// Work list of (head, query-block range) items run with a shared atomic counter. Heads are whole
// items while there are enough of them to keep every thread busy; the remainder are split into
// query blocks (largest first) so a single head still uses all threads.
struct FwdItem {
  int head, qb0, qb1;
};

template <typename HeadFn>
void runFwd(const char* fn, int nHeads, int nq, int nkMax, int hd, const HeadFn& headAt, float scale,
            const TileKernels& K = tileKernels()) {
  const int nqb = (nq + BR - 1) / BR;
  const int nt0 = std::max(1, threads());
  const int rem = nHeads % nt0;
  // A reusable list; workers reach it through the reference (naming a thread_local in the lambda
  // would give each worker its own, empty, copy).
  thread_local std::vector<FwdItem> itemsTl;
  std::vector<FwdItem>& items = itemsTl;
  items.clear();
  for (int hh = 0; hh < nHeads - rem; hh++) items.push_back({hh, 0, nqb});
  for (int qb = nqb - 1; qb >= 0; qb--)
    for (int hh = nHeads - rem; hh < nHeads; hh++) items.push_back({hh, qb, qb + 1});
  if (items.empty()) return;
  // All pool threads or none; threads that find no item left just return. (Jobs narrower than the
  // pool once tripped a thread-pool race, fixed in 95b9162; using the full width stays the simple
  // rule here.)
  const int nt = items.size() > 1 ? nt0 : 1;
  const int64_t per = fwdScratch(nkMax, hd);
  thread_local std::vector<float> arena;
  growScratch(fn, "attention tiles", arena, per * nt);
  std::atomic<int64_t> next{0};
  float* base = arena.data();
  parallelRun(nt, [&](int t, int) {
    float* scratch = base + per * t;
    for (;;) {
      int64_t it = next.fetch_add(1, std::memory_order_relaxed);
      if (it >= (int64_t)items.size()) break;
      const FwdItem& w = items[it];
      fwdHead(K, headAt(w.head), hd, scale, w.qb0, w.qb1, scratch);
    }
  });
}

// ------------------------------------------------------------------ backward

struct BwdHead {
  const float* q; const float* k; const float* v; int64_t qkvs;  // row stride of q, k, v
  const float* o; const float* go; int64_t os;                    // row stride of out, gout
  const float* lse;                                               // [S]
  float* gq; float* gk; float* gv;                                // rows at stride qkvs
};

inline int64_t bwdScratch(int S, int hd) {
  int64_t hdp = roundup8(hd), Sp = transStride(S);
  return (hd % 8 ? 3 * (int64_t)S * hdp : 0) + 2 * hd * Sp + 2 * BR * BC + 2 * (int64_t)BC * hdp + S + 64;
}

// Key blocks [kbBegin, kbEnd) of one head, in order; dq accumulates into dQ (rows at stride lddq,
// hdp columns writable), which the caller zeroed. dS carries the softmax scale, so dQ = dS K and
// dK = dS^T Q need no rescaling. dK and dV of each key block are written to the head's gk, gv.
// q, k, gout rows are read in place when hd is a multiple of 8 (else packed, zero padded); K and V
// are packed transposed.
void bwdHead(const TileKernels& K, const BwdHead& h, int S, int hd, float scale, int kbBegin, int kbEnd,
             float* scratch, float* dQ, int64_t lddq) {
  const int hdp = roundup8(hd), Sp = transStride(S);
  const int nkbTotal = (S + BC - 1) / BC;
  const float sc = scale * (float)M_LOG2E;
  float* base = align64(scratch);
  float* KT = base;                        // [hd][Sp]
  float* VT = KT + (int64_t)hd * Sp;       // [hd][Sp]
  float* St = VT + (int64_t)hd * Sp;       // [BR][BC]
  float* dPt = St + BR * BC;               // [BR][BC]
  float* dKt = dPt + BR * BC;              // [BC][hdp]
  float* dVt = dKt + (int64_t)BC * hdp;    // [BC][hdp]
  float* D = dVt + (int64_t)BC * hdp;      // [S]
  float* packed = D + S;                   // 3 x [S][hdp] when hd % 8

  const float *Q = h.q, *Kr = h.k, *dO = h.go;
  int64_t ldq = h.qkvs, ldk = h.qkvs, ldo = h.os;
  // bf16: the five B operands (K^T, V^T, dO, Q, K) packed once per head as bf16 panels, A operands
  // read in place (its packer takes any hd); fp32: K^T and V^T packed, rows padded when hd % 8.
  thread_local std::vector<float> bStore[5];
  PackedB Kt, Vt, dOb, Qb, Kb;
  // bf16: keys and values shifted by their means (see shiftedRows); lse and D follow.
  thread_local std::vector<float> shifted;
  const float* lseRow = h.lse;
  const float* cv = nullptr;
  if (K.bf16) {
    if ((int64_t)shifted.size() < (int64_t)S * hd + 2 * hd + S) shifted.resize((size_t)S * hd + 2 * hd + S);
    float* ck = shifted.data() + (int64_t)S * hd;
    float* cvw = ck + hd;
    float* lseS = cvw + hd;
    shiftedRows(S, S, hd, h.k, h.qkvs, ck, shifted.data());
    Kt = packBf16B(bStore[0], hd, S, shifted.data(), 1, hd);
    Kb = packBf16B(bStore[4], S, hd, shifted.data(), hd, 1);
    shiftedRows(S, S, hd, h.v, h.qkvs, cvw, shifted.data());
    Vt = packBf16B(bStore[1], hd, S, shifted.data(), 1, hd);
    dOb = packBf16B(bStore[2], S, hd, h.go, h.os, 1);
    Qb = packBf16B(bStore[3], S, hd, h.q, h.qkvs, 1);
    for (int s = 0; s < S; s++) lseS[s] = h.lse[s] - scale * dotf(hd, h.q + s * h.qkvs, ck);
    lseRow = lseS;
    cv = cvw;
  } else {
    if (hd % 8) {
      float* Qp = packed;
      float* Kp = Qp + (int64_t)S * hdp;
      float* Op = Kp + (int64_t)S * hdp;
      packRows(S, hd, h.q, h.qkvs, Qp, hdp);
      packRows(S, hd, h.k, h.qkvs, Kp, hdp);
      packRows(S, hd, h.go, h.os, Op, hdp);
      Q = Qp, Kr = Kp, dO = Op;
      ldq = ldk = ldo = hdp;
    }
    packTransposed(K, S, hd, h.k, h.qkvs, KT, Sp);
    packTransposed(K, S, hd, h.v, h.qkvs, VT, Sp);
  }
  if (cv) {  // D = rowsum(dO * (O - c_v)), the shifted output the score gradients difference against
    for (int s = 0; s < S; s++) {
      const float* o = h.o + s * h.os;
      const float* go = h.go + s * h.os;
      double d = 0;
      for (int c = 0; c < hd; c++) d += (double)go[c] * (o[c] - cv[c]);
      D[s] = (float)d;
    }
  } else {
    const simd::OpsTable& rows = ops::kernels();
    for (int s = 0; s < S; s++) D[s] = rows.dot(h.go + s * h.os, h.o + s * h.os, hd);  // D = rowsum(dO * O)
  }

  for (int kb = kbBegin; kb < std::min(kbEnd, nkbTotal); kb++) {
    const int t0 = kb * BC, nkt = std::min(BC, S - t0), ncol = roundup8(nkt);
    bool first = true;  // the first query block writes dK/dV tiles, later ones accumulate
    for (int r0 = (t0 / BR) * BR; r0 < S; r0 += BR) {
      const int nr = std::min(BR, S - r0), diag = r0 - t0;
      if (diag + nr <= 0) continue;
      const float* Qi = Q + r0 * ldq;
      const float* dOi = dO + r0 * ldo;
      if (K.bf16) {
        gemmBf16Packed(nr, ncol, hd, Qi, ldq, false, Kt, 0, t0, St, BC, nullptr, false, 1, diag);
        gemmBf16Packed(nr, ncol, hd, dOi, ldo, false, Vt, 0, t0, dPt, BC, nullptr, false, 1, diag);
        K.bwd(nr, ncol, St, dPt, BC, diag, sc, scale, lseRow + r0, D + r0);
        gemmBf16Packed(nkt, hdp, nr, St, BC, true, dOb, r0, 0, dVt, hdp, nullptr, !first, 3, diag);
        gemmBf16Packed(nkt, hdp, nr, dPt, BC, true, Qb, r0, 0, dKt, hdp, nullptr, !first, 3, diag);
        gemmBf16Packed(nr, hdp, nkt, dPt, BC, false, Kb, t0, 0, dQ + r0 * lddq, lddq, nullptr, true, 2, diag);
      } else {
        K.gemm(nr, ncol, hd, Qi, ldq, false, KT + t0, Sp, St, BC, nullptr, false, 1, diag);
        K.gemm(nr, ncol, hd, dOi, ldo, false, VT + t0, Sp, dPt, BC, nullptr, false, 1, diag);
        K.bwd(nr, ncol, St, dPt, BC, diag, sc, scale, h.lse + r0, D + r0);
        K.gemm(nkt, hdp, nr, St, BC, true, dOi, ldo, dVt, hdp, nullptr, !first, 3, diag);
        K.gemm(nkt, hdp, nr, dPt, BC, true, Qi, ldq, dKt, hdp, nullptr, !first, 3, diag);
        K.gemm(nr, hdp, nkt, dPt, BC, false, Kr + t0 * ldk, ldk, dQ + r0 * lddq, lddq, nullptr, true, 2, diag);
      }
      first = false;
    }
    if (first) {  // no query block (cannot happen for S > t0, kept for safety)
      std::fill(dKt, dKt + (int64_t)BC * hdp, 0.0f);
      std::fill(dVt, dVt + (int64_t)BC * hdp, 0.0f);
    }
    for (int t = 0; t < nkt; t++) {
      std::memcpy(h.gk + (t0 + t) * h.qkvs, dKt + (int64_t)t * hdp, sizeof(float) * hd);
      std::memcpy(h.gv + (t0 + t) * h.qkvs, dVt + (int64_t)t * hdp, sizeof(float) * hd);
    }
  }
}

// ------------------------------------------------------------------ validation helpers

[[noreturn]] void tooBig(const Napi::Env& env, const char* fn) { throwRange(env, std::string(fn) + ": sizes too large"); }

constexpr int64_t kMaxDim = int64_t(1) << 30;

// ------------------------------------------------------------------ N-API entry points

// Arguments 0..7 shared by attention and attentionBackward: (B, S, H, hd, scale, qkv [B, S, 3, H, hd],
// out [B, S, H, hd], lse [B, H, S]), with their length checks.
struct AttnArgs {
  int64_t B, S, H, hd;
  float scale;
  Span<float> qkv, out, lse;
};

AttnArgs attnArgs(const Napi::CallbackInfo& info, const char* fn, size_t nargs) {
  Napi::Env env = info.Env();
  needArgs(info, nargs, fn);
  AttnArgs A;
  A.B = dimArg(info, 0, fn, "B");
  A.S = dimArg(info, 1, fn, "S");
  A.H = dimArg(info, 2, fn, "H");
  A.hd = dimArg(info, 3, fn, "hd");
  A.scale = (float)numArg(info, 4, fn, "scale");
  A.qkv = f32Arg(info, 5, fn, "qkv");
  A.out = f32Arg(info, 6, fn, "out");
  A.lse = f32Arg(info, 7, fn, "lse");
  needLen(env, A.qkv, checkedProd(env, fn, {A.B, A.S, 3, A.H, A.hd}), fn, "qkv");
  needLen(env, A.out, checkedProd(env, fn, {A.B, A.S, A.H, A.hd}), fn, "out");
  needLen(env, A.lse, checkedProd(env, fn, {A.B, A.H, A.S}), fn, "lse");
  if (A.B * A.H * A.S != 0 && (A.S > kMaxDim || A.hd > kMaxDim)) tooBig(env, fn);
  return A;
}

// attention(B, S, H, hd, scale, qkv, out, lse): out, lse written
AttnArgs parseAttention(const Napi::CallbackInfo& info, const char* fn) {
  Napi::Env env = info.Env();
  AttnArgs A = attnArgs(info, fn, 8);
  noOverlap(env, fn, A.out, "out", A.qkv, "qkv");
  noOverlap(env, fn, A.lse, "lse", A.qkv, "qkv");
  noOverlap(env, fn, A.lse, "lse", A.out, "out");
  return A;
}

void attention(const AttnArgs& A, bool bf16) {
  const char* fn = bf16 ? "attentionBf16" : "attention";
  const int64_t B = A.B, S = A.S, H = A.H, hd = A.hd;
  const float scale = A.scale;
  const Span<float> qkv = A.qkv, out = A.out, lse = A.lse;
  if (B * H * S == 0) return;
  if (hd == 0) {  // all scores 0: uniform softmax
    for (int64_t bh = 0; bh < B * H; bh++)
      for (int64_t s = 0; s < S; s++) lse.data[bh * S + s] = (float)std::log((double)(s + 1));
    return;
  }
  const int64_t rs = 3 * H * hd;
  auto headAt = [&](int bh) {
    const int64_t b = bh / H, h = bh % H;
    const float* base = qkv.data + b * S * rs + h * hd;
    return FwdHead{base, rs, base + H * hd, rs, base + 2 * H * hd, rs, out.data + b * S * H * hd + h * hd, H * hd,
                   lse.data + (b * H + h) * S, (int)S, 0};
  };
  runFwd(fn, (int)(B * H), (int)S, (int)S, (int)hd, headAt, scale, tileKernels(bf16));
}

Napi::Value AttentionNapi(const Napi::CallbackInfo& info) {
  attention(parseAttention(info, "attention"), false);
  return info.Env().Undefined();
}

Napi::Value AttentionBf16Napi(const Napi::CallbackInfo& info) {
  needBf16(info.Env(), "attentionBf16");
  attention(parseAttention(info, "attentionBf16"), true);
  return info.Env().Undefined();
}

Napi::Value AttentionKVNapi(const Napi::CallbackInfo& info) {
  const char* fn = "attentionKV";
  Napi::Env env = info.Env();
  needArgs(info, 9, fn);
  int64_t Sq = dimArg(info, 0, fn, "Sq"), H = dimArg(info, 1, fn, "H"), hd = dimArg(info, 2, fn, "hd"),
          pos0 = dimArg(info, 3, fn, "pos0");
  float scale = (float)numArg(info, 4, fn, "scale");
  auto q = f32Arg(info, 5, fn, "q");
  auto kc = f32Arg(info, 6, fn, "kCache");
  auto vc = f32Arg(info, 7, fn, "vCache");
  auto out = f32Arg(info, 8, fn, "out");
  if (Sq > kMaxDim || pos0 > kMaxDim) tooBig(env, fn);
  needLen(env, q, checkedProd(env, fn, {Sq, H, hd}), fn, "q");
  needLen(env, kc, checkedProd(env, fn, {pos0 + Sq, H, hd}), fn, "kCache");
  needLen(env, vc, checkedProd(env, fn, {pos0 + Sq, H, hd}), fn, "vCache");
  needLen(env, out, checkedProd(env, fn, {Sq, H, hd}), fn, "out");
  noOverlap(env, fn, out, "out", q, "q");
  noOverlap(env, fn, out, "out", kc, "kCache");
  noOverlap(env, fn, out, "out", vc, "vCache");
  if (Sq * H * hd == 0) return env.Undefined();
  if (hd > kMaxDim) tooBig(env, fn);
  const int64_t rs = H * hd;
  auto headAt = [&](int h) {
    return FwdHead{q.data + h * hd, rs, kc.data + h * hd, rs, vc.data + h * hd, rs, out.data + h * hd, rs, nullptr,
                   (int)Sq, (int)pos0};
  };
  runFwd(fn, (int)H, (int)Sq, (int)(pos0 + Sq), (int)hd, headAt, scale);
  return env.Undefined();
}

// attentionBackward(B, S, H, hd, scale, qkv, out, lse, gout, gqkv): gqkv written
struct AttnBackwardArgs {
  AttnArgs in;
  Span<float> gout, gqkv;
};

AttnBackwardArgs parseAttentionBackward(const Napi::CallbackInfo& info, const char* fn) {
  Napi::Env env = info.Env();
  AttnBackwardArgs A{attnArgs(info, fn, 10), f32Arg(info, 8, fn, "gout"), f32Arg(info, 9, fn, "gqkv")};
  needLen(env, A.gout, checkedProd(env, fn, {A.in.B, A.in.S, A.in.H, A.in.hd}), fn, "gout");
  needLen(env, A.gqkv, checkedProd(env, fn, {A.in.B, A.in.S, 3, A.in.H, A.in.hd}), fn, "gqkv");
  noOverlap(env, fn, A.gqkv, "gqkv", A.in.qkv, "qkv");
  noOverlap(env, fn, A.gqkv, "gqkv", A.in.out, "out");
  noOverlap(env, fn, A.gqkv, "gqkv", A.in.lse, "lse");
  noOverlap(env, fn, A.gqkv, "gqkv", A.gout, "gout");
  return A;
}

void attentionBackward(const AttnBackwardArgs& A, bool bf16) {
  const char* fn = bf16 ? "attentionBackwardBf16" : "attentionBackward";
  const int64_t B = A.in.B, S = A.in.S, H = A.in.H, hd = A.in.hd;
  const float scale = A.in.scale;
  const Span<float> qkv = A.in.qkv, out = A.in.out, lse = A.in.lse, gout = A.gout, gqkv = A.gqkv;
  if (B * H * S * hd == 0) return;

  const int64_t rs = 3 * H * hd;
  auto headAt = [&](int64_t bh) {
    const int64_t b = bh / H, h = bh % H;
    const int64_t qo = b * S * rs + h * hd, oo = b * S * H * hd + h * hd;
    return BwdHead{qkv.data + qo, qkv.data + qo + H * hd, qkv.data + qo + 2 * H * hd, rs,
                   out.data + oo, gout.data + oo, H * hd, lse.data + (b * H + h) * S,
                   gqkv.data + qo, gqkv.data + qo + H * hd, gqkv.data + qo + 2 * H * hd};
  };
  const TileKernels& K = tileKernels(bf16);
  const int Si = (int)S, hdi = (int)hd, hdp = roundup8(hd);
  const int64_t BH = B * H;
  const int nt0 = std::max(1, threads());
  const int nkb = (Si + BC - 1) / BC;
  // dq sums over key blocks. Its bits must not depend on the thread count (a run resumed with other
  // --threads trains the same numbers), so how a head is split is decided by the shapes alone: with
  // kSumSlices heads or more, each head is whole on one thread (key blocks in order); with fewer,
  // each head's key blocks are cut into fixed slices (threadpool.h, sumSlices) whose dq partials
  // are added in slice order.
  const bool whole = BH >= kSumSlices;
  const int slices = whole ? 1 : sumSlices(nkb, 1);
  const int64_t per = bwdScratch(Si, hdi) + (int64_t)Si * hdp + 16;  // + private dQ
  auto writeDq = [&](const BwdHead& h, const float* dQ) {
    for (int s = 0; s < Si; s++) std::memcpy(h.gq + s * rs, dQ + (int64_t)s * hdp, sizeof(float) * hdi);
  };

  thread_local std::vector<float> arena;
  growScratch(fn, "attention tiles", arena, per * (whole ? nt0 : slices));
  float* base = arena.data();
  if (whole) {
    // One thread per head: no write conflicts. When rows of gq can take 8-float stores (hd % 8 ==
    // 0), dq accumulates right there; else in a padded buffer that is copied out.
    std::atomic<int64_t> next{0};
    parallelRun(nt0, [&](int t, int) {
      float* scratch = base + per * t;
      float* dQbuf = align64(scratch + bwdScratch(Si, hdi));
      for (;;) {
        int64_t bh = next.fetch_add(1, std::memory_order_relaxed);
        if (bh >= BH) break;
        BwdHead h = headAt(bh);
        if (hdi % 8 == 0) {
          for (int s = 0; s < Si; s++) std::fill(h.gq + s * rs, h.gq + s * rs + hdi, 0.0f);
          bwdHead(K, h, Si, hdi, scale, 0, nkb, scratch, h.gq, rs);
        } else {
          std::fill(dQbuf, dQbuf + (int64_t)Si * hdp, 0.0f);
          bwdHead(K, h, Si, hdi, scale, 0, nkb, scratch, dQbuf, hdp);
          writeDq(h, dQbuf);
        }
      }
    });
    return;
  }
  // Few heads: one at a time, its key-block slices over the threads, private dQ per slice.
  for (int64_t bh = 0; bh < BH; bh++) {
    BwdHead h = headAt(bh);
    forSlices(nkb, slices, nullptr, [&](int s, int64_t kb0, int64_t kb1) {
      float* scratch = base + per * s;
      float* dQ = align64(scratch + bwdScratch(Si, hdi));
      std::fill(dQ, dQ + (int64_t)Si * hdp, 0.0f);
      bwdHead(K, h, Si, hdi, scale, (int)kb0, (int)kb1, scratch, dQ, hdp);
    });
    float* dQ0 = align64(base + bwdScratch(Si, hdi));
    for (int s = 1; s < slices; s++) {
      const float* dQs = align64(base + per * s + bwdScratch(Si, hdi));
      for (int64_t i = 0; i < (int64_t)Si * hdp; i++) dQ0[i] += dQs[i];
    }
    writeDq(h, dQ0);
  }
}

Napi::Value AttentionBackwardNapi(const Napi::CallbackInfo& info) {
  attentionBackward(parseAttentionBackward(info, "attentionBackward"), false);
  return info.Env().Undefined();
}

Napi::Value AttentionBackwardBf16Napi(const Napi::CallbackInfo& info) {
  needBf16(info.Env(), "attentionBackwardBf16");
  attentionBackward(parseAttentionBackward(info, "attentionBackwardBf16"), true);
  return info.Env().Undefined();
}

}  // namespace

MOELAB_EXPORT(attention, AttentionNapi);
MOELAB_EXPORT(attentionBackward, AttentionBackwardNapi);
MOELAB_EXPORT(attentionKV, AttentionKVNapi);
MOELAB_EXPORT(attentionBf16, AttentionBf16Napi);
MOELAB_EXPORT(attentionBackwardBf16, AttentionBackwardBf16Napi);

}  // namespace moelab
