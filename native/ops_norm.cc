// LayerNorm forward and backward over the last axis of [rows, d]. Row statistics are accumulated
// in double; the backward's gw/gb reductions over rows use per-thread double partials combined in
// thread order (deterministic for a given thread count).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "args.h"
#include "ops_simd.h"
#include "registry.h"
#include "threadpool.h"

namespace moelab {

namespace simd {
namespace generic {

void layerNormRows(const float* x, const float* w, const float* b, float* y, float* mean, float* rstd, int64_t rows,
                   int64_t d, float eps) {
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    double s = 0;
    for (int64_t j = 0; j < d; j++) s += xr[j];
    const double mu = s / (double)d;
    double v = 0;
    for (int64_t j = 0; j < d; j++) v += ((double)xr[j] - mu) * ((double)xr[j] - mu);
    const double rs = 1.0 / std::sqrt(v / (double)d + (double)eps);
    const float mf = (float)mu, rf = (float)rs;
    for (int64_t j = 0; j < d; j++) yr[j] = (xr[j] - mf) * rf * w[j] + b[j];
    mean[r] = mf;
    rstd[r] = rf;
  }
}

void layerNormBackwardRows(const float* x, const float* w, const float* mean, const float* rstd, const float* gy,
                           float* gx, double* gwAcc, double* gbAcc, float* /*scratch*/, int64_t rows, int64_t d) {
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * d, *gr = gy + r * d;
    float* outr = gx + r * d;
    const float mu = mean[r], rs = rstd[r];
    double sg = 0, sgx = 0;
    for (int64_t j = 0; j < d; j++) {
      const float xh = (xr[j] - mu) * rs, g = gr[j] * w[j];
      outr[j] = g;
      sg += g;
      sgx += (double)g * xh;
      gwAcc[j] += (double)gr[j] * xh;
      gbAcc[j] += gr[j];
    }
    const float mg = (float)(sg / (double)d), mgx = (float)(sgx / (double)d);
    for (int64_t j = 0; j < d; j++) {
      const float xh = (xr[j] - mu) * rs;
      outr[j] = rs * (outr[j] - mg - xh * mgx);
    }
  }
}

}  // namespace generic
}  // namespace simd

namespace {

using namespace ops;

// layerNorm(rows, d, eps, x, w, b, y, mean, rstd): y, mean, rstd written
Napi::Value LayerNormNapi(const Napi::CallbackInfo& info) {
  const char* fn = "layerNorm";
  needArgs(info, 9, fn);
  Napi::Env env = info.Env();
  int64_t rows = dimArg(info, 0, fn, "rows"), d = dimArg(info, 1, fn, "d");
  float eps = (float)finiteArg(info, 2, fn, "eps");
  const int64_t total = checkedMul(env, fn, rows, d);
  const char* names[] = {"x", "w", "b", "y", "mean", "rstd"};
  Span<float> arr[6];
  f32Args(info, 3, fn, names, {total, d, d, total, rows, rows}, arr);
  writtenApart(env, fn, arr, names, 6, 3);
  const Span<float> x = arr[0], w = arr[1], b = arr[2], y = arr[3], mean = arr[4], rstd = arr[5];
  if (rows == 0) return env.Undefined();
  const auto& K = kernels();
  parallelFor(rows, std::max<int64_t>(1, kGrainCheap / std::max<int64_t>(d, 1)), [&](int64_t r0, int64_t r1) {
    K.layerNormRows(x.data + r0 * d, w.data, b.data, y.data + r0 * d, mean.data + r0, rstd.data + r0, r1 - r0, d, eps);
  });
  return env.Undefined();
}
MOELAB_EXPORT(layerNorm, LayerNormNapi);

// layerNormBackward(rows, d, x, w, mean, rstd, gy, gx, gw, gb): gx written, gw and gb accumulate
Napi::Value LayerNormBackwardNapi(const Napi::CallbackInfo& info) {
  const char* fn = "layerNormBackward";
  needArgs(info, 10, fn);
  Napi::Env env = info.Env();
  int64_t rows = dimArg(info, 0, fn, "rows"), d = dimArg(info, 1, fn, "d");
  const int64_t total = checkedMul(env, fn, rows, d);
  const char* names[] = {"x", "w", "mean", "rstd", "gy", "gx", "gw", "gb"};
  Span<float> arr[8];
  f32Args(info, 2, fn, names, {total, d, rows, rows, total, total, d, d}, arr);
  writtenApart(env, fn, arr, names, 8, 5);
  const Span<float> x = arr[0], w = arr[1], mean = arr[2], rstd = arr[3], gy = arr[4], gx = arr[5], gw = arr[6],
                    gb = arr[7];
  if (rows == 0 || d == 0) return env.Undefined();
  const auto& K = kernels();
  // gw and gb sum over rows: per-slice partials (threadpool.h, sumSlices), so their bits do not
  // depend on the thread count
  const int S = sumSlices(rows, std::max<int64_t>(1, kGrainCheap / d));
  std::vector<double> part = scratch<double>(fn, "per-slice gw/gb sums", 2 * d * S);
  std::vector<float> rowScratch = scratch<float>(fn, "row scratch", 2 * d * S);
  forSlices(rows, S, nullptr, [&](int s, int64_t r0, int64_t r1) {
    K.layerNormBackwardRows(x.data + r0 * d, w.data, mean.data + r0, rstd.data + r0, gy.data + r0 * d,
                            gx.data + r0 * d, part.data() + 2 * d * s, part.data() + 2 * d * s + d,
                            rowScratch.data() + 2 * d * s, r1 - r0, d);
  });
  for (int64_t j = 0; j < d; j++) {
    double sw = 0, sb = 0;
    for (int s = 0; s < S; s++) {
      sw += part[2 * d * s + j];
      sb += part[2 * d * s + d + j];
    }
    gw.data[j] = (float)((double)gw.data[j] + sw);
    gb.data[j] = (float)((double)gb.data[j] + sb);
  }
  return env.Undefined();
}
MOELAB_EXPORT(layerNormBackward, LayerNormBackwardNapi);

}  // namespace
}  // namespace moelab
