// Packing of fp32 operands into the bf16 pair panels of the AVX512_BF16 GEMM (layout in
// gemm_bf16.h). Defined in pack_bf16_avx512.cc (compiled with -mavx512bf16): call only through the
// bf16 kernel set, after the cpuid check.
#pragma once
#include <cstdint>

namespace moelab {
namespace gemmk {

// op(A)(i,p) = a[i*rs + p*cs], an mc x kc block -> 12-row slivers of ceil(kc/2) pairs.
void packABf16(int64_t mc, int64_t kc, const float* a, int64_t rs, int64_t cs, float* dst);
// op(B)(p,j) = b[p*rs + j*cs], a kc x nc block -> 32-column slivers of ceil(kc/2) pairs.
void packBBf16(int64_t kc, int64_t nc, const float* b, int64_t rs, int64_t cs, float* dst);
// The same with shifts subtracted from each element before it is rounded: kShift[p] and/or
// laneShift[i] for A (either may be null), shift[j] for B.
void packABf16Shift(int64_t mc, int64_t kc, const float* a, int64_t rs, int64_t cs, const float* kShift,
                    const float* laneShift, float* dst);
void packBBf16Shift(int64_t kc, int64_t nc, const float* b, int64_t rs, int64_t cs, const float* shift, float* dst);

}  // namespace gemmk
}  // namespace moelab
