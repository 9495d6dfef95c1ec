// bf16 mixed precision: rounding rules and the packed layout of the bf16 GEMM.
//
// bf16 is the top half of an IEEE fp32 (1 sign, 8 exponent, 7 mantissa bits), so widening is exact
// (bits << 16) and narrowing is a rounding of the low 16 bits:
// - round to nearest even:  bits' = (u + 0x7fff + ((u >> 16) & 1)) >> 16; NaN stays a (quiet) NaN.
//   Relative error <= 2^-8 for normal values; overflow past the largest bf16 gives +-Inf.
// - stochastic rounding:    bits' = (u + r) >> 16 with r uniform in [0, 2^16): rounds up with
//   probability (distance to the lower value) / ulp, so E[round(x)] = x and many small updates to a
//   bf16 value are not all lost. r = lowbias32(lowbias32(i) ^ seed) & 0xffff for element i.
//
// The bf16 GEMM (gemm_bf16.cc) runs the fp32 driver of gemm.cc with a kernel set whose packing
// rounds operands to bf16 (round to nearest even) and stores them in pairs along k, the layout
// `vdpbf16ps` consumes (one 32-bit slot = (op(X)(.., 2q) low half, op(X)(.., 2q+1) high half)):
// - packed A: sliver s, pair q, row r at dst[s*MR*kq + q*MR + r], kq = ceil(kc/2);
// - packed B: sliver s, pair q, column j at dst[s*NR*kq + q*NR + j];
// rows/columns past the edge and the second half of a last odd pair are zero. Accumulation is fp32
// (vdpbf16ps adds both products of a pair to the fp32 accumulator), so
//   |C - A@B| <= (2 * 2^-8 + 2^-16) * sum_p |a_ip||b_pj|  +  fp32 accumulation error (~k * 2^-24 * same sum),
// the bound the tests check (each operand's rounding is <= 2^-8 relative, their product <= 2^-7 + 2^-16).
#pragma once
#include <cstdint>
#include <cstring>

namespace moelab {

// The bf16 kernel set when this CPU can run it (bf16Available()), else null.
namespace gemmk {
struct KernelSet;
}
const gemmk::KernelSet* bf16KernelSet();

}  // namespace moelab

namespace {

inline uint32_t bf16FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Round to nearest even; returns the bf16 bits.
inline uint16_t bf16RoundNearest(float f) {
  const uint32_t u = bf16FloatBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);  // NaN: keep it a quiet NaN
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// Stochastic rounding with 16 random bits r (only the low 16 bits are used).
inline uint16_t bf16RoundStochastic(float f, uint32_t r) {
  const uint32_t u = bf16FloatBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
  if ((u & 0x7f800000u) == 0x7f800000u) return (uint16_t)(u >> 16);  // +-Inf stays Inf
  return (uint16_t)((u + (r & 0xffffu)) >> 16);
}

inline float bf16ToFloat(uint16_t h) {
  const uint32_t u = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace
