// Row-level kernels behind the elementwise / reduce / norm / loss / optimizer entry points.
//
// Part 1 (always): plain function declarations, implemented twice with identical signatures:
//   simd::avx2::*  in native/avx2/ops_avx2.cc (compiled with -mavx2 -mfma; reached only after a
//                  cpuid check), and simd::generic::* in the baseline ops_*.cc files. On AVX-512
//                  CPUs simd::avx512::overrideTable swaps in the AVX-512 versions it has.
//   The baseline N-API code validates, splits work across threads and calls through OpsTable.
// Part 2 (baseline files only, not the ISA TUs): shared argument-validation helpers, defined in
//   ops_elementwise.cc. The ISA TUs define MOELAB_AVX2_TU so they see no N-API or STL code.
#pragma once
#include <cstdint>

#include "op_codes.h"

namespace moelab {
namespace simd {

// Every function processes exactly the elements/rows it is given; none of them allocate, throw
// or start threads. x/y "may be null" where an op does not read them.
struct OpsTable {
  // elementwise. binary: a and b advance by sa, sb in {0, 1} elements (0 broadcasts one value).
  void (*binary)(BinaryOp op, const float* a, int64_t sa, const float* b, int64_t sb, float* out, int64_t n);
  void (*unary)(UnaryOp op, const float* x, float* y, int64_t n);
  void (*unaryBackward)(UnaryOp op, const float* x, const float* y, const float* gy, float* gx, int64_t n);
  void (*axpy)(float alpha, const float* x, float* y, int64_t n);
  void (*fill)(float* x, float v, int64_t n);
  double (*sumSquares)(const float* x, int64_t n);
  void (*maskedFill)(const float* x, const uint8_t* mask, float v, float* out, int64_t n);
  // keep element i (global index start+i) iff hash >= thr (thr in [0, 2^32]); out = keep ? x*scale : 0
  void (*dropout)(uint64_t thr, float scale, uint32_t seed, uint32_t start, const float* x, float* out,
                  uint8_t* mask, int64_t n);
  // reductions
  double (*sum)(const float* x, int64_t n);                 // sum in double
  void (*colSum)(double* acc, const float* x, int64_t n);   // acc[j] += x[j]
  // best[j], arg[j] <- (x[j], i) where x[j] > best[j] or x[j] is the first NaN
  void (*colMax)(float* best, int32_t* arg, const float* x, int64_t n, int32_t i);
  int64_t (*argmax)(const float* x, int64_t n, float* maxOut);  // n >= 1; first max, NaN largest
  void (*softmaxRows)(const float* x, float* y, int64_t rows, int64_t n, bool log);
  void (*softmaxBackwardRows)(const float* y, const float* gy, float* gx, int64_t rows, int64_t n, bool log);
  // fused layers; targets are already range-checked
  void (*crossEntropyRows)(const float* logits, const int32_t* targets, float* losses, float* lse, int64_t rows,
                           int64_t V);
  void (*crossEntropyBackwardRows)(const float* logits, const int32_t* targets, const float* lse,
                                   const float* gLoss, float* glogits, int64_t rows, int64_t V);
  void (*layerNormRows)(const float* x, const float* w, const float* b, float* y, float* mean, float* rstd,
                        int64_t rows, int64_t d, float eps);
  // gwAcc/gbAcc [d] (double) receive sum_r gy*xhat and sum_r gy; scratch holds 2*d floats
  void (*layerNormBackwardRows)(const float* x, const float* w, const float* mean, const float* rstd,
                                const float* gy, float* gx, double* gwAcc, double* gbAcc, float* scratch,
                                int64_t rows, int64_t d);
  // constants: b1, 1-b1, b2, 1-b2, 1-lr*wd, lr/bc1, 1/sqrt(bc2), eps
  void (*adamw)(float* p, const float* g, float* m, float* v, int64_t n, const float* k);
  // acc[j] += sum_{i < rows} x[i*ld + j] for j < n (column sums, double accumulators)
  void (*colSumRows)(double* acc, const float* x, int64_t ld, int64_t rows, int64_t n);
  // dst[i*ds + j] = src[i + j*ss] for i < R, j < C (a transposing tile copy)
  void (*transpose)(const float* src, int64_t ss, float* dst, int64_t ds, int64_t R, int64_t C);
  // sum_i a[i] b[i] in fp32 over several partial sums
  float (*dot)(const float* a, const float* b, int64_t n);
};

namespace avx2 {
extern const OpsTable table;
}
namespace avx512 {
// Replaces the entries of t (the AVX2 table) that have AVX-512 versions (native/avx512/ops_avx512.cc).
void overrideTable(OpsTable* t);
}
namespace generic {
extern const OpsTable table;
// pieces of the generic table, defined in the baseline file that owns each group
void binary(BinaryOp op, const float* a, int64_t sa, const float* b, int64_t sb, float* out, int64_t n);
void unary(UnaryOp op, const float* x, float* y, int64_t n);
void unaryBackward(UnaryOp op, const float* x, const float* y, const float* gy, float* gx, int64_t n);
void axpy(float alpha, const float* x, float* y, int64_t n);
void fill(float* x, float v, int64_t n);
double sumSquares(const float* x, int64_t n);
float dot(const float* a, const float* b, int64_t n);
void maskedFill(const float* x, const uint8_t* mask, float v, float* out, int64_t n);
void dropout(uint64_t thr, float scale, uint32_t seed, uint32_t start, const float* x, float* out, uint8_t* mask,
             int64_t n);
double sum(const float* x, int64_t n);
void colSum(double* acc, const float* x, int64_t n);
void colMax(float* best, int32_t* arg, const float* x, int64_t n, int32_t i);
int64_t argmax(const float* x, int64_t n, float* maxOut);
void softmaxRows(const float* x, float* y, int64_t rows, int64_t n, bool log);
void softmaxBackwardRows(const float* y, const float* gy, float* gx, int64_t rows, int64_t n, bool log);
void crossEntropyRows(const float* logits, const int32_t* targets, float* losses, float* lse, int64_t rows, int64_t V);
void crossEntropyBackwardRows(const float* logits, const int32_t* targets, const float* lse, const float* gLoss,
                              float* glogits, int64_t rows, int64_t V);
void layerNormRows(const float* x, const float* w, const float* b, float* y, float* mean, float* rstd, int64_t rows,
                   int64_t d, float eps);
void layerNormBackwardRows(const float* x, const float* w, const float* mean, const float* rstd, const float* gy,
                           float* gx, double* gwAcc, double* gbAcc, float* scratch, int64_t rows, int64_t d);
void adamw(float* p, const float* g, float* m, float* v, int64_t n, const float* k);
void colSumRows(double* acc, const float* x, int64_t ld, int64_t rows, int64_t n);
void transpose(const float* src, int64_t ss, float* dst, int64_t ds, int64_t R, int64_t C);
}  // namespace generic

// lowbias32 (dropout's counter-based RNG); static so each ISA TU keeps its own copy
static inline uint32_t hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

}  // namespace simd
}  // namespace moelab

