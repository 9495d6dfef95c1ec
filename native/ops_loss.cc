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

void checkTargets(const Napi::Env& env, const int32_t* t, int64_t rows, int64_t V, const char* fn) {
  for (int64_t r = 0; r < rows; r++)
    if (t[r] >= V)
      throwRange(env, std::string(fn) + ": target " + std::to_string(t[r]) + " at row " + std::to_string(r) +
                          " out of range [0, " + std::to_string(V) + ")");
}

Napi::Value CrossEntropyNapi(const Napi::CallbackInfo& info) {
  const char* fn = "crossEntropy";
  needArgs(info, 6, fn);
  Napi::Env env = info.Env();
  int64_t rows = dimArg(info, 0, fn, "rows"), V = dimArg(info, 1, fn, "V");
  auto logits = f32Arg(info, 2, fn, "logits");
  auto targets = i32Arg(info, 3, fn, "targets");
  auto losses = f32Arg(info, 4, fn, "losses");
  auto lse = f32Arg(info, 5, fn, "lse");
  const int64_t total = checkedMul(env, fn, rows, V);
  needLen(env, logits, total, fn, "logits");
  needLen(env, targets, rows, fn, "targets");
  needLen(env, losses, rows, fn, "losses");
  needLen(env, lse, rows, fn, "lse");
  noOverlap(env, fn, region(losses.data, 0, rows), "losses", region(logits.data, 0, total), "logits");
  noOverlap(env, fn, region(lse.data, 0, rows), "lse", region(logits.data, 0, total), "logits");
  noOverlap(env, fn, region(losses.data, 0, rows), "losses", region(lse.data, 0, rows), "lse");
  noOverlap(env, fn, region(losses.data, 0, rows), "losses", region(targets.data, 0, rows), "targets");
  noOverlap(env, fn, region(lse.data, 0, rows), "lse", region(targets.data, 0, rows), "targets");
  checkTargets(env, targets.data, rows, V, fn);
  const auto& K = kernels();
  parallelFor(rows, std::max<int64_t>(1, kGrainHeavy / std::max<int64_t>(V, 1)), [&](int64_t b, int64_t e) {
    K.crossEntropyRows(logits.data + b * V, targets.data + b, losses.data + b, lse.data + b, e - b, V);
  });
  return env.Undefined();
}
MOELAB_EXPORT(crossEntropy, CrossEntropyNapi);

Napi::Value CrossEntropyBackwardNapi(const Napi::CallbackInfo& info) {
  const char* fn = "crossEntropyBackward";
  needArgs(info, 7, fn);
  Napi::Env env = info.Env();
  int64_t rows = dimArg(info, 0, fn, "rows"), V = dimArg(info, 1, fn, "V");
  auto logits = f32Arg(info, 2, fn, "logits");
  auto targets = i32Arg(info, 3, fn, "targets");
  auto lse = f32Arg(info, 4, fn, "lse");
  auto gLoss = f32Arg(info, 5, fn, "gLoss");
  auto glogits = f32Arg(info, 6, fn, "glogits");
  const int64_t total = checkedMul(env, fn, rows, V);
  needLen(env, logits, total, fn, "logits");
  needLen(env, targets, rows, fn, "targets");
  needLen(env, lse, rows, fn, "lse");
  needLen(env, gLoss, rows, fn, "gLoss");
  needLen(env, glogits, total, fn, "glogits");
  noOverlap(env, fn, region(glogits.data, 0, total), "glogits", region(logits.data, 0, total), "logits");
  noOverlap(env, fn, region(glogits.data, 0, total), "glogits", region(targets.data, 0, rows), "targets");
  noOverlap(env, fn, region(glogits.data, 0, total), "glogits", region(lse.data, 0, rows), "lse");
  noOverlap(env, fn, region(glogits.data, 0, total), "glogits", region(gLoss.data, 0, rows), "gLoss");
  checkTargets(env, targets.data, rows, V, fn);
  const auto& K = kernels();
  parallelFor(rows, std::max<int64_t>(1, kGrainHeavy / std::max<int64_t>(V, 1)), [&](int64_t b, int64_t e) {
    K.crossEntropyBackwardRows(logits.data + b * V, targets.data + b, lse.data + b, gLoss.data + b,
                               glogits.data + b * V, e - b, V);
  });
  return env.Undefined();
}
MOELAB_EXPORT(crossEntropyBackward, CrossEntropyBackwardNapi);

}  // namespace
}  // namespace moelab
