#include "cpu.h"
#include "args.h"
#include "registry.h"

#include <cpuid.h>
#include <cstdlib>
#include <cstring>

namespace moelab {

static unsigned long long xgetbv0() {
  unsigned eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return ((unsigned long long)edx << 32) | eax;
}

const CpuFeatures& cpuFeatures() {
  static CpuFeatures f = [] {
    CpuFeatures c;
    unsigned a, b, cx, d;
    if (!__get_cpuid(1, &a, &b, &cx, &d)) return c;
    bool osxsave = cx & (1u << 27);
    bool fma = cx & (1u << 12), f16c = cx & (1u << 29);
    if (!osxsave) return c;
    unsigned long long xcr = xgetbv0();
    bool ymm = (xcr & 0x6) == 0x6, zmm = (xcr & 0xe6) == 0xe6;
    if (!__get_cpuid_count(7, 0, &a, &b, &cx, &d)) return c;
    c.avx2 = ymm && (b & (1u << 5));
    c.fma = ymm && fma;
    c.f16c = ymm && f16c;
    c.avx512f = zmm && (b & (1u << 16));
    c.avx512dq = zmm && (b & (1u << 17));
    c.avx512bw = zmm && (b & (1u << 30));
    c.avx512vl = zmm && (b & (1u << 31));
    if (__get_cpuid_count(7, 1, &a, &b, &cx, &d)) c.avx512bf16 = c.avx512f && (a & (1u << 5));
    return c;
  }();
  return f;
}

Isa activeIsa() {
  static Isa isa = [] {
    const CpuFeatures& c = cpuFeatures();
    Isa best = Isa::Generic;
    if (c.avx2 && c.fma && c.f16c) best = Isa::Avx2;
    if (best == Isa::Avx2 && c.avx512f && c.avx512bw && c.avx512dq && c.avx512vl) best = Isa::Avx512;
    const char* env = std::getenv("MOELAB_ISA");
    if (env) {
      Isa want = best;
      if (!std::strcmp(env, "generic")) want = Isa::Generic;
      else if (!std::strcmp(env, "avx2")) want = Isa::Avx2;
      else if (!std::strcmp(env, "avx512")) want = Isa::Avx512;
      if ((int)want < (int)best) best = want;
    }
    return best;
  }();
  return isa;
}

bool bf16Available() { return activeIsa() == Isa::Avx512 && cpuFeatures().avx512bf16; }

const char* isaName(Isa i) {
  switch (i) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "generic";
  }
}

static Napi::Value CpuInfoNapi(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const CpuFeatures& c = cpuFeatures();
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", isaName(activeIsa()));
  o.Set("avx2", c.avx2);
  o.Set("fma", c.fma);
  o.Set("avx512f", c.avx512f);
  o.Set("bf16", bf16Available());
  return o;
}
MOELAB_EXPORT(cpuInfo, CpuInfoNapi);

}  // namespace moelab
