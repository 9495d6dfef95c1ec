// Portable SGEMM micro-kernel (baseline x86-64 / any CPU): a 4x8 register tile written as plain
// loops over fixed-size arrays, which the compiler keeps in vector registers (SSE2 at baseline).
#include "gemm.h"

namespace moelab {
namespace gemmk {

namespace {

constexpr int MR = 4, NR = 8;

void kernel4x8(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta,
               const float* bias) {
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; p++) {
    const float* bp = b + p * NR;
    const float* ap = a + p * MR;
    for (int r = 0; r < MR; r++) {
      const float av = ap[r];
      for (int j = 0; j < NR; j++) acc[r][j] += av * bp[j];
    }
  }
  float bv[NR];
  for (int j = 0; j < NR; j++) bv[j] = bias ? bias[j] : 0.f;
  for (int r = 0; r < MR; r++) {
    float* cr = c + r * ldc;
    if (beta == 0.f) {
      for (int j = 0; j < NR; j++) cr[j] = alpha * acc[r][j] + bv[j];
    } else if (beta == 1.f) {
      for (int j = 0; j < NR; j++) cr[j] = alpha * acc[r][j] + cr[j] + bv[j];
    } else {
      for (int j = 0; j < NR; j++) cr[j] = alpha * acc[r][j] + beta * cr[j] + bv[j];
    }
  }
}

void packA(int64_t mc, int64_t kc, const float* a, int64_t rs, int64_t cs, float* dst) {
  gemmPackAPortable<MR>(mc, kc, a, rs, cs, dst);
}
void packB(int64_t kc, int64_t nc, const float* b, int64_t rs, int64_t cs, float* dst) {
  gemmPackBPortable<NR>(kc, nc, b, rs, cs, dst);
}

}  // namespace

void genericKernelSet(KernelSet* ks) {
  ks->name = "generic";
  ks->mr = MR;
  ks->nr = NR;
  ks->kc = 256;
  ks->mc = 128;
  ks->nc = 2048;
  ks->kernel = kernel4x8;
  ks->packA = packA;
  ks->packB = packB;
}

}  // namespace gemmk
}  // namespace moelab
