// Fused AdamW step (PyTorch semantics): one memory-bound pass over p, g, m, v, threaded.
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

// k: b1, 1-b1, b2, 1-b2, 1-lr*wd, lr/bc1, 1/sqrt(bc2), eps
void adamw(float* p, const float* g, float* m, float* v, int64_t n, const float* k) {
  for (int64_t i = 0; i < n; i++) {
    const float mi = k[0] * m[i] + k[1] * g[i];
    const float vi = k[2] * v[i] + k[3] * (g[i] * g[i]);
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * k[4] - (k[5] * mi) / (std::sqrt(vi) * k[6] + k[7]);
  }
}

}  // namespace generic
}  // namespace simd

namespace {

using namespace ops;

Napi::Value AdamwNapi(const Napi::CallbackInfo& info) {
  const char* fn = "adamw";
  needArgs(info, 11, fn);
  Napi::Env env = info.Env();
  auto p = f32Arg(info, 0, fn, "p");
  auto g = f32Arg(info, 1, fn, "g");
  auto m = f32Arg(info, 2, fn, "m");
  auto v = f32Arg(info, 3, fn, "v");
  const double lr = finiteArg(info, 4, fn, "lr"), beta1 = finiteArg(info, 5, fn, "beta1"),
               beta2 = finiteArg(info, 6, fn, "beta2"), eps = finiteArg(info, 7, fn, "eps"),
               wd = finiteArg(info, 8, fn, "wd"), bc1 = finiteArg(info, 9, fn, "bc1"),
               bc2 = finiteArg(info, 10, fn, "bc2");
  if (!(bc1 > 0 && bc2 > 0)) throwRange(env, "adamw: bias corrections bc1, bc2 must be > 0");
  const int64_t n = (int64_t)p.length;
  needLen(env, g, n, fn, "g");
  needLen(env, m, n, fn, "m");
  needLen(env, v, n, fn, "v");
  const float* arrs[4] = {p.data, g.data, m.data, v.data};
  const char* names[4] = {"p", "g", "m", "v"};
  for (int i = 0; i < 4; i++)
    for (int j = i + 1; j < 4; j++) noOverlap(env, fn, region(arrs[i], 0, n), names[i], region(arrs[j], 0, n), names[j]);
  const float k[8] = {(float)beta1,           (float)(1.0 - beta1), (float)beta2, (float)(1.0 - beta2),
                      (float)(1.0 - lr * wd), (float)(lr / bc1),    (float)(1.0 / std::sqrt(bc2)), (float)eps};
  const auto& K = kernels();
  parallelFor(n, 2 * kGrainCheap, [&](int64_t b, int64_t e) {
    K.adamw(p.data + b, g.data + b, m.data + b, v.data + b, e - b, k);
  });
  return env.Undefined();
}
MOELAB_EXPORT(adamw, AdamwNapi);

}  // namespace
}  // namespace moelab
