// AVX2 + FMA row kernels for the elementwise, reduce, norm, loss and optimizer ops (see ops_simd.h).
// Compiled with -mavx2 -mfma; reached only through simd::avx2::table after a cpuid check.
// ODR: everything here is intrinsics and plain C++ in an anonymous namespace (no STL), exported
// only through the table of function pointers.
//
// Vector math, with coefficients fitted for this file (weighted least squares, minimax relative
// error, float evaluation checked):
//   exp:   x = n ln2 + r, |r| <= ln2/2 (Cody-Waite split of ln2), e^r = 1 + r + r^2 P4(r); 2^n applied in
//          two halves so results down to the denormal range are right. Max rel. error ~1 ulp.
//   log:   x = 2^e m, m in [sqrt(1/2), sqrt(2)), f = m - 1, log(1+f) = f - f^2/2 + f^3 P7(f).
//   tanh:  |x| < 0.625: x + x^3 P4(x^2); else sign(x) (1 - 2/(e^{2|x|} + 1)).
//   Phi:   upper normal tail Q(a) = 0.5 erfc(a/sqrt2) = e^{-a^2/2} t R11(t), t = 1/(1 + 0.4a), with a^2/2
//          carried as hi + lo (FMA) so the exponential keeps full relative accuracy far into the tail.
#define MOELAB_AVX2_TU
#include "ops_simd.h"

#include <immintrin.h>
#include <stdint.h>

namespace moelab {
namespace simd {
namespace avx2 {
namespace {

// ------------------------------------------------------------------ helpers
inline __m256 set1(float v) { return _mm256_set1_ps(v); }
inline __m256 ld(const float* p) { return _mm256_loadu_ps(p); }
inline void st(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
inline __m256i tailMask(int64_t r) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline __m256 ldm(const float* p, __m256i m) { return _mm256_maskload_ps(p, m); }
inline void stm(float* p, __m256i m, __m256 v) { _mm256_maskstore_ps(p, m, v); }
inline __m256 sel(__m256 mask, __m256 ifTrue, __m256 ifFalse) { return _mm256_blendv_ps(ifFalse, ifTrue, mask); }
inline __m256 absv(__m256 x) { return _mm256_andnot_ps(set1(-0.0f), x); }

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline double hsumd(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
// acc += the 8 floats of v, in double
inline void addd(__m256d& a0, __m256d& a1, __m256 v) {
  a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
  a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}
inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// y[i] = f(x[i]); in-place safe
template <class F>
inline void map1(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) st(y + i, f(ld(x + i)));
  if (i < n) {
    __m256i m = tailMask(n - i);
    stm(y + i, m, f(ldm(x + i, m)));
  }
}
template <class F>
inline void map2(const float* a, const float* b, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) st(y + i, f(ld(a + i), ld(b + i)));
  if (i < n) {
    __m256i m = tailMask(n - i);
    stm(y + i, m, f(ldm(a + i, m), ldm(b + i, m)));
  }
}

// ------------------------------------------------------------------ vector math
const float kLog2e = 1.44269504088896341f;
const float kLn2Hi = 0.693359375f;             // 355/512, exact in few bits
const float kLn2Lo = -2.12194440054690583e-4f;  // ln2 - kLn2Hi

// e^r for |r| <= ~0.35 (plus a small low part), then times 2^n
inline __m256 expCore(__m256 r, __m256 n) {
  __m256 p = set1(1.390128129e-03f);
  p = _mm256_fmadd_ps(p, r, set1(8.363140615e-03f));
  p = _mm256_fmadd_ps(p, r, set1(4.166685340e-02f));
  p = _mm256_fmadd_ps(p, r, set1(1.666657732e-01f));
  p = _mm256_fmadd_ps(p, r, set1(4.999999955e-01f));
  __m256 e = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), set1(1.0f));
  __m256i ni = _mm256_cvtps_epi32(n);
  __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
  __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
  __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
  return _mm256_mul_ps(_mm256_mul_ps(e, s1), s2);
}

// e^(hi + lo), |lo| << |hi| (lo = 0 for a plain exp). NaN propagates; overflow -> inf, underflow -> 0.
inline __m256 exp8hl(__m256 hi, __m256 lo) {
  hi = _mm256_max_ps(set1(-104.0f), hi);  // second operand returned for NaN: keeps NaN
  hi = _mm256_min_ps(set1(89.0f), hi);
  __m256 n = _mm256_round_ps(_mm256_mul_ps(hi, set1(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, set1(kLn2Hi), hi);
  r = _mm256_fnmadd_ps(n, set1(kLn2Lo), r);
  return expCore(_mm256_add_ps(r, lo), n);
}
inline __m256 exp8(__m256 x) { return exp8hl(x, _mm256_setzero_ps()); }

inline __m256 log8(__m256 x) {
  const __m256 fltMin = set1(1.17549435e-38f);
  __m256 tiny = _mm256_cmp_ps(x, fltMin, _CMP_LT_OQ);
  __m256 xs = sel(tiny, _mm256_mul_ps(x, set1(16777216.0f)), x);  // denormals: scale by 2^24
  __m256i bits = _mm256_castps_si256(xs);
  __m256i ei = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127));
  __m256 m = _mm256_castsi256_ps(
      _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x7fffff)), _mm256_set1_epi32(0x3f800000)));
  __m256 big = _mm256_cmp_ps(m, set1(1.41421356f), _CMP_GT_OQ);
  m = sel(big, _mm256_mul_ps(m, set1(0.5f)), m);
  __m256 e = _mm256_add_ps(_mm256_cvtepi32_ps(ei), _mm256_and_ps(big, set1(1.0f)));
  e = _mm256_sub_ps(e, _mm256_and_ps(tiny, set1(24.0f)));
  __m256 f = _mm256_sub_ps(m, set1(1.0f));
  __m256 p = set1(-7.973883927e-02f);
  p = _mm256_fmadd_ps(p, f, set1(1.265536116e-01f));
  p = _mm256_fmadd_ps(p, f, set1(-1.298924790e-01f));
  p = _mm256_fmadd_ps(p, f, set1(1.420998594e-01f));
  p = _mm256_fmadd_ps(p, f, set1(-1.664158713e-01f));
  p = _mm256_fmadd_ps(p, f, set1(2.000119974e-01f));
  p = _mm256_fmadd_ps(p, f, set1(-2.500030380e-01f));
  p = _mm256_fmadd_ps(p, f, set1(3.333332995e-01f));
  __m256 f2 = _mm256_mul_ps(f, f);
  __m256 r = _mm256_fmadd_ps(_mm256_mul_ps(f2, f), p, _mm256_mul_ps(e, set1(kLn2Lo)));
  r = _mm256_fnmadd_ps(set1(0.5f), f2, r);
  __m256 res = _mm256_fmadd_ps(e, set1(kLn2Hi), _mm256_add_ps(f, r));
  const __m256 inf = set1(__builtin_inff());
  res = sel(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_EQ_OQ), set1(-__builtin_inff()), res);
  res = sel(_mm256_cmp_ps(x, inf, _CMP_EQ_OQ), inf, res);
  res = sel(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NGE_UQ), set1(__builtin_nanf("")), res);  // x < 0, NaN
  return res;
}

