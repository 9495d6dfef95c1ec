// AVX-512 row kernels for the elementwise, reduce, norm, loss and optimizer ops (see ops_simd.h):
// 16 lanes per instruction and mask registers for the tails (one masked load/store instead of a
// scalar or maskload loop). Compiled with -mavx512f/bw/dq/vl; reached only through
// simd::avx512::overrideTable after a cpuid check. ODR: intrinsics and plain C++ in an anonymous
// namespace, exported only through that function (the ISA TUs see no N-API or STL code).
//
// The vector math is the AVX2 file's (native/avx2/ops_avx2.cc), same range reductions and the same
// fitted coefficients at twice the width, so both tiers give the same results up to rounding order:
//   exp: x = n ln2 + r (Cody-Waite), e^r = 1 + r + r^2 P4(r), 2^n applied in two halves.
//   log: x = 2^e m, m in [sqrt(1/2), sqrt(2)), log(1+f) = f - f^2/2 + f^3 P7(f).
//   tanh: |x| < 0.625: x + x^3 P4(x^2); else sign(x)(1 - 2/(e^{2|x|} + 1)).
//   Phi: upper tail Q(a) = e^{-a^2/2} t R11(t), t = 1/(1 + 0.4a), a^2/2 carried as hi + lo.
// transpose (a memory-bound shuffle) keeps its AVX2 version, which this CPU runs as well.
#define MOELAB_AVX2_TU  // an ISA translation unit: no N-API, no STL (see ops_simd.h)
#include "ops_simd.h"

// GCC 12's avx512fintrin.h builds the reduce/cvt helpers on _mm512_undefined_*, which it then
// reports as "(may be) used uninitialized" in every caller (a header false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <stdint.h>

namespace moelab {
namespace simd {
namespace avx512 {
namespace {

typedef __m512 V;
typedef __mmask16 M;

// ------------------------------------------------------------------ helpers
inline V set1(float v) { return _mm512_set1_ps(v); }
inline V ld(const float* p) { return _mm512_loadu_ps(p); }
inline void st(float* p, V v) { _mm512_storeu_ps(p, v); }
inline M tailMask(int64_t r) { return (M)(r >= 16 ? 0xffffu : ((1u << r) - 1u)); }
inline V ldm(const float* p, M m) { return _mm512_maskz_loadu_ps(m, p); }
inline void stm(float* p, M m, V v) { _mm512_mask_storeu_ps(p, m, v); }
inline V sel(M m, V ifTrue, V ifFalse) { return _mm512_mask_blend_ps(m, ifFalse, ifTrue); }
inline V absv(V x) { return _mm512_abs_ps(x); }
inline M lt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
inline M ge(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
inline V zero() { return _mm512_setzero_ps(); }
inline __m512d lo8(V v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
inline __m512d hi8(V v) { return _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)); }
// acc += the 16 floats of v, in double
inline void addd(__m512d& a0, __m512d& a1, V v) {
  a0 = _mm512_add_pd(a0, lo8(v));
  a1 = _mm512_add_pd(a1, hi8(v));
}

// y[i] = f(x[i]); in-place safe
template <class F>
inline void map1(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) st(y + i, f(ld(x + i)));
  if (i < n) {
    M m = tailMask(n - i);
    stm(y + i, m, f(ldm(x + i, m)));
  }
}
template <class F>
inline void map2(const float* a, const float* b, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) st(y + i, f(ld(a + i), ld(b + i)));
  if (i < n) {
    M m = tailMask(n - i);
    stm(y + i, m, f(ldm(a + i, m), ldm(b + i, m)));
  }
}

// ------------------------------------------------------------------ vector math
const float kLog2e = 1.44269504088896341f;
const float kLn2Hi = 0.693359375f;
const float kLn2Lo = -2.12194440054690583e-4f;

inline V expCore(V r, V n) {
  V p = set1(1.390128129e-03f);
  p = _mm512_fmadd_ps(p, r, set1(8.363140615e-03f));
  p = _mm512_fmadd_ps(p, r, set1(4.166685340e-02f));
  p = _mm512_fmadd_ps(p, r, set1(1.666657732e-01f));
  p = _mm512_fmadd_ps(p, r, set1(4.999999955e-01f));
  V e = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), set1(1.0f));
  __m512i ni = _mm512_cvtps_epi32(n);
  __m512i n1 = _mm512_srai_epi32(ni, 1), n2 = _mm512_sub_epi32(ni, n1);
  V s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, _mm512_set1_epi32(127)), 23));
  V s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, _mm512_set1_epi32(127)), 23));
  return _mm512_mul_ps(_mm512_mul_ps(e, s1), s2);
}

