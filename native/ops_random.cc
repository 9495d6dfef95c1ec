// Counter-based normal random fill for weight initialisation: element i depends only on (seed, i),
// so the fill is threaded, reproducible for any thread count, and equal to the TS reference.
#include <cmath>
#include <cstdint>

#include "args.h"
#include "ops_simd.h"
#include "registry.h"
#include "threadpool.h"

namespace moelab {
namespace {

// randn(out, seed, mean, std): out[i] = mean + std * z_i with z_i from Box-Muller on
// u1 = (h(2i) + 0.5) / 2^32, u2 = (h(2i+1) + 0.5) / 2^32, h(j) = simd::hash32(simd::hash32(j) ^ seed).
Napi::Value RandnNapi(const Napi::CallbackInfo& info) {
  const char* fn = "randn";
  needArgs(info, 4, fn);
  auto out = f32Arg(info, 0, fn, "out");
  double seedD = numArg(info, 1, fn, "seed");
  if (!(seedD >= 0 && seedD <= 4294967295.0) || seedD != std::floor(seedD)) throwRange(info.Env(), "randn: seed must be a uint32");
  const uint32_t seed = (uint32_t)seedD;
  const double mean = numArg(info, 2, fn, "mean"), sd = numArg(info, 3, fn, "std");
  if (out.length > (size_t(1) << 31)) throwRange(info.Env(), "randn: at most 2^31 elements per call");
  float* o = out.data;
  parallelFor((int64_t)out.length, 1 << 16, [&](int64_t b, int64_t e) {
    const double twoPi = 6.283185307179586, inv = 1.0 / 4294967296.0;
    for (int64_t i = b; i < e; i++) {
      const uint32_t j = (uint32_t)(2 * i);
      const double u1 = (simd::hash32(simd::hash32(j) ^ seed) + 0.5) * inv;
      const double u2 = (simd::hash32(simd::hash32(j + 1) ^ seed) + 0.5) * inv;
      o[i] = (float)(mean + sd * std::sqrt(-2.0 * std::log(u1)) * std::cos(twoPi * u2));
    }
  });
  return info.Env().Undefined();
}
MOELAB_EXPORT(randn, RandnNapi);

}  // namespace
}  // namespace moelab