inline __m256 tanh8(__m256 x) {
  __m256 ax = absv(x);
  __m256 x2 = _mm256_mul_ps(x, x);
  __m256 p = set1(-6.096962967e-03f);
  p = _mm256_fmadd_ps(p, x2, set1(2.099737353e-02f));
  p = _mm256_fmadd_ps(p, x2, set1(-5.385095650e-02f));
  p = _mm256_fmadd_ps(p, x2, set1(1.333277009e-01f));
  p = _mm256_fmadd_ps(p, x2, set1(-3.333332895e-01f));
  __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(x2, x), p, x);
  __m256 e = exp8(_mm256_add_ps(ax, ax));
  __m256 big = _mm256_sub_ps(set1(1.0f), _mm256_div_ps(set1(2.0f), _mm256_add_ps(e, set1(1.0f))));
  big = _mm256_or_ps(big, _mm256_and_ps(x, set1(-0.0f)));
  return sel(_mm256_cmp_ps(ax, set1(0.625f), _CMP_LT_OQ), small, big);
}

// Logistic pieces of z: e = exp(-|z|); sigma(z) = num/(1+e) with num = z >= 0 ? 1 : e, and
// sigma(z)(1-sigma(z)) = e/(1+e)^2. No cancellation on either side.
struct Sig {
  __m256 e, num, inv;  // inv = 1/(1+e)
};
inline Sig sigParts(__m256 z) {
  Sig s;
  s.e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), absv(z)));
  s.num = sel(_mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_GE_OQ), set1(1.0f), s.e);
  s.inv = _mm256_div_ps(set1(1.0f), _mm256_add_ps(s.e, set1(1.0f)));
  return s;
}
inline __m256 sigmoid8(__m256 z) {
  __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), absv(z)));
  __m256 num = sel(_mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_GE_OQ), set1(1.0f), e);
  return _mm256_div_ps(num, _mm256_add_ps(e, set1(1.0f)));
}

// Upper normal tail Q(a) = 0.5 erfc(a/sqrt2) for a >= 0 (NaN propagates); *E = exp(-a^2/2).
inline __m256 normTail(__m256 a, __m256* E) {
  a = _mm256_min_ps(set1(20.0f), a);  // keeps NaN; beyond 20 the tail is 0 in float
  __m256 a2 = _mm256_mul_ps(a, a);
  __m256 a2lo = _mm256_fmsub_ps(a, a, a2);
  __m256 e = exp8hl(_mm256_mul_ps(a2, set1(-0.5f)), _mm256_mul_ps(a2lo, set1(-0.5f)));
  __m256 t = _mm256_div_ps(set1(1.0f), _mm256_fmadd_ps(a, set1(0.4f), set1(1.0f)));
  __m256 r = set1(-1.926144177e-02f);
  r = _mm256_fmadd_ps(r, t, set1(1.086630934e-01f));
  r = _mm256_fmadd_ps(r, t, set1(-2.334897983e-01f));
  r = _mm256_fmadd_ps(r, t, set1(1.915866630e-01f));
  r = _mm256_fmadd_ps(r, t, set1(6.463505495e-02f));
  r = _mm256_fmadd_ps(r, t, set1(-1.988190529e-01f));
  r = _mm256_fmadd_ps(r, t, set1(5.880468608e-02f));
  r = _mm256_fmadd_ps(r, t, set1(-1.483193959e-02f));
  r = _mm256_fmadd_ps(r, t, set1(9.046852819e-02f));
  r = _mm256_fmadd_ps(r, t, set1(1.330130056e-01f));
  r = _mm256_fmadd_ps(r, t, set1(1.596569622e-01f));
  r = _mm256_fmadd_ps(r, t, set1(1.595742384e-01f));
  *E = e;
  return _mm256_mul_ps(_mm256_mul_ps(e, t), r);
}
// Phi(x) and, through *E, exp(-x^2/2)
inline __m256 normCdf8(__m256 x, __m256* E) {
  __m256 q = normTail(absv(x), E);
  return sel(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ), _mm256_sub_ps(set1(1.0f), q), q);
}

// z = 2u = x (k2 + k2a x^2) for tanh-GELU, computed in double and returned as hi + lo floats: in
// the negative tail GELU ~ x e^z, so a float z would cost |z| ulps of relative accuracy. Clamped
// to +-200 (beyond +-104 the logistic saturates anyway); NaN propagates.
inline void geluZ(__m256 x, __m256* zh, __m256* zl) {
  const __m256d k2 = _mm256_set1_pd(1.5957691216057308), k2a = _mm256_set1_pd(0.07135481627159562);
  const __m256d lim = _mm256_set1_pd(200.0), nlim = _mm256_set1_pd(-200.0);
  __m256d x0 = _mm256_cvtps_pd(_mm256_castps256_ps128(x)), x1 = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
  __m256d z0 = _mm256_mul_pd(x0, _mm256_fmadd_pd(_mm256_mul_pd(x0, x0), k2a, k2));
  __m256d z1 = _mm256_mul_pd(x1, _mm256_fmadd_pd(_mm256_mul_pd(x1, x1), k2a, k2));
  z0 = _mm256_min_pd(lim, _mm256_max_pd(nlim, z0));
  z1 = _mm256_min_pd(lim, _mm256_max_pd(nlim, z1));
  __m128 h0 = _mm256_cvtpd_ps(z0), h1 = _mm256_cvtpd_ps(z1);
  __m128 l0 = _mm256_cvtpd_ps(_mm256_sub_pd(z0, _mm256_cvtps_pd(h0)));
  __m128 l1 = _mm256_cvtpd_ps(_mm256_sub_pd(z1, _mm256_cvtps_pd(h1)));
  *zh = _mm256_set_m128(h1, h0);
  *zl = _mm256_set_m128(l1, l0);
}
// z for tanh-GELU: float in the lanes with z >= -6 (error <= ~1e-6 relative there), the double
// path above in the others. Positive z needs no care: there e^{-z} only enters as 1/(1+e). Chosen
// lane by lane, so an element's bits do not depend on which elements share its vector (the
// chunking of a threaded call); the double path runs only for vectors that have such a lane.
inline void geluZFast(__m256 x, __m256* zh, __m256* zl) {
  __m256 z = _mm256_mul_ps(x, _mm256_fmadd_ps(_mm256_mul_ps(x, x), set1(0.07135481627159562f), set1(1.5957691216057308f)));
  const __m256 low = _mm256_cmp_ps(z, set1(-6.0f), _CMP_LT_OQ);
  *zh = z;
  *zl = _mm256_setzero_ps();
  if (_mm256_movemask_ps(low)) {
    __m256 h, l;
    geluZ(x, &h, &l);
    *zh = sel(low, h, z);
    *zl = sel(low, l, _mm256_setzero_ps());
  }
}
// Sig parts of z = zh + zl: e = exp(-|z|)
inline Sig sigPartsHL(__m256 zh, __m256 zl) {
  Sig s;
  __m256 pos = _mm256_cmp_ps(zh, _mm256_setzero_ps(), _CMP_GE_OQ);
  s.e = exp8hl(_mm256_sub_ps(_mm256_setzero_ps(), absv(zh)), sel(pos, _mm256_xor_ps(zl, set1(-0.0f)), zl));
  s.num = sel(pos, set1(1.0f), s.e);
  s.inv = _mm256_div_ps(set1(1.0f), _mm256_add_ps(s.e, set1(1.0f)));
  return s;
}

const float kGeluK2 = 1.5957691216057308f;      // 2 sqrt(2/pi)
const float kGeluK2A = 0.07135481627159562f;    // 2 sqrt(2/pi) * 0.044715
const float kInvSqrt2Pi = 0.3989422804014327f;  // 1/sqrt(2 pi)

// ------------------------------------------------------------------ elementwise
template <BinaryOp OP>
inline __m256 bop(__m256 a, __m256 b) {
  if (OP == BinaryOp::Add) return _mm256_add_ps(a, b);
  if (OP == BinaryOp::Sub) return _mm256_sub_ps(a, b);
  if (OP == BinaryOp::Mul) return _mm256_mul_ps(a, b);
  if (OP == BinaryOp::Div) return _mm256_div_ps(a, b);
  // max/min propagate NaN: MAXPS returns its second operand when either is NaN
  __m256 r = OP == BinaryOp::Max ? _mm256_max_ps(b, a) : _mm256_min_ps(b, a);
  return sel(_mm256_cmp_ps(b, b, _CMP_UNORD_Q), b, r);
}

void fillImpl(float* x, float v, int64_t n) {
  __m256 vv = set1(v);
  int64_t i = 0;
  if (n >= (1 << 20)) {  // big buffers: streaming stores skip the read-for-ownership traffic
    for (; (reinterpret_cast<uintptr_t>(x + i) & 31) != 0; i++) x[i] = v;
    for (; i + 8 <= n; i += 8) _mm256_stream_ps(x + i, vv);
    _mm_sfence();
  }
  for (; i + 8 <= n; i += 8) st(x + i, vv);
  if (i < n) stm(x + i, tailMask(n - i), vv);
}

template <BinaryOp OP>
void binaryT(const float* a, int64_t sa, const float* b, int64_t sb, float* out, int64_t n) {
  if (sa && sb) {
    map2(a, b, out, n, [](__m256 x, __m256 y) { return bop<OP>(x, y); });
  } else if (sa) {
    __m256 bv = set1(*b);
    map1(a, out, n, [bv](__m256 x) { return bop<OP>(x, bv); });
  } else if (sb) {
    __m256 av = set1(*a);
    map1(b, out, n, [av](__m256 y) { return bop<OP>(av, y); });
  } else {
    fillImpl(out, _mm256_cvtss_f32(bop<OP>(set1(*a), set1(*b))), n);
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
    case UnaryOp::Neg: return map1(x, y, n, [](__m256 v) { return _mm256_xor_ps(v, set1(-0.0f)); });
    case UnaryOp::Exp: return map1(x, y, n, [](__m256 v) { return exp8(v); });
    case UnaryOp::Log: return map1(x, y, n, [](__m256 v) { return log8(v); });
    case UnaryOp::Tanh: return map1(x, y, n, [](__m256 v) { return tanh8(v); });
    case UnaryOp::GeluTanh:  // x * sigma(2u), 2u = x (k2 + k2a x^2)
      return map1(x, y, n, [](__m256 v) {
        __m256 zh, zl;
        geluZFast(v, &zh, &zl);
        Sig s = sigPartsHL(zh, zl);
        return _mm256_mul_ps(v, _mm256_mul_ps(s.num, s.inv));
      });
    case UnaryOp::GeluErf:
      return map1(x, y, n, [](__m256 v) {
        __m256 E;
        return _mm256_mul_ps(v, normCdf8(v, &E));
      });
    case UnaryOp::Relu: return map1(x, y, n, [](__m256 v) { return _mm256_andnot_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LE_OQ), v); });
    case UnaryOp::Silu: return map1(x, y, n, [](__m256 v) { return _mm256_mul_ps(v, sigmoid8(v)); });
    case UnaryOp::Sigmoid: return map1(x, y, n, [](__m256 v) { return sigmoid8(v); });
    case UnaryOp::Sqrt: return map1(x, y, n, [](__m256 v) { return _mm256_sqrt_ps(v); });
    default: return map1(x, y, n, [](__m256 v) { return _mm256_mul_ps(v, v); });
  }
}

void unaryBackward(UnaryOp op, const float* x, const float* y, const float* gy, float* gx, int64_t n) {
  switch (op) {
    case UnaryOp::Neg: return map1(gy, gx, n, [](__m256 g) { return _mm256_xor_ps(g, set1(-0.0f)); });
    case UnaryOp::Exp: return map2(y, gy, gx, n, [](__m256 v, __m256 g) { return _mm256_mul_ps(g, v); });
    case UnaryOp::Log: return map2(x, gy, gx, n, [](__m256 v, __m256 g) { return _mm256_div_ps(g, v); });
    case UnaryOp::Tanh: return map2(y, gy, gx, n, [](__m256 v, __m256 g) { return _mm256_mul_ps(g, _mm256_fnmadd_ps(v, v, set1(1.0f))); });
    case UnaryOp::GeluTanh:  // s + x s(1-s) dz/dx, z = x (k2 + k2a x^2), dz/dx = k2 + 3 k2a x^2
      return map2(x, gy, gx, n, [](__m256 v, __m256 g) {
        // beyond |x| = 1e4 the second term is exactly 0; clamping keeps x^2 finite (no 0 * inf)
        v = _mm256_min_ps(set1(1e4f), _mm256_max_ps(set1(-1e4f), v));
        __m256 v2 = _mm256_mul_ps(v, v);
        __m256 zh, zl;
        geluZFast(v, &zh, &zl);
        Sig s = sigPartsHL(zh, zl);
        __m256 sg = _mm256_mul_ps(s.num, s.inv);
        __m256 ss = _mm256_mul_ps(_mm256_mul_ps(s.e, s.inv), s.inv);
        __m256 dz = _mm256_fmadd_ps(v2, set1(3.0f * kGeluK2A), set1(kGeluK2));
        return _mm256_mul_ps(g, _mm256_fmadd_ps(_mm256_mul_ps(v, ss), dz, sg));
      });
    case UnaryOp::GeluErf:  // Phi(x) + x phi(x)
      return map2(x, gy, gx, n, [](__m256 v, __m256 g) {
        __m256 E;
        __m256 cdf = normCdf8(v, &E);
        return _mm256_mul_ps(g, _mm256_fmadd_ps(_mm256_mul_ps(v, E), set1(kInvSqrt2Pi), cdf));
      });
    case UnaryOp::Relu:
      return map2(x, gy, gx, n, [](__m256 v, __m256 g) {
        return _mm256_mul_ps(g, _mm256_and_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ), set1(1.0f)));
      });
    case UnaryOp::Silu:  // s + x s(1-s)
      return map2(x, gy, gx, n, [](__m256 v, __m256 g) {
        Sig s = sigParts(v);
        __m256 sg = _mm256_mul_ps(s.num, s.inv);
        __m256 ss = _mm256_mul_ps(_mm256_mul_ps(s.e, s.inv), s.inv);
        return _mm256_mul_ps(g, _mm256_fmadd_ps(v, ss, sg));
      });
    case UnaryOp::Sigmoid:
      return map2(y, gy, gx, n, [](__m256 v, __m256 g) {
        return _mm256_mul_ps(g, _mm256_mul_ps(v, _mm256_sub_ps(set1(1.0f), v)));
      });
    case UnaryOp::Sqrt: return map2(y, gy, gx, n, [](__m256 v, __m256 g) { return _mm256_div_ps(g, _mm256_add_ps(v, v)); });
    default: return map2(x, gy, gx, n, [](__m256 v, __m256 g) { return _mm256_mul_ps(g, _mm256_add_ps(v, v)); });
  }
}