// e^(hi + lo), |lo| << |hi|. NaN propagates; overflow -> inf, underflow -> 0.
inline V exphl(V hi, V lo) {
  hi = _mm512_max_ps(set1(-104.0f), hi);  // second operand returned for NaN: keeps NaN
  hi = _mm512_min_ps(set1(89.0f), hi);
  V n = _mm512_roundscale_ps(_mm512_mul_ps(hi, set1(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  V r = _mm512_fnmadd_ps(n, set1(kLn2Hi), hi);
  r = _mm512_fnmadd_ps(n, set1(kLn2Lo), r);
  return expCore(_mm512_add_ps(r, lo), n);
}
inline V expv(V x) { return exphl(x, zero()); }

inline V logv(V x) {
  M tiny = lt(x, set1(1.17549435e-38f));
  V xs = sel(tiny, _mm512_mul_ps(x, set1(16777216.0f)), x);  // denormals: scale by 2^24
  __m512i bits = _mm512_castps_si512(xs);
  __m512i ei = _mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(127));
  V m = _mm512_castsi512_ps(
      _mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x7fffff)), _mm512_set1_epi32(0x3f800000)));
  M big = _mm512_cmp_ps_mask(m, set1(1.41421356f), _CMP_GT_OQ);
  m = sel(big, _mm512_mul_ps(m, set1(0.5f)), m);
  V e = _mm512_add_ps(_mm512_cvtepi32_ps(ei), _mm512_maskz_mov_ps(big, set1(1.0f)));
  e = _mm512_sub_ps(e, _mm512_maskz_mov_ps(tiny, set1(24.0f)));
  V f = _mm512_sub_ps(m, set1(1.0f));
  V p = set1(-7.973883927e-02f);
  p = _mm512_fmadd_ps(p, f, set1(1.265536116e-01f));
  p = _mm512_fmadd_ps(p, f, set1(-1.298924790e-01f));
  p = _mm512_fmadd_ps(p, f, set1(1.420998594e-01f));
  p = _mm512_fmadd_ps(p, f, set1(-1.664158713e-01f));
  p = _mm512_fmadd_ps(p, f, set1(2.000119974e-01f));
  p = _mm512_fmadd_ps(p, f, set1(-2.500030380e-01f));
  p = _mm512_fmadd_ps(p, f, set1(3.333332995e-01f));
  V f2 = _mm512_mul_ps(f, f);
  V r = _mm512_fmadd_ps(_mm512_mul_ps(f2, f), p, _mm512_mul_ps(e, set1(kLn2Lo)));
  r = _mm512_fnmadd_ps(set1(0.5f), f2, r);
  V res = _mm512_fmadd_ps(e, set1(kLn2Hi), _mm512_add_ps(f, r));
  const V inf = set1(__builtin_inff());
  res = sel(_mm512_cmp_ps_mask(x, zero(), _CMP_EQ_OQ), set1(-__builtin_inff()), res);
  res = sel(_mm512_cmp_ps_mask(x, inf, _CMP_EQ_OQ), inf, res);
  res = sel(_mm512_cmp_ps_mask(x, zero(), _CMP_NGE_UQ), set1(__builtin_nanf("")), res);  // x < 0, NaN
  return res;
}

inline V tanhv(V x) {
  V ax = absv(x);
  V x2 = _mm512_mul_ps(x, x);
  V p = set1(-6.096962967e-03f);
  p = _mm512_fmadd_ps(p, x2, set1(2.099737353e-02f));
  p = _mm512_fmadd_ps(p, x2, set1(-5.385095650e-02f));
  p = _mm512_fmadd_ps(p, x2, set1(1.333277009e-01f));
  p = _mm512_fmadd_ps(p, x2, set1(-3.333332895e-01f));
  V small = _mm512_fmadd_ps(_mm512_mul_ps(x2, x), p, x);
  V e = expv(_mm512_add_ps(ax, ax));
  V big = _mm512_sub_ps(set1(1.0f), _mm512_div_ps(set1(2.0f), _mm512_add_ps(e, set1(1.0f))));
  big = _mm512_or_ps(big, _mm512_and_ps(x, set1(-0.0f)));
  return sel(lt(ax, set1(0.625f)), small, big);
}

// Logistic pieces of z: e = exp(-|z|); sigma(z) = num/(1+e), num = z >= 0 ? 1 : e; s(1-s) = e/(1+e)^2.
struct Sig {
  V e, num, inv;
};
inline Sig sigParts(V z) {
  Sig s;
  s.e = expv(_mm512_sub_ps(zero(), absv(z)));
  s.num = sel(ge(z, zero()), set1(1.0f), s.e);
  s.inv = _mm512_div_ps(set1(1.0f), _mm512_add_ps(s.e, set1(1.0f)));
  return s;
}
inline V sigmoidv(V z) {
  Sig s = sigParts(z);
  return _mm512_mul_ps(s.num, s.inv);
}

