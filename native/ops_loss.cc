// Fused softmax cross-entropy over logits [rows, V] with int32 targets (t < 0: ignored row).
// Targets are range-checked before any output is written.
#include <algorithm>
#include <cmath>
#include <string>

#include "args.h"
#include "ops_simd.h"
#include "registry.h"
#include "threadpool.h"

namespace moelab {

namespace simd {
namespace generic {

void crossEntropyRows(const float* logits, const int32_t* targets, float* losses, float* lse, int64_t rows,
                      int64_t V) {
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = logits + r * V;
    float m = -INFINITY;
    for (int64_t j = 0; j < V; j++) m = xr[j] > m ? xr[j] : m;
    double s = 0;
    for (int64_t j = 0; j < V; j++) s += std::exp((double)xr[j] - m);
    const double l = (double)m + std::log(s);
    lse[r] = (float)l;
    losses[r] = targets[r] < 0 ? 0.0f : (float)(l - (double)xr[targets[r]]);
  }
}

void crossEntropyBackwardRows(const float* logits, const int32_t* targets, const float* lse, const float* gLoss,
                              float* glogits, int64_t rows, int64_t V) {
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = logits + r * V;
    float* gr = glogits + r * V;
    const int32_t t = targets[r];
    const double g = gLoss[r], l = lse[r];
    for (int64_t j = 0; j < V; j++) gr[j] = t < 0 ? 0.0f : (float)(g * std::exp((double)xr[j] - l));
    if (t >= 0) gr[t] = (float)(g * std::expm1((double)xr[t] - l));
  }
}

}  // namespace generic
}  // namespace simd

namespace {

using namespace ops;

// Arguments 0..3 shared by crossEntropy and crossEntropyBackward: (rows, V, logits [rows, V],
// targets [rows] with every target < V; negative targets mark ignored rows).
struct CeArgs {
  int64_t rows, V, total;
  Span<float> logits;
  Span<int32_t> targets;
};

CeArgs ceArgs(const Napi::CallbackInfo& info, const char* fn, size_t nargs) {
  needArgs(info, nargs, fn);
  Napi::Env env = info.Env();
  CeArgs A;
  A.rows = dimArg(info, 0, fn, "rows");
  A.V = dimArg(info, 1, fn, "V");
  A.logits = f32Arg(info, 2, fn, "logits");
  A.targets = i32Arg(info, 3, fn, "targets");
  A.total = checkedMul(env, fn, A.rows, A.V);
  needLen(env, A.logits, A.total, fn, "logits");
  needLen(env, A.targets, A.rows, fn, "targets");
  const int32_t* t = A.targets.data;
  for (int64_t r = 0; r < A.rows; r++)
    if (t[r] >= A.V)
      throwRange(env, std::string(fn) + ": target " + std::to_string(t[r]) + " at row " + std::to_string(r) +
                          " out of range [0, " + std::to_string(A.V) + ")");
  return A;
}

// crossEntropy(rows, V, logits, targets, losses, lse): losses, lse [rows] written
Napi::Value CrossEntropyNapi(const Napi::CallbackInfo& info) {
  const char* fn = "crossEntropy";
  Napi::Env env = info.Env();
  const CeArgs A = ceArgs(info, fn, 6);
  const int64_t rows = A.rows, V = A.V;
  auto losses = f32Arg(info, 4, fn, "losses");
  auto lse = f32Arg(info, 5, fn, "lse");
  needLen(env, losses, rows, fn, "losses");
  needLen(env, lse, rows, fn, "lse");
  const Span<float> lo = slice(losses, 0, rows), ls = slice(lse, 0, rows);
  for (const auto& [o, on] : {std::make_pair(lo, "losses"), std::make_pair(ls, "lse")}) {
    noOverlap(env, fn, o, on, slice(A.logits, 0, A.total), "logits");
    noOverlap(env, fn, o, on, slice(A.targets, 0, rows), "targets");
  }
  noOverlap(env, fn, lo, "losses", ls, "lse");
  const auto& K = kernels();
  parallelFor(rows, std::max<int64_t>(1, kGrainHeavy / std::max<int64_t>(V, 1)), [&](int64_t b, int64_t e) {
    K.crossEntropyRows(A.logits.data + b * V, A.targets.data + b, losses.data + b, lse.data + b, e - b, V);
  });
  return env.Undefined();
}
MOELAB_EXPORT(crossEntropy, CrossEntropyNapi);

// crossEntropyBackward(rows, V, logits, targets, lse, gLoss, glogits): glogits [rows, V] written
Napi::Value CrossEntropyBackwardNapi(const Napi::CallbackInfo& info) {
  const char* fn = "crossEntropyBackward";
  Napi::Env env = info.Env();
  const CeArgs A = ceArgs(info, fn, 7);
  const int64_t rows = A.rows, V = A.V, total = A.total;
  auto lse = f32Arg(info, 4, fn, "lse");
  auto gLoss = f32Arg(info, 5, fn, "gLoss");
  auto glogits = f32Arg(info, 6, fn, "glogits");
  needLen(env, lse, rows, fn, "lse");
  needLen(env, gLoss, rows, fn, "gLoss");
  needLen(env, glogits, total, fn, "glogits");
  const Span<float> go = slice(glogits, 0, total);
  noOverlap(env, fn, go, "glogits", slice(A.logits, 0, total), "logits");
  noOverlap(env, fn, go, "glogits", slice(A.targets, 0, rows), "targets");
  noOverlap(env, fn, go, "glogits", slice(lse, 0, rows), "lse");
  noOverlap(env, fn, go, "glogits", slice(gLoss, 0, rows), "gLoss");
  const auto& K = kernels();
  parallelFor(rows, std::max<int64_t>(1, kGrainHeavy / std::max<int64_t>(V, 1)), [&](int64_t b, int64_t e) {
    K.crossEntropyBackwardRows(A.logits.data + b * V, A.targets.data + b, lse.data + b, gLoss.data + b,
                               glogits.data + b * V, e - b, V);
  });
  return env.Undefined();
}
MOELAB_EXPORT(crossEntropyBackward, CrossEntropyBackwardNapi);

}  // namespace
}  // namespace moelab