void axpy(float alpha, const float* x, float* y, int64_t n) {
  __m256 a = set1(alpha);
  map2(x, y, y, n, [a](__m256 xv, __m256 yv) { return _mm256_fmadd_ps(a, xv, yv); });
}

float dot(const float* a, const float* b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(ld(a + i), ld(b + i), s0);
    s1 = _mm256_fmadd_ps(ld(a + i + 8), ld(b + i + 8), s1);
  }
  __m256 v = _mm256_add_ps(s0, s1);
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
  float s = _mm_cvtss_f32(h);
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

double sumSquares(const float* x, int64_t n) {
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 u = ld(x + i), v = ld(x + i + 8);
    __m256d u0 = _mm256_cvtps_pd(_mm256_castps256_ps128(u)), u1 = _mm256_cvtps_pd(_mm256_extractf128_ps(u, 1));
    __m256d v0 = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), v1 = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    a0 = _mm256_fmadd_pd(u0, u0, a0);
    a1 = _mm256_fmadd_pd(u1, u1, a1);
    a2 = _mm256_fmadd_pd(v0, v0, a2);
    a3 = _mm256_fmadd_pd(v1, v1, a3);
  }
  double s = hsumd(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
  for (; i < n; i++) s += (double)x[i] * (double)x[i];
  return s;
}

void maskedFill(const float* x, const uint8_t* mask, float v, float* out, int64_t n) {
  __m256 vv = set1(v);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i mi = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mask + i)));
    __m256 zero = _mm256_castsi256_ps(_mm256_cmpeq_epi32(mi, _mm256_setzero_si256()));
    st(out + i, sel(zero, ld(x + i), vv));
  }
  for (; i < n; i++) out[i] = mask[i] ? v : x[i];
}

inline __m256i hash8(__m256i x) {
  x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
  x = _mm256_mullo_epi32(x, _mm256_set1_epi32(0x7feb352d));
  x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 15));
  x = _mm256_mullo_epi32(x, _mm256_set1_epi32((int)0x846ca68bu));
  return _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
}