#ifndef MOELAB_AVX2_TU
#include <napi.h>
#include "args.h"

namespace moelab {
namespace ops {

// The table for this CPU (MOELAB_ISA=generic forces the portable one).
const simd::OpsTable& kernels();

constexpr int kMaxRank = 8;

// A validated strided operand: shape dims, strides, base offset, and the element range
// [lo, hi) it reaches (lo == hi when nothing is touched).
struct Layout {
  int rank = 0;
  int64_t shape[kMaxRank] = {};
  int64_t total = 1;
};
struct StridedOperand {
  int64_t offset = 0;
  int64_t strides[kMaxRank] = {};
  int64_t lo = 0, hi = 0;
};

// Reads an Int32Array shape (rank <= 8, dims >= 0; element count <= 2^53).
Layout shapeArg(const Napi::CallbackInfo& info, size_t i, const char* fn);
// Reads offset (integer >= 0) and Int32Array strides (length == rank) and checks that every
// element the layout reaches lies inside an array of `length` elements.
StridedOperand stridedArg(const Napi::CallbackInfo& info, size_t iOffset, size_t iStrides, const Layout& l,
                          int64_t length, const char* fn, const char* name, const char* offName,
                          const char* stridesName);
// True when distinct multi-indices over the layout map to distinct offsets (sufficient test:
// dims sorted by |stride|, each stride exceeds the span of the smaller ones).
bool injective(const Layout& l, const int64_t* strides);
// Elements per thread chunk: cheap memory-bound ops vs. transcendental ones.
constexpr int64_t kGrainCheap = 32768;
constexpr int64_t kGrainHeavy = 8192;

}  // namespace ops
}  // namespace moelab
#endif