// Upper normal tail Q(a) = 0.5 erfc(a/sqrt2) for a >= 0 (NaN propagates); *E = exp(-a^2/2).
inline V normTail(V a, V* E) {
  a = _mm512_min_ps(set1(20.0f), a);
  V a2 = _mm512_mul_ps(a, a);
  V a2lo = _mm512_fmsub_ps(a, a, a2);
  V e = exphl(_mm512_mul_ps(a2, set1(-0.5f)), _mm512_mul_ps(a2lo, set1(-0.5f)));
  V t = _mm512_div_ps(set1(1.0f), _mm512_fmadd_ps(a, set1(0.4f), set1(1.0f)));
  V r = set1(-1.926144177e-02f);
  r = _mm512_fmadd_ps(r, t, set1(1.086630934e-01f));
  r = _mm512_fmadd_ps(r, t, set1(-2.334897983e-01f));
  r = _mm512_fmadd_ps(r, t, set1(1.915866630e-01f));
  r = _mm512_fmadd_ps(r, t, set1(6.463505495e-02f));
  r = _mm512_fmadd_ps(r, t, set1(-1.988190529e-01f));
  r = _mm512_fmadd_ps(r, t, set1(5.880468608e-02f));
  r = _mm512_fmadd_ps(r, t, set1(-1.483193959e-02f));
  r = _mm512_fmadd_ps(r, t, set1(9.046852819e-02f));
  r = _mm512_fmadd_ps(r, t, set1(1.330130056e-01f));
  r = _mm512_fmadd_ps(r, t, set1(1.596569622e-01f));
  r = _mm512_fmadd_ps(r, t, set1(1.595742384e-01f));
  *E = e;
  return _mm512_mul_ps(_mm512_mul_ps(e, t), r);
}
inline V normCdf(V x, V* E) {
  V q = normTail(absv(x), E);
  return sel(ge(x, zero()), _mm512_sub_ps(set1(1.0f), q), q);
}

// z = x (k2 + k2a x^2) for tanh-GELU in double, returned as hi + lo floats (see the AVX2 file).
inline void geluZ(V x, V* zh, V* zl) {
  const __m512d k2 = _mm512_set1_pd(1.5957691216057308), k2a = _mm512_set1_pd(0.07135481627159562);
  const __m512d lim = _mm512_set1_pd(200.0), nlim = _mm512_set1_pd(-200.0);
  __m512d x0 = lo8(x), x1 = hi8(x);
  __m512d z0 = _mm512_mul_pd(x0, _mm512_fmadd_pd(_mm512_mul_pd(x0, x0), k2a, k2));
  __m512d z1 = _mm512_mul_pd(x1, _mm512_fmadd_pd(_mm512_mul_pd(x1, x1), k2a, k2));
  z0 = _mm512_min_pd(lim, _mm512_max_pd(nlim, z0));
  z1 = _mm512_min_pd(lim, _mm512_max_pd(nlim, z1));
  __m256 h0 = _mm512_cvtpd_ps(z0), h1 = _mm512_cvtpd_ps(z1);
  __m256 l0 = _mm512_cvtpd_ps(_mm512_sub_pd(z0, _mm512_cvtps_pd(h0)));
  __m256 l1 = _mm512_cvtpd_ps(_mm512_sub_pd(z1, _mm512_cvtps_pd(h1)));
  *zh = _mm512_insertf32x8(_mm512_castps256_ps512(h0), h1, 1);
  *zl = _mm512_insertf32x8(_mm512_castps256_ps512(l0), l1, 1);
}
// z for tanh-GELU: float in the lanes with z >= -6, the double path above in the others. Chosen lane
// by lane, so an element's bits do not depend on which elements share its vector (the chunking of
// a threaded call); the double path runs only for vectors that have such a lane.
inline void geluZFast(V x, V* zh, V* zl) {
  V z = _mm512_mul_ps(x, _mm512_fmadd_ps(_mm512_mul_ps(x, x), set1(0.07135481627159562f), set1(1.5957691216057308f)));
  const M low = lt(z, set1(-6.0f));
  *zh = z;
  *zl = zero();
  if (low) {
    V h, l;
    geluZ(x, &h, &l);
    *zh = sel(low, h, z);
    *zl = sel(low, l, zero());
  }
}
inline Sig sigPartsHL(V zh, V zl) {
  Sig s;
  M pos = ge(zh, zero());
  s.e = exphl(_mm512_sub_ps(zero(), absv(zh)), sel(pos, _mm512_xor_ps(zl, set1(-0.0f)), zl));
  s.num = sel(pos, set1(1.0f), s.e);
  s.inv = _mm512_div_ps(set1(1.0f), _mm512_add_ps(s.e, set1(1.0f)));
  return s;
}

const float kGeluK2 = 1.5957691216057308f;
const float kGeluK2A = 0.07135481627159562f;
const float kInvSqrt2Pi = 0.3989422804014327f;

// ------------------------------------------------------------------ elementwise
template <BinaryOp OP>
inline V bop(V a, V b) {
  if (OP == BinaryOp::Add) return _mm512_add_ps(a, b);
  if (OP == BinaryOp::Sub) return _mm512_sub_ps(a, b);
  if (OP == BinaryOp::Mul) return _mm512_mul_ps(a, b);
  if (OP == BinaryOp::Div) return _mm512_div_ps(a, b);
  V r = OP == BinaryOp::Max ? _mm512_max_ps(b, a) : _mm512_min_ps(b, a);  // NaN in a propagates
  return sel(_mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q), b, r);               // and NaN in b
}

void fillImpl(float* x, float v, int64_t n) {
  V vv = set1(v);
  int64_t i = 0;
  if (n >= (1 << 20)) {  // big buffers: streaming stores skip the read-for-ownership traffic
    for (; (reinterpret_cast<uintptr_t>(x + i) & 63) != 0; i++) x[i] = v;
    for (; i + 16 <= n; i += 16) _mm512_stream_ps(x + i, vv);
    _mm_sfence();
  }
  for (; i + 16 <= n; i += 16) st(x + i, vv);
  if (i < n) stm(x + i, tailMask(n - i), vv);
}