void dropout(uint64_t thr, float scale, uint32_t seed, uint32_t start, const float* x, float* out, uint8_t* mask,
             int64_t n) {
  const __m256i flip = _mm256_set1_epi32((int)0x80000000u);
  // keep iff h >= thr  <=>  h > thr - 1 (unsigned), done as a signed compare on flipped values
  const bool all = thr == 0, none = thr > 0xffffffffull;
  const __m256i lim = _mm256_xor_si256(_mm256_set1_epi32((int)(uint32_t)(thr - 1)), flip);
  const __m256i sd = _mm256_set1_epi32((int)seed);
  const __m256 sc = set1(scale);
  __m256i idx = _mm256_add_epi32(_mm256_set1_epi32((int)start), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i h = hash8(_mm256_xor_si256(hash8(idx), sd));
    __m256i keep = all ? _mm256_set1_epi32(-1)
                       : none ? _mm256_setzero_si256() : _mm256_cmpgt_epi32(_mm256_xor_si256(h, flip), lim);
    st(out + i, _mm256_and_ps(_mm256_castsi256_ps(keep), _mm256_mul_ps(ld(x + i), sc)));
    __m128i k16 = _mm_packs_epi32(_mm256_castsi256_si128(keep), _mm256_extracti128_si256(keep, 1));
    __m128i k8 = _mm_and_si128(_mm_packs_epi16(k16, k16), _mm_set1_epi8(1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(mask + i), k8);
    idx = _mm256_add_epi32(idx, _mm256_set1_epi32(8));
  }
  for (; i < n; i++) {
    uint32_t h = hash32(hash32(start + (uint32_t)i) ^ seed);
    bool keep = (uint64_t)h >= thr;
    mask[i] = keep ? 1 : 0;
    out[i] = keep ? x[i] * scale : 0.0f;
  }
}

// ------------------------------------------------------------------ reductions
double sum(const float* x, int64_t n) {
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    addd(a0, a1, ld(x + i));
    addd(a2, a3, ld(x + i + 8));
  }
  double s = hsumd(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
  for (; i < n; i++) s += x[i];
  return s;
}

void colSum(double* acc, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = ld(x + i);
    _mm256_storeu_pd(acc + i, _mm256_add_pd(_mm256_loadu_pd(acc + i), _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
    _mm256_storeu_pd(acc + i + 4,
                     _mm256_add_pd(_mm256_loadu_pd(acc + i + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
  }
  for (; i < n; i++) acc[i] += x[i];
}

// acc[j] += sum_i x[i*stride + j]. Rows are taken 16 at a time and swept left to right (sequential
// streams the prefetcher follows); each 32-column slab is summed in float registers over the 16
// rows, then added into the double accumulators (which stay in L1).
inline void flushd(double* acc, __m256 f) {
  _mm256_storeu_pd(acc, _mm256_add_pd(_mm256_loadu_pd(acc), _mm256_cvtps_pd(_mm256_castps256_ps128(f))));
  _mm256_storeu_pd(acc + 4, _mm256_add_pd(_mm256_loadu_pd(acc + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1))));
}

void colSumRows(double* acc, const float* x, int64_t stride, int64_t rows, int64_t n) {
  for (int64_t i0 = 0; i0 < rows; i0 += 16) {
    const int64_t i1 = i0 + 16 < rows ? i0 + 16 : rows;
    const float* x0 = x + i0 * stride;
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {
      __m256 f0 = _mm256_setzero_ps(), f1 = f0, f2 = f0, f3 = f0;
      const float* p = x0 + j;
      for (int64_t i = i0; i < i1; i++, p += stride) {
        f0 = _mm256_add_ps(f0, ld(p));
        f1 = _mm256_add_ps(f1, ld(p + 8));
        f2 = _mm256_add_ps(f2, ld(p + 16));
        f3 = _mm256_add_ps(f3, ld(p + 24));
      }
      flushd(acc + j, f0);
      flushd(acc + j + 8, f1);
      flushd(acc + j + 16, f2);
      flushd(acc + j + 24, f3);
    }
    for (; j < n; j += 8) {
      const int64_t w = n - j < 8 ? n - j : 8;
      const __m256i m = tailMask(w);
      __m256 f = _mm256_setzero_ps();
      const float* p = x0 + j;
      for (int64_t i = i0; i < i1; i++, p += stride) f = _mm256_add_ps(f, ldm(p, m));
      alignas(32) float t[8];
      _mm256_store_ps(t, f);
      for (int64_t k = 0; k < w; k++) acc[j + k] += t[k];
    }
  }
}

// 8x8 register transpose: rows r[k] (k < 8) become columns
inline void transpose8(__m256 r[8]) {
  __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// dst[i*ds + j] = src[i + j*ss]. For each 8 source rows (j), all of i is swept, so every source
// row is read as one sequential run per call.
void transpose(const float* src, int64_t ss, float* dst, int64_t ds, int64_t R, int64_t C) {
  const int64_t R8 = R & ~(int64_t)7, C8 = C & ~(int64_t)7;
  for (int64_t j = 0; j < C8; j += 8) {
    for (int64_t i = 0; i < R8; i += 8) {
      __m256 r[8];
      for (int k = 0; k < 8; k++) r[k] = ld(src + i + (j + k) * ss);
      transpose8(r);
      for (int k = 0; k < 8; k++) st(dst + (i + k) * ds + j, r[k]);
    }
    for (int64_t k = R8; k < R; k++)
      for (int64_t jj = j; jj < j + 8; jj++) dst[k * ds + jj] = src[k + jj * ss];
  }
  for (int64_t k = 0; k < R; k++)
    for (int64_t jj = C8; jj < C; jj++) dst[k * ds + jj] = src[k + jj * ss];
}

// lanes where v should replace best: v > best, or v is NaN and best is not
inline __m256 better(__m256 v, __m256 best) {
  __m256 gt = _mm256_cmp_ps(v, best, _CMP_GT_OQ);
  __m256 nan = _mm256_and_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q), _mm256_cmp_ps(best, best, _CMP_ORD_Q));
  return _mm256_or_ps(gt, nan);
}
inline bool betterS(float v, float best) { return v > best || (v != v && best == best); }

void colMax(float* best, int32_t* arg, const float* x, int64_t n, int32_t i) {
  __m256i iv = _mm256_set1_epi32(i);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 v = ld(x + j), b = ld(best + j);
    __m256 u = better(v, b);
    st(best + j, sel(u, v, b));
    __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(arg + j));
    a = _mm256_castps_si256(sel(u, _mm256_castsi256_ps(iv), _mm256_castsi256_ps(a)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(arg + j), a);
  }
  for (; j < n; j++) {
    if (betterS(x[j], best[j])) {
      best[j] = x[j];
      arg[j] = i;
    }
  }
}

int64_t argmax(const float* x, int64_t n, float* maxOut) {
  float best = x[0];
  int64_t arg = 0, i = 1;
  if (n >= 16) {
    __m256 bv = ld(x);
    __m256i bi = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), cur = bi;
    const __m256i step = _mm256_set1_epi32(8);
    for (i = 8; i + 8 <= n; i += 8) {
      cur = _mm256_add_epi32(cur, step);
      __m256 v = ld(x + i);
      __m256 u = better(v, bv);
      bv = sel(u, v, bv);
      bi = _mm256_castps_si256(sel(u, _mm256_castsi256_ps(cur), _mm256_castsi256_ps(bi)));
    }
    alignas(32) float lv[8];
    alignas(32) int32_t li[8];
    _mm256_store_ps(lv, bv);
    _mm256_store_si256(reinterpret_cast<__m256i*>(li), bi);
    best = lv[0];
    arg = li[0];
    for (int l = 1; l < 8; l++) {
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

inline float rowMax(const float* x, int64_t n) {
  __m256 m = set1(-__builtin_inff());
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, ld(x + i));
  float r = hmax(m);
  for (; i < n; i++) r = x[i] > r ? x[i] : r;
  return r;
}

// sum_j exp(x[j] - m) in double; if y, also stores the exponentials
inline double expSum(const float* x, float* y, int64_t n, float m) {
  __m256 mv = set1(m);
  __m256d a0 = _mm256_setzero_pd(), a1 = a0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 e = exp8(_mm256_sub_ps(ld(x + i), mv));
    if (y) st(y + i, e);
    addd(a0, a1, e);
  }
  if (i < n) {
    __m256i msk = tailMask(n - i);
    __m256 e = _mm256_and_ps(_mm256_castsi256_ps(msk), exp8(_mm256_sub_ps(ldm(x + i, msk), mv)));
    if (y) stm(y + i, msk, e);
    addd(a0, a1, e);
  }
  return hsumd(_mm256_add_pd(a0, a1));
}

void softmaxRows(const float* x, float* y, int64_t rows, int64_t n, bool log) {
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    float m = rowMax(xr, n);
    if (log) {
      __m256 mv = set1(m), ls = set1((float)__builtin_log(expSum(xr, nullptr, n, m)));
      map1(xr, yr, n, [mv, ls](__m256 v) { return _mm256_sub_ps(_mm256_sub_ps(v, mv), ls); });
    } else {
      __m256 inv = set1((float)(1.0 / expSum(xr, yr, n, m)));
      map1(yr, yr, n, [inv](__m256 v) { return _mm256_mul_ps(v, inv); });
    }
  }
}

// sum_j a[j] * b[j] (b may be null: sum_j a[j]) in double
inline double dotD(const float* a, const float* b, int64_t n) {
  __m256d a0 = _mm256_setzero_pd(), a1 = a0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) addd(a0, a1, b ? _mm256_mul_ps(ld(a + i), ld(b + i)) : ld(a + i));
  double s = hsumd(_mm256_add_pd(a0, a1));
  for (; i < n; i++) s += b ? (double)(a[i] * b[i]) : (double)a[i];
  return s;
}

