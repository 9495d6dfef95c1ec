// Run-time CPU feature detection. One build runs on any x86-64: ISA-specific kernels are chosen
// here, from cpuid (and the OS's xgetbv state), never at compile time. MOELAB_ISA=generic|avx2|avx512
// forces a lower tier, so tests can exercise every path on one machine.
#pragma once

namespace moelab {

enum class Isa { Generic = 0, Avx2 = 1, Avx512 = 2 };

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false, avx512f = false, avx512bw = false, avx512dq = false,
       avx512vl = false;
};

const CpuFeatures& cpuFeatures();
Isa activeIsa();          // best tier the CPU supports, lowered by MOELAB_ISA
const char* isaName(Isa);

}  // namespace moelab
