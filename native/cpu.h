// Run-time CPU feature detection. One build runs on any x86-64: ISA-specific kernels are chosen
// here, from cpuid (and the OS's xgetbv state), never at compile time. MOELAB_ISA=generic|avx2|avx512
// forces a lower tier, so tests can exercise every path on one machine.
#pragma once

namespace moelab {

enum class Isa { Generic = 0, Avx2 = 1, Avx512 = 2 };

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false, avx512f = false, avx512bw = false, avx512dq = false,
       avx512vl = false;
  bool avx512bf16 = false;  // vdpbf16ps / vcvtne2ps2bf16 (cpuid leaf 7 subleaf 1, eax bit 5)
};

const CpuFeatures& cpuFeatures();
Isa activeIsa();          // best tier the CPU supports, lowered by MOELAB_ISA
const char* isaName(Isa);
// bf16 GEMMs may run: the CPU has AVX512_BF16 and the active tier is avx512 (MOELAB_ISA=avx2 or
// generic turns it off, which is how tests reach the "no bf16" path on a bf16 machine).
bool bf16Available();

}  // namespace moelab