void softmaxBackwardRows(const float* y, const float* gy, float* gx, int64_t rows, int64_t n, bool log) {
  for (int64_t r = 0; r < rows; r++) {
    const float *yr = y + r * n, *gr = gy + r * n;
    float* outr = gx + r * n;
    if (log) {
      __m256 s = set1((float)dotD(gr, nullptr, n));
      map2(yr, gr, outr, n, [s](__m256 v, __m256 g) { return _mm256_fnmadd_ps(exp8(v), s, g); });
    } else {
      __m256 s = set1((float)dotD(gr, yr, n));
      map2(yr, gr, outr, n, [s](__m256 v, __m256 g) { return _mm256_mul_ps(v, _mm256_sub_ps(g, s)); });
    }
  }
}

// ------------------------------------------------------------------ cross-entropy
void crossEntropyRows(const float* logits, const int32_t* targets, float* losses, float* lse, int64_t rows,
                      int64_t V) {
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = logits + r * V;
    float m = rowMax(xr, V);
    double l = (double)m + __builtin_log(expSum(xr, nullptr, V, m));
    lse[r] = (float)l;
    int32_t t = targets[r];
    losses[r] = t < 0 ? 0.0f : (float)(l - (double)xr[t]);
  }
}

void crossEntropyBackwardRows(const float* logits, const int32_t* targets, const float* lse, const float* gLoss,
                              float* glogits, int64_t rows, int64_t V) {
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = logits + r * V;
    float* gr = glogits + r * V;
    int32_t t = targets[r];
    if (t < 0) {
      fillImpl(gr, 0.0f, V);
      continue;
    }
    __m256 l = set1(lse[r]), g = set1(gLoss[r]);
    map1(xr, gr, V, [l, g](__m256 v) { return _mm256_mul_ps(g, exp8(_mm256_sub_ps(v, l))); });
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
    __m256d md = _mm256_set1_pd(mu), a0 = _mm256_setzero_pd(), a1 = a0;
    int64_t j = 0;
    for (; j + 8 <= d; j += 8) {
      __m256 v = ld(xr + j);
      __m256d u0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), md);
      __m256d u1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), md);
      a0 = _mm256_fmadd_pd(u0, u0, a0);
      a1 = _mm256_fmadd_pd(u1, u1, a1);
    }
    double var = hsumd(_mm256_add_pd(a0, a1));
    for (; j < d; j++) var += ((double)xr[j] - mu) * ((double)xr[j] - mu);
    double rs = 1.0 / __builtin_sqrt(var / (double)d + (double)eps);
    mean[r] = (float)mu;
    rstd[r] = (float)rs;
    __m256 mv = set1((float)mu), rv = set1((float)rs);
    j = 0;
    for (; j + 8 <= d; j += 8) {
      __m256 xh = _mm256_mul_ps(_mm256_sub_ps(ld(xr + j), mv), rv);
      st(yr + j, _mm256_fmadd_ps(xh, ld(w + j), ld(b + j)));
    }
    if (j < d) {
      __m256i msk = tailMask(d - j);
      __m256 xh = _mm256_mul_ps(_mm256_sub_ps(ldm(xr + j, msk), mv), rv);
      stm(yr + j, msk, _mm256_fmadd_ps(xh, ldm(w + j, msk), ldm(b + j, msk)));
    }
  }
}

