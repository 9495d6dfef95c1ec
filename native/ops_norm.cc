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

Napi::Value LayerNormNapi(const Napi::CallbackInfo& info) {
  const char* fn = "layerNorm";
  needArgs(info, 9, fn);
  Napi::Env env = info.Env();
  int64_t rows = dimArg(info, 0, fn, "rows"), d = dimArg(info, 1, fn, "d");
  float eps = (float)finiteArg(info, 2, fn, "eps");
  auto x = f32Arg(info, 3, fn, "x");
  auto w = f32Arg(info, 4, fn, "w");
  auto b = f32Arg(info, 5, fn, "b");
  auto y = f32Arg(info, 6, fn, "y");
  auto mean = f32Arg(info, 7, fn, "mean");
  auto rstd = f32Arg(info, 8, fn, "rstd");
  const int64_t total = checkedMul(env, fn, rows, d);
  needLen(env, x, total, fn, "x");
  needLen(env, w, d, fn, "w");
  needLen(env, b, d, fn, "b");
  needLen(env, y, total, fn, "y");
  needLen(env, mean, rows, fn, "mean");
  needLen(env, rstd, rows, fn, "rstd");
  struct R { const float* p; int64_t n; const char* name; };
  const R ins[] = {{x.data, total, "x"}, {w.data, d, "w"}, {b.data, d, "b"}};
  const R outs[] = {{y.data, total, "y"}, {mean.data, rows, "mean"}, {rstd.data, rows, "rstd"}};
  for (int i = 0; i < 3; i++) {
    for (const R& in : ins) noOverlap(env, fn, region(outs[i].p, 0, outs[i].n), outs[i].name, region(in.p, 0, in.n), in.name);
    for (int j = i + 1; j < 3; j++)
      noOverlap(env, fn, region(outs[i].p, 0, outs[i].n), outs[i].name, region(outs[j].p, 0, outs[j].n), outs[j].name);
  }
  if (rows == 0) return env.Undefined();
  const auto& K = kernels();
  parallelFor(rows, std::max<int64_t>(1, kGrainCheap / std::max<int64_t>(d, 1)), [&](int64_t r0, int64_t r1) {
    K.layerNormRows(x.data + r0 * d, w.data, b.data, y.data + r0 * d, mean.data + r0, rstd.data + r0, r1 - r0, d, eps);
  });
  return env.Undefined();
}
MOELAB_EXPORT(layerNorm, LayerNormNapi);

Napi::Value LayerNormBackwardNapi(const Napi::CallbackInfo& info) {
  const char* fn = "layerNormBackward";
  needArgs(info, 10, fn);
  Napi::Env env = info.Env();
  int64_t rows = dimArg(info, 0, fn, "rows"), d = dimArg(info, 1, fn, "d");
  auto x = f32Arg(info, 2, fn, "x");
  auto w = f32Arg(info, 3, fn, "w");
  auto mean = f32Arg(info, 4, fn, "mean");
  auto rstd = f32Arg(info, 5, fn, "rstd");
  auto gy = f32Arg(info, 6, fn, "gy");
  auto gx = f32Arg(info, 7, fn, "gx");
  auto gw = f32Arg(info, 8, fn, "gw");
  auto gb = f32Arg(info, 9, fn, "gb");
  const int64_t total = checkedMul(env, fn, rows, d);
  needLen(env, x, total, fn, "x");
  needLen(env, w, d, fn, "w");
  needLen(env, mean, rows, fn, "mean");
  needLen(env, rstd, rows, fn, "rstd");
  needLen(env, gy, total, fn, "gy");
  needLen(env, gx, total, fn, "gx");
  needLen(env, gw, d, fn, "gw");
  needLen(env, gb, d, fn, "gb");
  struct R { const float* p; int64_t n; const char* name; };
  const R ins[] = {{x.data, total, "x"}, {w.data, d, "w"}, {mean.data, rows, "mean"}, {rstd.data, rows, "rstd"},
                   {gy.data, total, "gy"}};
  const R outs[] = {{gx.data, total, "gx"}, {gw.data, d, "gw"}, {gb.data, d, "gb"}};
  for (int i = 0; i < 3; i++) {
    for (const R& in : ins) noOverlap(env, fn, region(outs[i].p, 0, outs[i].n), outs[i].name, region(in.p, 0, in.n), in.name);
    for (int j = i + 1; j < 3; j++)
      noOverlap(env, fn, region(outs[i].p, 0, outs[i].n), outs[i].name, region(outs[j].p, 0, outs[j].n), outs[j].name);
  }
  if (rows == 0 || d == 0) return env.Undefined();
  const auto& K = kernels();
  const int64_t want = std::min<int64_t>({(int64_t)threads(), rows, std::max<int64_t>(1, total / kGrainCheap)});
  const int nt = (int)std::max<int64_t>(1, want);
  std::vector<double> part = scratch<double>(fn, "per-thread gw/gb sums", 2 * d * nt);
  std::vector<float> rowScratch = scratch<float>(fn, "row scratch", 2 * d * nt);
  parallelRun(nt, [&](int t, int ntt) {
    const int64_t r0 = rows * t / ntt, r1 = rows * (t + 1) / ntt;
    if (r0 < r1)
      K.layerNormBackwardRows(x.data + r0 * d, w.data, mean.data + r0, rstd.data + r0, gy.data + r0 * d,
                              gx.data + r0 * d, part.data() + 2 * d * t, part.data() + 2 * d * t + d,
                              rowScratch.data() + 2 * d * t, r1 - r0, d);
  });
  for (int64_t j = 0; j < d; j++) {
    double sw = 0, sb = 0;
    for (int t = 0; t < nt; t++) {
      sw += part[2 * d * t + j];
      sb += part[2 * d * t + d + j];
    }
    gw.data[j] = (float)((double)gw.data[j] + sw);
    gb.data[j] = (float)((double)gb.data[j] + sb);
  }
  return env.Undefined();
}
MOELAB_EXPORT(layerNormBackward, LayerNormBackwardNapi);

}  // namespace
}  // namespace moelab