template <BinaryOp OP>
void binaryT(const float* a, int64_t sa, const float* b, int64_t sb, float* out, int64_t n) {
  if (sa && sb) {
    map2(a, b, out, n, [](V x, V y) { return bop<OP>(x, y); });
  } else if (sa) {
    V bv = set1(*b);
    map1(a, out, n, [bv](V x) { return bop<OP>(x, bv); });
  } else if (sb) {
    V av = set1(*a);
    map1(b, out, n, [av](V y) { return bop<OP>(av, y); });
  } else {
    fillImpl(out, _mm512_cvtss_f32(bop<OP>(set1(*a), set1(*b))), n);
  }
}

void binary(BinaryOp op, const float* a, int64_t sa, const float* b, int64_t sb, float* out, int64_t n) {
  switch (op) {
    case BinaryOp::Add: return binaryT<BinaryOp::Add>(a, sa, b, sb, out, n);
    case BinaryOp::Sub: return binaryT<BinaryOp::Sub>(a, sa, b, sb, out, n);
    case BinaryOp::Mul: return binaryT<BinaryOp::Mul>(a, sa, b, sb, out, n);
    case BinaryOp::Div: return binaryT<BinaryOp::Div>(a, sa, b, sb, out, n);
    case BinaryOp::Max: return binaryT<BinaryOp::Max>(a, sa, b, sb, out, n);
    default: return binaryT<BinaryOp::Min>(a, sa, b, sb, out, n);
  }
}

void unary(UnaryOp op, const float* x, float* y, int64_t n) {
  switch (op) {
    case UnaryOp::Neg: return map1(x, y, n, [](V v) { return _mm512_xor_ps(v, set1(-0.0f)); });
    case UnaryOp::Exp: return map1(x, y, n, [](V v) { return expv(v); });
    case UnaryOp::Log: return map1(x, y, n, [](V v) { return logv(v); });
    case UnaryOp::Tanh: return map1(x, y, n, [](V v) { return tanhv(v); });
    case UnaryOp::GeluTanh:
      return map1(x, y, n, [](V v) {
        V zh, zl;
        geluZFast(v, &zh, &zl);
        Sig s = sigPartsHL(zh, zl);
        return _mm512_mul_ps(v, _mm512_mul_ps(s.num, s.inv));
      });
    case UnaryOp::GeluErf:
      return map1(x, y, n, [](V v) {
        V E;
        return _mm512_mul_ps(v, normCdf(v, &E));
      });
    case UnaryOp::Relu:  // x <= 0 -> 0, NaN kept
      return map1(x, y, n, [](V v) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero(), _CMP_NLE_UQ), v); });
    case UnaryOp::Silu: return map1(x, y, n, [](V v) { return _mm512_mul_ps(v, sigmoidv(v)); });
    case UnaryOp::Sigmoid: return map1(x, y, n, [](V v) { return sigmoidv(v); });
    case UnaryOp::Sqrt: return map1(x, y, n, [](V v) { return _mm512_sqrt_ps(v); });
    default: return map1(x, y, n, [](V v) { return _mm512_mul_ps(v, v); });
  }
}

void unaryBackward(UnaryOp op, const float* x, const float* y, const float* gy, float* gx, int64_t n) {
  switch (op) {
    case UnaryOp::Neg: return map1(gy, gx, n, [](V g) { return _mm512_xor_ps(g, set1(-0.0f)); });
    case UnaryOp::Exp: return map2(y, gy, gx, n, [](V v, V g) { return _mm512_mul_ps(g, v); });
    case UnaryOp::Log: return map2(x, gy, gx, n, [](V v, V g) { return _mm512_div_ps(g, v); });
    case UnaryOp::Tanh: return map2(y, gy, gx, n, [](V v, V g) { return _mm512_mul_ps(g, _mm512_fnmadd_ps(v, v, set1(1.0f))); });
    case UnaryOp::GeluTanh:  // s + x s(1-s) dz/dx
      return map2(x, gy, gx, n, [](V v, V g) {
        v = _mm512_min_ps(set1(1e4f), _mm512_max_ps(set1(-1e4f), v));
        V v2 = _mm512_mul_ps(v, v);
        V zh, zl;
        geluZFast(v, &zh, &zl);
        Sig s = sigPartsHL(zh, zl);
        V sg = _mm512_mul_ps(s.num, s.inv);
        V ss = _mm512_mul_ps(_mm512_mul_ps(s.e, s.inv), s.inv);
        V dz = _mm512_fmadd_ps(v2, set1(3.0f * kGeluK2A), set1(kGeluK2));
        return _mm512_mul_ps(g, _mm512_fmadd_ps(_mm512_mul_ps(v, ss), dz, sg));
      });
    case UnaryOp::GeluErf:  // Phi(x) + x phi(x)
      return map2(x, gy, gx, n, [](V v, V g) {
        V E;
        V cdf = normCdf(v, &E);
        return _mm512_mul_ps(g, _mm512_fmadd_ps(_mm512_mul_ps(v, E), set1(kInvSqrt2Pi), cdf));
      });
    case UnaryOp::Relu:
      return map2(x, gy, gx, n, [](V v, V g) {
        return _mm512_mul_ps(g, _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero(), _CMP_GT_OQ), set1(1.0f)));
      });
    case UnaryOp::Silu:
      return map2(x, gy, gx, n, [](V v, V g) {
        Sig s = sigParts(v);
        V sg = _mm512_mul_ps(s.num, s.inv);
        V ss = _mm512_mul_ps(_mm512_mul_ps(s.e, s.inv), s.inv);
        return _mm512_mul_ps(g, _mm512_fmadd_ps(v, ss, sg));
      });
    case UnaryOp::Sigmoid:
      return map2(y, gy, gx, n, [](V v, V g) { return _mm512_mul_ps(g, _mm512_mul_ps(v, _mm512_sub_ps(set1(1.0f), v))); });
    case UnaryOp::Sqrt: return map2(y, gy, gx, n, [](V v, V g) { return _mm512_div_ps(g, _mm512_add_ps(v, v)); });
    default: return map2(x, gy, gx, n, [](V v, V g) { return _mm512_mul_ps(g, _mm512_add_ps(v, v)); });
  }
}