// Per row: pass 1 stores g = gy*w into gx and accumulates sum g, sum g*xhat (double) and the float
// block sums for gw, gb; pass 2 turns g into gx. (Reusing the stored g, rather than recomputing it,
// keeps g - mean(g) exact where it should cancel: the compiler may fuse a recomputed product.) Every 16 rows the float block sums are flushed into the double accumulators.
void layerNormBackwardRows(const float* x, const float* w, const float* mean, const float* rstd, const float* gy,
                           float* gx, double* gwAcc, double* gbAcc, float* scratch, int64_t rows, int64_t d) {
  float* gwF = scratch;
  float* gbF = scratch + d;
  fillImpl(scratch, 0.0f, 2 * d);
  const int64_t dv = d & ~(int64_t)7;
  const __m256i tm = tailMask(d - dv);
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * d, *gr = gy + r * d;
    float* outr = gx + r * d;
    __m256 mv = set1(mean[r]), rv = set1(rstd[r]);
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, q0 = s0, q1 = s0;
    int64_t j = 0;
    for (; j < dv; j += 8) {
      __m256 xh = _mm256_mul_ps(_mm256_sub_ps(ld(xr + j), mv), rv);
      __m256 gyv = ld(gr + j);
      __m256 g = _mm256_mul_ps(gyv, ld(w + j));
      st(outr + j, g);
      addd(s0, s1, g);
      addd(q0, q1, _mm256_mul_ps(g, xh));
      st(gwF + j, _mm256_fmadd_ps(gyv, xh, ld(gwF + j)));
      st(gbF + j, _mm256_add_ps(gyv, ld(gbF + j)));
    }
    if (j < d) {
      __m256 xh = _mm256_mul_ps(_mm256_sub_ps(ldm(xr + j, tm), mv), rv);
      __m256 gyv = ldm(gr + j, tm);
      __m256 g = _mm256_mul_ps(gyv, ldm(w + j, tm));
      stm(outr + j, tm, g);
      addd(s0, s1, g);
      addd(q0, q1, _mm256_mul_ps(g, xh));
      stm(gwF + j, tm, _mm256_fmadd_ps(gyv, xh, ldm(gwF + j, tm)));
      stm(gbF + j, tm, _mm256_add_ps(gyv, ldm(gbF + j, tm)));
    }
    __m256 mg = set1((float)(hsumd(_mm256_add_pd(s0, s1)) / (double)d));
    __m256 mgx = set1((float)(hsumd(_mm256_add_pd(q0, q1)) / (double)d));
    for (j = 0; j < dv; j += 8) {
      __m256 xh = _mm256_mul_ps(_mm256_sub_ps(ld(xr + j), mv), rv);
      __m256 g = ld(outr + j);
      st(outr + j, _mm256_mul_ps(rv, _mm256_fnmadd_ps(xh, mgx, _mm256_sub_ps(g, mg))));
    }
    if (j < d) {
      __m256 xh = _mm256_mul_ps(_mm256_sub_ps(ldm(xr + j, tm), mv), rv);
      __m256 g = ldm(outr + j, tm);
      stm(outr + j, tm, _mm256_mul_ps(rv, _mm256_fnmadd_ps(xh, mgx, _mm256_sub_ps(g, mg))));
    }
    if ((r & 15) == 15 || r == rows - 1) {
      colSum(gwAcc, gwF, d);
      colSum(gbAcc, gbF, d);
      fillImpl(scratch, 0.0f, 2 * d);
    }
  }
}

// ------------------------------------------------------------------ adamw
void adamw(float* p, const float* g, float* m, float* v, int64_t n, const float* k) {
  const __m256 b1 = set1(k[0]), ob1 = set1(k[1]), b2 = set1(k[2]), ob2 = set1(k[3]), decay = set1(k[4]),
               step = set1(k[5]), isb2 = set1(k[6]), eps = set1(k[7]);
  int64_t i = 0;
  auto one = [&](__m256 gv, __m256 mv, __m256 vv, __m256 pv, __m256* mo, __m256* vo) {
    mv = _mm256_fmadd_ps(ob1, gv, _mm256_mul_ps(b1, mv));
    vv = _mm256_fmadd_ps(ob2, _mm256_mul_ps(gv, gv), _mm256_mul_ps(b2, vv));
    __m256 den = _mm256_fmadd_ps(_mm256_sqrt_ps(vv), isb2, eps);
    *mo = mv;
    *vo = vv;
    return _mm256_fmsub_ps(pv, decay, _mm256_div_ps(_mm256_mul_ps(step, mv), den));
  };
  for (; i + 8 <= n; i += 8) {
    __m256 mo, vo;
    __m256 po = one(ld(g + i), ld(m + i), ld(v + i), ld(p + i), &mo, &vo);
    st(m + i, mo);
    st(v + i, vo);
    st(p + i, po);
  }
  if (i < n) {
    __m256i t = tailMask(n - i);
    __m256 mo, vo;
    __m256 po = one(ldm(g + i, t), ldm(m + i, t), ldm(v + i, t), ldm(p + i, t), &mo, &vo);
    stm(m + i, t, mo);
    stm(v + i, t, vo);
    stm(p + i, t, po);
  }
}

}  // namespace

const OpsTable table = {
    binary,      unary,           unaryBackward, axpy, fillImpl, sumSquares, maskedFill, dropout, sum, colSum,
    colMax,      argmax,          softmaxRows,   softmaxBackwardRows, crossEntropyRows, crossEntropyBackwardRows,
    layerNormRows, layerNormBackwardRows, adamw, colSumRows, transpose, dot,
};

}  // namespace avx2
}  // namespace simd
}  // namespace moelab
