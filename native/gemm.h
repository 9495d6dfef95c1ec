// SGEMM internals shared by the driver (gemm.cc, baseline ISA) and the per-ISA micro-kernels
// (generic/, avx2/, avx512/). Only plain functions and POD types cross that boundary: the ISA files
// are compiled with -mavx2/-mavx512f and must not instantiate inline templates the baseline code
// could also pick up at link time.
//
// Layouts (Goto/BLIS):
// - A general operand is addressed as element (i, p) = a[i*rs + p*cs]; transposition is just a
//   swap of (rs, cs), so one packing routine serves every transpose combination.
// - Packed A (an MC x KC block): ceil(mc/MR) slivers, each kc groups of MR floats
//   (sliver s, step p, row r at dst[s*MR*kc + p*MR + r]); rows past mc are zero.
// - Packed B (a KC x NC block): ceil(nc/NR) slivers, each kc groups of NR floats
//   (sliver s, step p, column j at dst[s*NR*kc + p*NR + j]); columns past nc are zero.
#pragma once
#include <cstdint>

namespace moelab {

// C++ entry point for other native kernels (no argument checks: the caller guarantees sizes).
// C[m,n] = alpha * op(A) @ op(B) + beta * C (+ bias[j] on every row, bias may be null), with the
// same conventions as the JS gemm(). maxThreads = 0 uses the pool; pass 1 when calling from inside
// a parallelFor/parallelRun body (the pool is not reentrant).
void sgemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc, const float* bias, int maxThreads = 0);

namespace gemmk {

// Full MR x NR tile: C = alpha * (Apanel @ Bpanel) + beta * C + bias, where beta == 0 means C is
// not read (NaN-safe) and bias (NR floats) may be null. kc >= 1.
typedef void (*MicroKernelFn)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                              float beta, const float* bias);
// Pack an mc x kc block of A (element (i,p) = a[i*rs + p*cs]) into MR-row slivers.
typedef void (*PackAFn)(int64_t mc, int64_t kc, const float* a, int64_t rs, int64_t cs, float* dst);
// Pack a kc x nc block of B (element (p,j) = b[p*rs + j*cs]) into NR-column slivers.
typedef void (*PackBFn)(int64_t kc, int64_t nc, const float* b, int64_t rs, int64_t cs, float* dst);
// Shifted packing (the bf16 set's operand shifts, see gemm_bf16.h): as PackAFn with kShift[p] and/or
// laneShift[i] (either may be null) subtracted from element (i, p) before it is rounded, p and i
// counted from the block's first column and row.
typedef void (*PackAShiftFn)(int64_t mc, int64_t kc, const float* a, int64_t rs, int64_t cs, const float* kShift,
                             const float* laneShift, float* dst);
// As PackBFn with shift[j] subtracted from element (p, j), j counted from the block's first column.
typedef void (*PackBShiftFn)(int64_t kc, int64_t nc, const float* b, int64_t rs, int64_t cs, const float* shift,
                             float* dst);

struct KernelSet {
  const char* name;
  int mr, nr;          // micro-tile
  int64_t kc, mc, nc;  // cache blocking (mc multiple of mr, nc multiple of nr)
  MicroKernelFn kernel;
  // Optional short-edge kernels: kernelRows[r] computes an r x NR tile (1 <= r <= mr) straight into
  // C; a null entry means the driver computes the full tile into a buffer and copies r rows.
  MicroKernelFn kernelRows[17];
  PackAFn packA;
  PackBFn packB;
  // Shifted packing, or null where the set has none (the fp32 sets).
  PackAShiftFn packAShift;
  PackBShiftFn packBShift;
  // k elements per packed 32-bit slot: 0 or 1 for fp32 panels, 2 for bf16 pairs (a kc-deep sliver
  // then holds ceil(kc/2) groups of MR or NR slots; see gemm_bf16.h).
  int kpack;
};

// Per-ISA kernel sets (defined in generic/gemm_generic.cc, avx2/gemm_avx2.cc, avx512/gemm_avx512.cc).
// Only call the AVX ones after activeIsa() says the CPU has them.
void genericKernelSet(KernelSet* ks);
void avx2KernelSet(KernelSet* ks);
void avx512KernelSet(KernelSet* ks);
// bf16 operands, fp32 accumulation (avx512bf16/gemm_bf16_avx512.cc): only when bf16Available().
void avx512Bf16KernelSet(KernelSet* ks);

}  // namespace gemmk
}  // namespace moelab

// Portable packing templates, shared by the generic and AVX-512 files (each TU gets its own copy:
// they live in an anonymous namespace, so no cross-ISA ODR merging can happen).
namespace {

template <int MR>
inline void gemmPackAPortable(int64_t mc, int64_t kc, const float* a, int64_t rs, int64_t cs, float* dst) {
  for (int64_t i0 = 0; i0 < mc; i0 += MR) {
    const int64_t mr = mc - i0 < MR ? mc - i0 : MR;
    float* d = dst + i0 * kc;
    const float* s = a + i0 * rs;
    if (rs == 1) {  // op(A) columns contiguous: copy MR floats per step
      for (int64_t p = 0; p < kc; p++) {
        const float* sp = s + p * cs;
        for (int64_t r = 0; r < mr; r++) d[p * MR + r] = sp[r];
        for (int64_t r = mr; r < MR; r++) d[p * MR + r] = 0.f;
      }
    } else {
      for (int64_t r = 0; r < mr; r++) {
        const float* sr = s + r * rs;
        for (int64_t p = 0; p < kc; p++) d[p * MR + r] = sr[p * cs];
      }
      for (int64_t r = mr; r < MR; r++)
        for (int64_t p = 0; p < kc; p++) d[p * MR + r] = 0.f;
    }
  }
}

template <int NR>
inline void gemmPackBPortable(int64_t kc, int64_t nc, const float* b, int64_t rs, int64_t cs, float* dst) {
  for (int64_t j0 = 0; j0 < nc; j0 += NR) {
    const int64_t nr = nc - j0 < NR ? nc - j0 : NR;
    float* d = dst + j0 * kc;
    const float* s = b + j0 * cs;
    if (cs == 1) {  // op(B) rows contiguous
      if (nr == NR) {
        for (int64_t p = 0; p < kc; p++)
          for (int j = 0; j < NR; j++) d[p * NR + j] = s[p * rs + j];
      } else {
        for (int64_t p = 0; p < kc; p++) {
          for (int64_t j = 0; j < nr; j++) d[p * NR + j] = s[p * rs + j];
          for (int64_t j = nr; j < NR; j++) d[p * NR + j] = 0.f;
        }
      }
    } else {
      for (int64_t j = 0; j < nr; j++) {
        const float* sj = s + j * cs;
        for (int64_t p = 0; p < kc; p++) d[p * NR + j] = sj[p * rs];
      }
      for (int64_t j = nr; j < NR; j++)
        for (int64_t p = 0; p < kc; p++) d[p * NR + j] = 0.f;
    }
  }
}

}  // namespace