void axpy(float alpha, const float* x, float* y, int64_t n) {
  V a = set1(alpha);
  map2(x, y, y, n, [a](V xv, V yv) { return _mm512_fmadd_ps(a, xv, yv); });
}

float dot(const float* a, const float* b, int64_t n) {
  V s0 = zero(), s1 = zero();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm512_fmadd_ps(ld(a + i), ld(b + i), s0);
    s1 = _mm512_fmadd_ps(ld(a + i + 16), ld(b + i + 16), s1);
  }
  if (i + 16 <= n) {
    s0 = _mm512_fmadd_ps(ld(a + i), ld(b + i), s0);
    i += 16;
  }
  if (i < n) {
    const M t = tailMask(n - i);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(t, a + i), _mm512_maskz_loadu_ps(t, b + i), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

double sumSquares(const float* x, int64_t n) {
  __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    V u = ld(x + i), v = ld(x + i + 16);
    __m512d u0 = lo8(u), u1 = hi8(u), v0 = lo8(v), v1 = hi8(v);
    a0 = _mm512_fmadd_pd(u0, u0, a0);
    a1 = _mm512_fmadd_pd(u1, u1, a1);
    a2 = _mm512_fmadd_pd(v0, v0, a2);
    a3 = _mm512_fmadd_pd(v1, v1, a3);
  }
  double s = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
  for (; i < n; i++) s += (double)x[i] * (double)x[i];
  return s;
}

// ------------------------------------------------------------------ masks, dropout
void maskedFill(const float* x, const uint8_t* mask, float v, float* out, int64_t n) {
  V vv = set1(v);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i mi = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(mask + i)));
    st(out + i, sel(_mm512_test_epi32_mask(mi, mi), vv, ld(x + i)));
  }
  for (; i < n; i++) out[i] = mask[i] ? v : x[i];
}

inline __m512i hash16(__m512i x) {
  x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
  x = _mm512_mullo_epi32(x, _mm512_set1_epi32(0x7feb352d));
  x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 15));
  x = _mm512_mullo_epi32(x, _mm512_set1_epi32((int)0x846ca68bu));
  return _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
}

void dropout(uint64_t thr, float scale, uint32_t seed, uint32_t start, const float* x, float* out, uint8_t* mask,
             int64_t n) {
  const bool all = thr == 0, none = thr > 0xffffffffull;
  const __m512i lim = _mm512_set1_epi32((int)(uint32_t)thr);
  const __m512i sd = _mm512_set1_epi32((int)seed);
  const V sc = set1(scale);
  __m512i idx = _mm512_add_epi32(_mm512_set1_epi32((int)start),
                                 _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i h = hash16(_mm512_xor_si512(hash16(idx), sd));
    M keep = all ? (M)0xffff : none ? (M)0 : _mm512_cmpge_epu32_mask(h, lim);  // keep iff h >= thr
    st(out + i, _mm512_maskz_mul_ps(keep, ld(x + i), sc));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(mask + i), _mm_maskz_mov_epi8(keep, _mm_set1_epi8(1)));
    idx = _mm512_add_epi32(idx, _mm512_set1_epi32(16));
  }
  for (; i < n; i++) {
    uint32_t h = hash32(hash32(start + (uint32_t)i) ^ seed);
    bool keep = (uint64_t)h >= thr;
    mask[i] = keep ? 1 : 0;
    out[i] = keep ? x[i] * scale : 0.0f;
  }
}

// ------------------------------------------------------------------ column sums, max, argmax
// acc[j] += sum_i x[i*stride + j], 16 rows at a time in 64-column slabs summed in float registers,
// then added into the double accumulators (as the AVX2 version, at twice the width).
inline void flushd(double* acc, V f, M m) {
  const __mmask8 m0 = (__mmask8)(m & 0xff), m1 = (__mmask8)(m >> 8);
  _mm512_mask_storeu_pd(acc, m0, _mm512_add_pd(_mm512_maskz_loadu_pd(m0, acc), lo8(f)));
  _mm512_mask_storeu_pd(acc + 8, m1, _mm512_add_pd(_mm512_maskz_loadu_pd(m1, acc + 8), hi8(f)));
}

