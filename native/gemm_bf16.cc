// bf16 entry points: the bf16 GEMM family (gemmBf16, gemmGroupedRowsBf16, gemmGroupedKBf16: the fp32
// contract with operands rounded to bf16 and fp32 accumulation, see gemm_bf16.h) and the fp32 <-> bf16
// conversions (f32ToBf16 round to nearest even, f32ToBf16Stochastic, bf16ToF32).
//
// The GEMMs reuse gemm.cc's argument checks, planner and threading (gemm_api.h) with the AVX512_BF16
// kernel set; on a CPU without those instructions (or with MOELAB_ISA below avx512) they throw a JS
// Error instead of running: emulating bf16 with fp32 FMAs does the same multiply-adds as the fp32 GEMM
// plus the widening, so it cannot be faster than fp32 (callers should use fp32 there). Products
// small enough for gemm.cc's unpacked path (under ~1k multiply-adds) run in fp32 on unrounded
// operands, which is within the same error bound. The conversions are portable and always available.
#include "gemm_bf16.h"

#include <string>

#include "args.h"
#include "cpu.h"
#include "gemm.h"
#include "gemm_api.h"
#include "ops_simd.h"
#include "registry.h"
#include "threadpool.h"

namespace moelab {

const gemmk::KernelSet* bf16KernelSet() {
  static const gemmk::KernelSet* ks = []() -> const gemmk::KernelSet* {
    if (!bf16Available()) return nullptr;
    static gemmk::KernelSet k{};
    gemmk::avx512Bf16KernelSet(&k);
    return &k;
  }();
  return ks;
}

const gemmk::KernelSet& needBf16(const Napi::Env& env, const char* fn) {
  const gemmk::KernelSet* ks = bf16KernelSet();
  if (!ks) {
    const bool hw = cpuFeatures().avx512bf16;
    throw Napi::Error::New(env, std::string(fn) + ": bf16 kernels need a CPU with AVX512_BF16 instructions and the avx512 " +
                                    "tier; " + (hw ? "this CPU has them, but MOELAB_ISA lowered the tier to " + std::string(isaName(activeIsa()))
                                                   : std::string("this CPU does not have them")) +
                                    ". Use fp32 (train.precision \"fp32\") here");
  }
  return *ks;
}

namespace {

constexpr int64_t kGrainConvert = 1 << 15;

Napi::Value GemmBf16Napi(const Napi::CallbackInfo& info) {
  return gemmBody(info, "gemmBf16", &needBf16(info.Env(), "gemmBf16"));
}
MOELAB_EXPORT(gemmBf16, GemmBf16Napi);

Napi::Value GemmUnaryBf16Napi(const Napi::CallbackInfo& info) {
  return gemmUnaryBody(info, "gemmUnaryBf16", &needBf16(info.Env(), "gemmUnaryBf16"));
}
MOELAB_EXPORT(gemmUnaryBf16, GemmUnaryBf16Napi);

Napi::Value GemmGroupedRowsBf16Napi(const Napi::CallbackInfo& info) {
  return gemmGroupedRowsBody(info, "gemmGroupedRowsBf16", &needBf16(info.Env(), "gemmGroupedRowsBf16"));
}
MOELAB_EXPORT(gemmGroupedRowsBf16, GemmGroupedRowsBf16Napi);

Napi::Value GemmGroupedKBf16Napi(const Napi::CallbackInfo& info) {
  return gemmGroupedKBody(info, "gemmGroupedKBf16", &needBf16(info.Env(), "gemmGroupedKBf16"));
}
MOELAB_EXPORT(gemmGroupedKBf16, GemmGroupedKBf16Napi);

// f32ToBf16(x, out): out[i] = bf16 bits of x[i], round to nearest even, i < out.length
Napi::Value F32ToBf16Napi(const Napi::CallbackInfo& info) {
  const char* fn = "f32ToBf16";
  Napi::Env env = info.Env();
  needArgs(info, 2, fn);
  auto x = f32Arg(info, 0, fn, "x");
  auto out = u16Arg(info, 1, fn, "out");
  const int64_t n = (int64_t)out.length;
  needLen(env, x, n, fn, "x");
  noOverlap(env, fn, slice(x, 0, n), "x", out, "out");
  parallelFor(n, kGrainConvert, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) out.data[i] = bf16RoundNearest(x.data[i]);
  });
  return env.Undefined();
}
MOELAB_EXPORT(f32ToBf16, F32ToBf16Napi);

// f32ToBf16Stochastic(x, seed, out): stochastic rounding with r_i = lowbias32(lowbias32(i) ^ seed)
Napi::Value F32ToBf16StochasticNapi(const Napi::CallbackInfo& info) {
  const char* fn = "f32ToBf16Stochastic";
  Napi::Env env = info.Env();
  needArgs(info, 3, fn);
  auto x = f32Arg(info, 0, fn, "x");
  const double sd = numArg(info, 1, fn, "seed");
  if (!(sd >= 0 && sd < 4294967296.0 && sd == (double)(uint64_t)sd))
    throwRange(env, std::string(fn) + ": seed must be an integer in [0, 2^32)");
  auto out = u16Arg(info, 2, fn, "out");
  const int64_t n = (int64_t)out.length;
  if (n > (int64_t(1) << 32)) throwRange(env, std::string(fn) + ": at most 2^32 elements (the counter is 32-bit)");
  needLen(env, x, n, fn, "x");
  noOverlap(env, fn, slice(x, 0, n), "x", out, "out");
  const uint32_t seed = (uint32_t)sd;
  parallelFor(n, kGrainConvert, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++)
      out.data[i] = bf16RoundStochastic(x.data[i], simd::hash32(simd::hash32((uint32_t)i) ^ seed));
  });
  return env.Undefined();
}
MOELAB_EXPORT(f32ToBf16Stochastic, F32ToBf16StochasticNapi);

// bf16ToF32(x, out): out[i] = x[i] widened (exact), i < out.length
Napi::Value Bf16ToF32Napi(const Napi::CallbackInfo& info) {
  const char* fn = "bf16ToF32";
  Napi::Env env = info.Env();
  needArgs(info, 2, fn);
  auto x = u16Arg(info, 0, fn, "x");
  auto out = f32Arg(info, 1, fn, "out");
  const int64_t n = (int64_t)out.length;
  needLen(env, x, n, fn, "x");
  noOverlap(env, fn, slice(x, 0, n), "x", out, "out");
  parallelFor(n, kGrainConvert, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) out.data[i] = bf16ToFloat(x.data[i]);
  });
  return env.Undefined();
}
MOELAB_EXPORT(bf16ToF32, Bf16ToF32Napi);

}  // namespace
}  // namespace moelab