void colSumRows(double* acc, const float* x, int64_t stride, int64_t rows, int64_t n) {
  for (int64_t i0 = 0; i0 < rows; i0 += 16) {
    const int64_t i1 = i0 + 16 < rows ? i0 + 16 : rows;
    const float* x0 = x + i0 * stride;
    int64_t j = 0;
    for (; j + 64 <= n; j += 64) {
      V f0 = zero(), f1 = f0, f2 = f0, f3 = f0;
      const float* p = x0 + j;
      for (int64_t i = i0; i < i1; i++, p += stride) {
        f0 = _mm512_add_ps(f0, ld(p));
        f1 = _mm512_add_ps(f1, ld(p + 16));
        f2 = _mm512_add_ps(f2, ld(p + 32));
        f3 = _mm512_add_ps(f3, ld(p + 48));
      }
      flushd(acc + j, f0, 0xffff);
      flushd(acc + j + 16, f1, 0xffff);
      flushd(acc + j + 32, f2, 0xffff);
      flushd(acc + j + 48, f3, 0xffff);
    }
    for (; j < n; j += 16) {
      const M m = tailMask(n - j);
      V f = zero();
      const float* p = x0 + j;
      for (int64_t i = i0; i < i1; i++, p += stride) f = _mm512_add_ps(f, ldm(p, m));
      flushd(acc + j, f, m);
    }
  }
}

// lanes where v should replace best: v > best, or v is NaN and best is not
inline M better(V v, V best) {
  return _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) |
         (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q));
}
inline bool betterS(float v, float best) { return v > best || (v != v && best == best); }

void colMax(float* best, int32_t* arg, const float* x, int64_t n, int32_t i) {
  const __m512i iv = _mm512_set1_epi32(i);
  for (int64_t j = 0; j < n; j += 16) {
    const M t = tailMask(n - j);
    V v = ldm(x + j, t), b = ldm(best + j, t);
    const M u = better(v, b) & t;
    _mm512_mask_storeu_ps(best + j, u, v);
    _mm512_mask_storeu_epi32(arg + j, u, iv);
  }
}

int64_t argmax(const float* x, int64_t n, float* maxOut) {
  float best = x[0];
  int64_t arg = 0, i = 1;
  if (n >= 32) {
    V bv = ld(x);
    __m512i bi = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), cur = bi;
    const __m512i step = _mm512_set1_epi32(16);
    for (i = 16; i + 16 <= n; i += 16) {
      cur = _mm512_add_epi32(cur, step);
      V v = ld(x + i);
      const M u = better(v, bv);
      bv = sel(u, v, bv);
      bi = _mm512_mask_mov_epi32(bi, u, cur);
    }
    alignas(64) float lv[16];
    alignas(64) int32_t li[16];
    _mm512_store_ps(lv, bv);
    _mm512_store_si512(reinterpret_cast<__m512i*>(li), bi);
    best = lv[0];
    arg = li[0];
    for (int l = 1; l < 16; l++) {
      bool take = betterS(lv[l], best) || ((lv[l] == best || (lv[l] != lv[l] && best != best)) && li[l] < arg);
      if (take) {
        best = lv[l];
        arg = li[l];
      }
    }
  }
  for (; i < n; i++) {
    if (betterS(x[i], best)) {
      best = x[i];
      arg = i;
    }
  }
  *maxOut = best;
  return arg;
}

// ------------------------------------------------------------------ reductions
double sum(const float* x, int64_t n) {
  __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    addd(a0, a1, ld(x + i));
    addd(a2, a3, ld(x + i + 16));
  }
  double s = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
  for (; i < n; i++) s += x[i];
  return s;
}

void colSum(double* acc, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    V v = ld(x + i);
    _mm512_storeu_pd(acc + i, _mm512_add_pd(_mm512_loadu_pd(acc + i), lo8(v)));
    _mm512_storeu_pd(acc + i + 8, _mm512_add_pd(_mm512_loadu_pd(acc + i + 8), hi8(v)));
  }
  for (; i < n; i++) acc[i] += x[i];
}

inline float rowMax(const float* x, int64_t n) {
  V m = set1(-__builtin_inff());
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, ld(x + i));
  if (i < n) m = _mm512_mask_max_ps(m, tailMask(n - i), m, ldm(x + i, tailMask(n - i)));
  return _mm512_reduce_max_ps(m);
}

// sum_j exp(x[j] - m) in double; if y, also stores the exponentials
inline double expSum(const float* x, float* y, int64_t n, float m) {
  V mv = set1(m);
  __m512d a0 = _mm512_setzero_pd(), a1 = a0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    V e = expv(_mm512_sub_ps(ld(x + i), mv));
    if (y) st(y + i, e);
    addd(a0, a1, e);
  }
  if (i < n) {
    M msk = tailMask(n - i);
    V e = _mm512_maskz_mov_ps(msk, expv(_mm512_sub_ps(ldm(x + i, msk), mv)));
    if (y) stm(y + i, msk, e);
    addd(a0, a1, e);
  }
  return _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
}

void softmaxRows(const float* x, float* y, int64_t rows, int64_t n, bool log) {
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    float m = rowMax(xr, n);
    if (log) {
      V mv = set1(m), ls = set1((float)__builtin_log(expSum(xr, nullptr, n, m)));
      map1(xr, yr, n, [mv, ls](V v) { return _mm512_sub_ps(_mm512_sub_ps(v, mv), ls); });
    } else {
      V inv = set1((float)(1.0 / expSum(xr, yr, n, m)));
      map1(yr, yr, n, [inv](V v) { return _mm512_mul_ps(v, inv); });
    }
  }
}

// sum_j a[j] * b[j] (b may be null: sum_j a[j]) in double
inline double dotD(const float* a, const float* b, int64_t n) {
  __m512d a0 = _mm512_setzero_pd(), a1 = a0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) addd(a0, a1, b ? _mm512_mul_ps(ld(a + i), ld(b + i)) : ld(a + i));
  double s = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
  for (; i < n; i++) s += b ? (double)(a[i] * b[i]) : (double)a[i];
  return s;
}

void softmaxBackwardRows(const float* y, const float* gy, float* gx, int64_t rows, int64_t n, bool log) {
  for (int64_t r = 0; r < rows; r++) {
    const float *yr = y + r * n, *gr = gy + r * n;
    float* outr = gx + r * n;
    if (log) {
      V s = set1((float)dotD(gr, nullptr, n));
      map2(yr, gr, outr, n, [s](V v, V g) { return _mm512_fnmadd_ps(expv(v), s, g); });
    } else {
      V s = set1((float)dotD(gr, yr, n));
      map2(yr, gr, outr, n, [s](V v, V g) { return _mm512_mul_ps(v, _mm512_sub_ps(g, s)); });
    }
  }
}

// ------------------------------------------------------------------ cross-entropy
void crossEntropyRows(const float* logits, const int32_t* targets, float* losses, float* lse, int64_t rows,
                      int64_t V_) {
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = logits + r * V_;
    float m = rowMax(xr, V_);
    double l = (double)m + __builtin_log(expSum(xr, nullptr, V_, m));
    lse[r] = (float)l;
    int32_t t = targets[r];
    losses[r] = t < 0 ? 0.0f : (float)(l - (double)xr[t]);
  }
}

void crossEntropyBackwardRows(const float* logits, const int32_t* targets, const float* lse, const float* gLoss,
                              float* glogits, int64_t rows, int64_t V_) {
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = logits + r * V_;
    float* gr = glogits + r * V_;
    int32_t t = targets[r];
    if (t < 0) {
      fillImpl(gr, 0.0f, V_);
      continue;
    }
    V l = set1(lse[r]), g = set1(gLoss[r]);
    map1(xr, gr, V_, [l, g](V v) { return _mm512_mul_ps(g, expv(_mm512_sub_ps(v, l))); });
    gr[t] = (float)((double)gLoss[r] * __builtin_expm1((double)xr[t] - (double)lse[r]));
  }
}

// ------------------------------------------------------------------ layernorm
void layerNormRows(const float* x, const float* w, const float* b, float* y, float* mean, float* rstd, int64_t rows,
                   int64_t d, float eps) {
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    double mu = sum(xr, d) / (double)d;
    __m512d md = _mm512_set1_pd(mu), a0 = _mm512_setzero_pd(), a1 = a0;
    int64_t j = 0;
    for (; j + 16 <= d; j += 16) {
      V v = ld(xr + j);
      __m512d u0 = _mm512_sub_pd(lo8(v), md), u1 = _mm512_sub_pd(hi8(v), md);
      a0 = _mm512_fmadd_pd(u0, u0, a0);
      a1 = _mm512_fmadd_pd(u1, u1, a1);
    }
    double var = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
    for (; j < d; j++) var += ((double)xr[j] - mu) * ((double)xr[j] - mu);
    double rs = 1.0 / __builtin_sqrt(var / (double)d + (double)eps);
    mean[r] = (float)mu;
    rstd[r] = (float)rs;
    V mv = set1((float)mu), rv = set1((float)rs);
    j = 0;
    for (; j + 16 <= d; j += 16) {
      V xh = _mm512_mul_ps(_mm512_sub_ps(ld(xr + j), mv), rv);
      st(yr + j, _mm512_fmadd_ps(xh, ld(w + j), ld(b + j)));
    }
    if (j < d) {
      M msk = tailMask(d - j);
      V xh = _mm512_mul_ps(_mm512_sub_ps(ldm(xr + j, msk), mv), rv);
      stm(yr + j, msk, _mm512_fmadd_ps(xh, ldm(w + j, msk), ldm(b + j, msk)));
    }
  }
}

// As the AVX2 version: pass 1 stores g = gy*w into gx and accumulates sum g, sum g*xhat (double)
// and float block sums for gw, gb; pass 2 turns g into gx; block sums flushed every 16 rows.
void layerNormBackwardRows(const float* x, const float* w, const float* mean, const float* rstd, const float* gy,
                           float* gx, double* gwAcc, double* gbAcc, float* scratch, int64_t rows, int64_t d) {
  float* gwF = scratch;
  float* gbF = scratch + d;
  fillImpl(scratch, 0.0f, 2 * d);
  const int64_t dv = d & ~(int64_t)15;
  const M tm = tailMask(d - dv);
  // Full vectors use plain loads/stores: the gw/gb block sums are stored and reloaded every row, and
  // a masked store does not forward to the next load (on Zen 5 that doubled this kernel's time).
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * d, *gr = gy + r * d;
    float* outr = gx + r * d;
    V mv = set1(mean[r]), rv = set1(rstd[r]);
    __m512d s0 = _mm512_setzero_pd(), s1 = s0, q0 = s0, q1 = s0;
    auto pass1 = [&](V xv, V gyv, V wv, V gwv, V gbv, float* o, float* gwp, float* gbp, bool tail) {
      V xh = _mm512_mul_ps(_mm512_sub_ps(xv, mv), rv);
      V g = _mm512_mul_ps(gyv, wv);
      addd(s0, s1, g);
      addd(q0, q1, _mm512_mul_ps(g, xh));
      if (tail) {
        stm(o, tm, g);
        stm(gwp, tm, _mm512_fmadd_ps(gyv, xh, gwv));
        stm(gbp, tm, _mm512_add_ps(gyv, gbv));
      } else {
        st(o, g);
        st(gwp, _mm512_fmadd_ps(gyv, xh, gwv));
        st(gbp, _mm512_add_ps(gyv, gbv));
      }
    };
    int64_t j = 0;
    for (; j < dv; j += 16)
      pass1(ld(xr + j), ld(gr + j), ld(w + j), ld(gwF + j), ld(gbF + j), outr + j, gwF + j, gbF + j, false);
    if (j < d)
      pass1(ldm(xr + j, tm), ldm(gr + j, tm), ldm(w + j, tm), ldm(gwF + j, tm), ldm(gbF + j, tm), outr + j, gwF + j,
            gbF + j, true);
    V mg = set1((float)(_mm512_reduce_add_pd(_mm512_add_pd(s0, s1)) / (double)d));
    V mgx = set1((float)(_mm512_reduce_add_pd(_mm512_add_pd(q0, q1)) / (double)d));
    auto pass2 = [&](V xv, V g) {
      V xh = _mm512_mul_ps(_mm512_sub_ps(xv, mv), rv);
      return _mm512_mul_ps(rv, _mm512_fnmadd_ps(xh, mgx, _mm512_sub_ps(g, mg)));
    };
    for (j = 0; j < dv; j += 16) st(outr + j, pass2(ld(xr + j), ld(outr + j)));
    if (j < d) stm(outr + j, tm, pass2(ldm(xr + j, tm), ldm(outr + j, tm)));
    if ((r & 15) == 15 || r == rows - 1) {
      colSum(gwAcc, gwF, d);
      colSum(gbAcc, gbF, d);
      fillImpl(scratch, 0.0f, 2 * d);
    }
  }
}

// ------------------------------------------------------------------ adamw
void adamw(float* p, const float* g, float* m, float* v, int64_t n, const float* k) {
  const V b1 = set1(k[0]), ob1 = set1(k[1]), b2 = set1(k[2]), ob2 = set1(k[3]), decay = set1(k[4]),
          step = set1(k[5]), isb2 = set1(k[6]), eps = set1(k[7]);
  auto one = [&](V gv, V mv, V vv, V pv, V* mo, V* vo) {
    mv = _mm512_fmadd_ps(ob1, gv, _mm512_mul_ps(b1, mv));
    vv = _mm512_fmadd_ps(ob2, _mm512_mul_ps(gv, gv), _mm512_mul_ps(b2, vv));
    V den = _mm512_fmadd_ps(_mm512_sqrt_ps(vv), isb2, eps);
    *mo = mv;
    *vo = vv;
    return _mm512_fmsub_ps(pv, decay, _mm512_div_ps(_mm512_mul_ps(step, mv), den));
  };
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    V mo, vo;
    V po = one(ld(g + i), ld(m + i), ld(v + i), ld(p + i), &mo, &vo);
    st(m + i, mo);
    st(v + i, vo);
    st(p + i, po);
  }
  if (i < n) {
    M t = tailMask(n - i);
    V mo, vo;
    V po = one(ldm(g + i, t), ldm(m + i, t), ldm(v + i, t), ldm(p + i, t), &mo, &vo);
    stm(m + i, t, mo);
    stm(v + i, t, vo);
    stm(p + i, t, po);
  }
}

}  // namespace

void overrideTable(OpsTable* t) {
  t->binary = binary;
  t->unary = unary;
  t->unaryBackward = unaryBackward;
  t->axpy = axpy;
  t->fill = fillImpl;
  t->sumSquares = sumSquares;
  t->dot = dot;
  t->sum = sum;
  t->colSum = colSum;
  t->softmaxRows = softmaxRows;
  t->softmaxBackwardRows = softmaxBackwardRows;
  t->crossEntropyRows = crossEntropyRows;
  t->crossEntropyBackwardRows = crossEntropyBackwardRows;
  t->layerNormRows = layerNormRows;
  t->layerNormBackwardRows = layerNormBackwardRows;
  t->adamw = adamw;
  t->maskedFill = maskedFill;
  t->dropout = dropout;
  t->colSumRows = colSumRows;
  t->colMax = colMax;
  t->argmax = argmax;
}

}  // namespace avx512
}  // namespace simd
}  // namespace moelab
