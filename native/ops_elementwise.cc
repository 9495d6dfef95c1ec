// Layout and elementwise kernels: copyStrided, binary, binaryScalar, unary, unaryBackward, axpy,
// fill, sumSquares, maskedFill, dropout. Also home of the shared validation helpers (ops_simd.h,
// part 2), the portable elementwise loops and the generic OpsTable.
//
// Every entry point reads its arguments through napi_util.h / the helpers below and throws a JS
// error on a bad call before touching memory; then it splits the work across the thread pool and
// runs the row kernels of the active ISA (ops::kernels()).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cpu.h"
#include "args.h"
#include "ops_simd.h"
#include "registry.h"
#include "threadpool.h"

namespace moelab {

// ====================================================================== shared helpers
namespace ops {

const simd::OpsTable& kernels() {
  static const simd::OpsTable avx512 = [] {
    simd::OpsTable t = simd::avx2::table;
    if (activeIsa() == Isa::Avx512) simd::avx512::overrideTable(&t);
    return t;
  }();
  static const simd::OpsTable* t = activeIsa() == Isa::Generic ? &simd::generic::table
                                   : activeIsa() == Isa::Avx2  ? &simd::avx2::table
                                                               : &avx512;
  return *t;
}

Layout shapeArg(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  Span<int32_t> s = i32Arg(info, i, fn, "shape");
  if (s.length > (size_t)kMaxRank)
    throwRange(info.Env(), std::string(fn) + ": rank " + std::to_string(s.length) + " > 8");
  Layout l;
  l.rank = (int)s.length;
  bool empty = false;
  for (int k = 0; k < l.rank; k++) {
    if (s.data[k] < 0)
      throwRange(info.Env(), std::string(fn) + ": negative dimension " + std::to_string(s.data[k]) + " in shape");
    l.shape[k] = s.data[k];
    empty = empty || s.data[k] == 0;
  }
  l.total = empty ? 0 : 1;
  for (int k = 0; k < l.rank && !empty; k++) {
    if (l.total > ((int64_t)1 << 53) / l.shape[k])
      throwRange(info.Env(), std::string(fn) + ": shape has too many elements");
    l.total *= l.shape[k];
  }
  return l;
}

StridedOperand stridedArg(const Napi::CallbackInfo& info, size_t iOffset, size_t iStrides, const Layout& l,
                          int64_t length, const char* fn, const char* name, const char* offName,
                          const char* stridesName) {
  StridedOperand o;
  o.offset = dimArg(info, iOffset, fn, offName);
  Span<int32_t> st = i32Arg(info, iStrides, fn, stridesName);
  if (st.length != (size_t)l.rank)
    throwRange(info.Env(), std::string(fn) + ": '" + stridesName + "' has length " + std::to_string(st.length) +
                               ", shape has rank " + std::to_string(l.rank));
  for (int k = 0; k < l.rank; k++) o.strides[k] = st.data[k];
  if (l.total == 0) return o;  // touches nothing
  __int128 lo = o.offset, hi = o.offset;
  for (int k = 0; k < l.rank; k++) {
    __int128 span = (__int128)o.strides[k] * (l.shape[k] - 1);
    (span < 0 ? lo : hi) += span;
  }
  if (lo < 0 || hi >= (__int128)length)
    throwRange(info.Env(), std::string(fn) + ": '" + name + "' strides reach elements [" +
                               std::to_string((long long)lo) + ", " + std::to_string((long long)hi) +
                               "] outside an array of " + std::to_string(length));
  o.lo = (int64_t)lo;
  o.hi = (int64_t)hi + 1;
  return o;
}

bool injective(const Layout& l, const int64_t* strides) {
  int64_t st[kMaxRank], sh[kMaxRank];
  int m = 0;
  for (int k = 0; k < l.rank; k++) {
    if (l.shape[k] <= 1) continue;
    int64_t s = strides[k] < 0 ? -strides[k] : strides[k];
    int j = m++;
    while (j > 0 && st[j - 1] > s) {
      st[j] = st[j - 1];
      sh[j] = sh[j - 1];
      j--;
    }
    st[j] = s;
    sh[j] = l.shape[k];
  }
  __int128 span = 0;
  for (int k = 0; k < m; k++) {
    if ((__int128)st[k] <= span) return false;
    span += (__int128)st[k] * (sh[k] - 1);
  }
  return true;
}

}  // namespace ops

// ====================================================================== portable loops
namespace simd {
namespace generic {

namespace {
inline float maxS(float a, float b) { return a != a ? a : b != b ? b : a > b ? a : b; }
inline float minS(float a, float b) { return a != a ? a : b != b ? b : a < b ? a : b; }
template <BinaryOp OP>
inline float bopS(float a, float b) {
  return OP == BinaryOp::Add ? a + b : OP == BinaryOp::Sub ? a - b : OP == BinaryOp::Mul ? a * b : OP == BinaryOp::Div ? a / b : OP == BinaryOp::Max ? maxS(a, b) : minS(a, b);
}
template <BinaryOp OP>
void binaryT(const float* a, int64_t sa, const float* b, int64_t sb, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = bopS<OP>(a[i * sa], b[i * sb]);
}
inline double sigmoidD(double z) {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  double e = std::exp(z);
  return e / (1.0 + e);
}
const double kSqrt2OverPi = 0.7978845608028654, kGeluA = 0.044715, kInvSqrt2Pi = 0.3989422804014327;
inline double normCdfD(double x) { return 0.5 * std::erfc(-x * 0.7071067811865476); }
inline double geluTanhZ(double x) { return 2.0 * kSqrt2OverPi * (x + kGeluA * x * x * x); }
template <class F>
void map1(const float* x, float* y, int64_t n, F f) {
  for (int64_t i = 0; i < n; i++) y[i] = f(x[i]);
}
}  // namespace

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
    case UnaryOp::Neg: return map1(x, y, n, [](float v) { return -v; });
    case UnaryOp::Exp: return map1(x, y, n, [](float v) { return (float)std::exp((double)v); });
    case UnaryOp::Log: return map1(x, y, n, [](float v) { return (float)std::log((double)v); });
    case UnaryOp::Tanh: return map1(x, y, n, [](float v) { return (float)std::tanh((double)v); });
    case UnaryOp::GeluTanh: return map1(x, y, n, [](float v) { return (float)(v * sigmoidD(geluTanhZ(v))); });
    case UnaryOp::GeluErf: return map1(x, y, n, [](float v) { return (float)(v * normCdfD(v)); });
    case UnaryOp::Relu: return map1(x, y, n, [](float v) { return v <= 0.0f ? 0.0f : v; });
    case UnaryOp::Silu: return map1(x, y, n, [](float v) { return (float)(v * sigmoidD(v)); });
    case UnaryOp::Sigmoid: return map1(x, y, n, [](float v) { return (float)sigmoidD(v); });
    case UnaryOp::Sqrt: return map1(x, y, n, [](float v) { return std::sqrt(v); });
    default: return map1(x, y, n, [](float v) { return v * v; });
  }
}

void unaryBackward(UnaryOp op, const float* x, const float* y, const float* gy, float* gx, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    double g = gy[i], d;
    switch (op) {
      case UnaryOp::Neg: d = -1.0; break;
      case UnaryOp::Exp: d = y[i]; break;
      case UnaryOp::Log: d = 1.0 / x[i]; break;
      case UnaryOp::Tanh: d = 1.0 - (double)y[i] * y[i]; break;
      case UnaryOp::GeluTanh: {
        double v = x[i], z = geluTanhZ(v);
        d = sigmoidD(z) + 2.0 * v * sigmoidD(z) * sigmoidD(-z) * kSqrt2OverPi * (1.0 + 3.0 * kGeluA * v * v);
        break;
      }
      case UnaryOp::GeluErf: {
        double v = x[i];
        d = normCdfD(v) + v * kInvSqrt2Pi * std::exp(-0.5 * v * v);
        break;
      }
      case UnaryOp::Relu: d = x[i] > 0.0f ? 1.0 : 0.0; break;
      case UnaryOp::Silu: {
        double v = x[i];
        d = sigmoidD(v) + v * sigmoidD(v) * sigmoidD(-v);
        break;
      }
      case UnaryOp::Sigmoid: d = (double)y[i] * (1.0 - (double)y[i]); break;
      case UnaryOp::Sqrt: d = 1.0 / (2.0 * y[i]); break;
      default: d = 2.0 * x[i]; break;
    }
    gx[i] = (float)(g * d);
  }
}

void axpy(float alpha, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

void fill(float* x, float v, int64_t n) { std::fill(x, x + n, v); }

double sumSquares(const float* x, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += (double)x[i] * x[i];
    s1 += (double)x[i + 1] * x[i + 1];
    s2 += (double)x[i + 2] * x[i + 2];
    s3 += (double)x[i + 3] * x[i + 3];
  }
  for (; i < n; i++) s0 += (double)x[i] * x[i];
  return (s0 + s1) + (s2 + s3);
}

void maskedFill(const float* x, const uint8_t* mask, float v, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = mask[i] ? v : x[i];
}

void dropout(uint64_t thr, float scale, uint32_t seed, uint32_t start, const float* x, float* out, uint8_t* mask,
             int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    uint32_t h = hash32(hash32(start + (uint32_t)i) ^ seed);
    bool keep = (uint64_t)h >= thr;
    mask[i] = keep ? 1 : 0;
    out[i] = keep ? x[i] * scale : 0.0f;
  }
}

float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // 8 partial sums, so it vectorizes
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int u = 0; u < 8; u++) acc[u] += a[i + u] * b[i + u];
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

void transpose(const float* src, int64_t ss, float* dst, int64_t ds, int64_t R, int64_t C) {
  for (int64_t j0 = 0; j0 < C; j0 += 16)
    for (int64_t i = 0; i < R; i++)
      for (int64_t j = j0; j < std::min(C, j0 + 16); j++) dst[i * ds + j] = src[i + j * ss];
}

const OpsTable table = {
    binary,        unary,           unaryBackward, axpy,       fill,        sumSquares, maskedFill,
    dropout,       sum,             colSum,        colMax,     argmax,      softmaxRows, softmaxBackwardRows,
    crossEntropyRows, crossEntropyBackwardRows, layerNormRows, layerNormBackwardRows, adamw, colSumRows,
    transpose,     dot,
};

}  // namespace generic
}  // namespace simd

// ====================================================================== strided iteration
namespace {

using namespace ops;

// Up to 3 operands over one shape after dropping size-1 dims and merging dims that are
// contiguous for every operand. Operand strides are in elements.
struct Iter {
  int rank = 0, nops = 0;
  int64_t shape[kMaxRank];
  int64_t st[3][kMaxRank];
  int64_t off[3];
};

Iter makeIter(const Layout& l, int nops, const int64_t* const* strides, const int64_t* offsets) {
  Iter it;
  it.nops = nops;
  for (int o = 0; o < nops; o++) it.off[o] = offsets[o];
  for (int k = 0; k < l.rank; k++) {
    if (l.shape[k] == 1) continue;
    int r = it.rank;
    bool merge = r > 0;
    for (int o = 0; o < nops && merge; o++) merge = it.st[o][r - 1] == strides[o][k] * l.shape[k];
    if (merge) {
      it.shape[r - 1] *= l.shape[k];
      for (int o = 0; o < nops; o++) it.st[o][r - 1] = strides[o][k];
    } else {
      it.shape[r] = l.shape[k];
      for (int o = 0; o < nops; o++) it.st[o][r] = strides[o][k];
      it.rank++;
    }
  }
  if (it.rank == 0) {  // a single element
    it.rank = 1;
    it.shape[0] = 1;
    for (int o = 0; o < nops; o++) it.st[o][0] = 0;
  }
  return it;
}

// Calls f(offsets, len) for the runs along the innermost dim covering flat indices [b, e).
template <class F>
void runRange(const Iter& it, int64_t b, int64_t e, F&& f) {
  const int r = it.rank;
  int64_t idx[kMaxRank];
  int64_t rem = b;
  for (int k = r - 1; k >= 0; k--) {
    idx[k] = rem % it.shape[k];
    rem /= it.shape[k];
  }
  int64_t offs[3];
  for (int64_t pos = b; pos < e;) {
    for (int o = 0; o < it.nops; o++) {
      int64_t s = it.off[o];
      for (int k = 0; k < r; k++) s += idx[k] * it.st[o][k];
      offs[o] = s;
    }
    int64_t len = std::min(it.shape[r - 1] - idx[r - 1], e - pos);
    f(offs, len);
    pos += len;
    idx[r - 1] += len;
    for (int k = r - 1; k > 0 && idx[k] == it.shape[k]; k--) {
      idx[k] = 0;
      idx[k - 1]++;
    }
  }
}


void contiguousStrides(const Layout& l, int64_t* st) {
  int64_t s = 1;
  for (int k = l.rank - 1; k >= 0; k--) {
    st[k] = s;
    s *= std::max<int64_t>(l.shape[k], 1);
  }
}

// ---------------------------------------------------------------- copyStrided
Napi::Value CopyStridedNapi(const Napi::CallbackInfo& info) {
  const char* fn = "copyStrided";
  needArgs(info, 7, fn);
  Napi::Env env = info.Env();
  Layout l = shapeArg(info, 0, fn);
  auto src = f32Arg(info, 1, fn, "src");
  StridedOperand so = stridedArg(info, 2, 3, l, (int64_t)src.length, fn, "src", "srcOffset", "srcStrides");
  auto dst = f32Arg(info, 4, fn, "dst");
  StridedOperand dso = stridedArg(info, 5, 6, l, (int64_t)dst.length, fn, "dst", "dstOffset", "dstStrides");
  noOverlap(env, fn, region(src.data, so.lo, so.hi), "src", region(dst.data, dso.lo, dso.hi), "dst");
  if (l.total == 0) return env.Undefined();
  const int64_t* strides[2] = {dso.strides, so.strides};
  const int64_t offs[2] = {dso.offset, so.offset};
  Iter it = makeIter(l, 2, strides, offs);
  const float* s = src.data;
  float* d = dst.data;
  // 2-D transpose-like case (dst inner contiguous, src inner strided, src contiguous along the
  // next dim out): units of 64 dst rows (256 bytes of each source row per page visit), copied by the
  // transpose kernel in 8x8 register blocks.
  const int r = it.rank;
  if (r >= 2 && it.st[0][r - 1] == 1 && it.st[1][r - 1] != 1 && it.st[1][r - 2] == 1 && it.shape[r - 1] >= 16 &&
      it.shape[r - 2] >= 16) {
    const int64_t R = it.shape[r - 2], C = it.shape[r - 1];
    const int64_t dR = it.st[0][r - 2], sC = it.st[1][r - 1];
    const int64_t outer = l.total / (R * C);
    const int64_t tilesR = (R + 63) / 64;
    const auto& K = kernels();
    const bool par = injective(l, dso.strides);
    parallelFor(outer * tilesR, par ? std::max<int64_t>(1, kGrainCheap / (64 * C)) : outer * tilesR,
                [&](int64_t b, int64_t e) {
                  for (int64_t u = b; u < e; u++) {
                    int64_t o = u / tilesR, tr = (u % tilesR) * 64;
                    int64_t od = it.off[0], os = it.off[1], rem = o;
                    for (int k = r - 3; k >= 0; k--) {
                      int64_t ik = rem % it.shape[k];
                      rem /= it.shape[k];
                      od += ik * it.st[0][k];
                      os += ik * it.st[1][k];
                    }
                    K.transpose(s + os + tr, sC, d + od + tr * dR, dR, std::min<int64_t>(64, R - tr), C);
                  }
                });
    return env.Undefined();
  }
  const bool par = injective(l, dso.strides);
  parallelFor(l.total, par ? kGrainCheap : l.total, [&](int64_t b, int64_t e) {
    runRange(it, b, e, [&](const int64_t* o, int64_t len) {
      int64_t ds = it.st[0][it.rank - 1], ss = it.st[1][it.rank - 1];
      if (ds == 1 && ss == 1) {
        std::memcpy(d + o[0], s + o[1], (size_t)len * 4);
      } else {
        for (int64_t i = 0; i < len; i++) d[o[0] + i * ds] = s[o[1] + i * ss];
      }
    });
  });
  return env.Undefined();
}
MOELAB_EXPORT(copyStrided, CopyStridedNapi);

// An op code of family E (op_codes.h): an integer in [0, E::Count).
template <typename E>
E opArg(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  int64_t op = dimArg(info, i, fn, "op");
  if (op >= (int64_t)E::Count)
    throwRange(info.Env(), std::string(fn) + ": unknown op code " + std::to_string(op));
  return (E)op;
}

// ---------------------------------------------------------------- binary
Napi::Value BinaryNapi(const Napi::CallbackInfo& info) {
  const char* fn = "binary";
  needArgs(info, 9, fn);
  Napi::Env env = info.Env();
  const BinaryOp op = opArg<BinaryOp>(info, 0, fn);
  Layout l = shapeArg(info, 1, fn);
  auto a = f32Arg(info, 2, fn, "a");
  StridedOperand ao = stridedArg(info, 3, 4, l, (int64_t)a.length, fn, "a", "aOffset", "aStrides");
  auto b = f32Arg(info, 5, fn, "b");
  StridedOperand bo = stridedArg(info, 6, 7, l, (int64_t)b.length, fn, "b", "bOffset", "bStrides");
  auto out = f32Arg(info, 8, fn, "out");
  needLen(env, out, l.total, fn, "out");
  noOverlap(env, fn, region(a.data, ao.lo, ao.hi), "a", region(out.data, 0, l.total), "out");
  noOverlap(env, fn, region(b.data, bo.lo, bo.hi), "b", region(out.data, 0, l.total), "out");
  if (l.total == 0) return env.Undefined();
  int64_t ost[kMaxRank];
  contiguousStrides(l, ost);
  const int64_t* strides[3] = {ao.strides, bo.strides, ost};
  const int64_t offs[3] = {ao.offset, bo.offset, 0};
  Iter it = makeIter(l, 3, strides, offs);
  const auto& K = kernels();
  const float *pa = a.data, *pb = b.data;
  float* po = out.data;
  parallelFor(l.total, kGrainCheap, [&](int64_t b0, int64_t e0) {
    runRange(it, b0, e0, [&](const int64_t* o, int64_t len) {
      int64_t sa = it.st[0][it.rank - 1], sb = it.st[1][it.rank - 1];
      if ((sa == 0 || sa == 1) && (sb == 0 || sb == 1))
        K.binary(op, pa + o[0], sa, pb + o[1], sb, po + o[2], len);
      else
        simd::generic::binary(op, pa + o[0], sa, pb + o[1], sb, po + o[2], len);
    });
  });
  return env.Undefined();
}
MOELAB_EXPORT(binary, BinaryNapi);

Napi::Value BinaryScalarNapi(const Napi::CallbackInfo& info) {
  const char* fn = "binaryScalar";
  needArgs(info, 4, fn);
  Napi::Env env = info.Env();
  const BinaryOp op = opArg<BinaryOp>(info, 0, fn);
  auto x = f32Arg(info, 1, fn, "x");
  float s = (float)numArg(info, 2, fn, "s");
  auto out = f32Arg(info, 3, fn, "out");
  int64_t n = (int64_t)out.length;
  needLen(env, x, n, fn, "x");
  sameOrDisjoint(env, fn, x, "x", out, "out", n);
  const auto& K = kernels();
  parallelFor(n, kGrainCheap, [&](int64_t b, int64_t e) { K.binary(op, x.data + b, 1, &s, 0, out.data + b, e - b); });
  return env.Undefined();
}
MOELAB_EXPORT(binaryScalar, BinaryScalarNapi);

// ---------------------------------------------------------------- unary
bool cheapUnary(UnaryOp op) {
  return op == UnaryOp::Neg || op == UnaryOp::Relu || op == UnaryOp::Sqrt || op == UnaryOp::Square;
}
// The backward reads y (the forward output) for these, x for the others (neg reads neither).
bool unaryUsesY(UnaryOp op) {
  return op == UnaryOp::Exp || op == UnaryOp::Tanh || op == UnaryOp::Sigmoid || op == UnaryOp::Sqrt;
}

Napi::Value UnaryNapi(const Napi::CallbackInfo& info) {
  const char* fn = "unary";
  needArgs(info, 3, fn);
  Napi::Env env = info.Env();
  const UnaryOp op = opArg<UnaryOp>(info, 0, fn);
  auto x = f32Arg(info, 1, fn, "x");
  auto out = f32Arg(info, 2, fn, "out");
  int64_t n = (int64_t)out.length;
  needLen(env, x, n, fn, "x");
  sameOrDisjoint(env, fn, x, "x", out, "out", n);
  const auto& K = kernels();
  parallelFor(n, cheapUnary(op) ? kGrainCheap : kGrainHeavy,
              [&](int64_t b, int64_t e) { K.unary(op, x.data + b, out.data + b, e - b); });
  return env.Undefined();
}
MOELAB_EXPORT(unary, UnaryNapi);

Napi::Value UnaryBackwardNapi(const Napi::CallbackInfo& info) {
  const char* fn = "unaryBackward";
  needArgs(info, 5, fn);
  Napi::Env env = info.Env();
  const UnaryOp op = opArg<UnaryOp>(info, 0, fn);
  auto x = f32Arg(info, 1, fn, "x");
  auto y = f32Arg(info, 2, fn, "y");
  auto gy = f32Arg(info, 3, fn, "gy");
  auto gx = f32Arg(info, 4, fn, "gx");
  int64_t n = (int64_t)gx.length;
  needLen(env, gy, n, fn, "gy");
  noOverlap(env, fn, region(gy.data, 0, n), "gy", region(gx.data, 0, n), "gx");
  const float *px = nullptr, *py = nullptr;
  if (unaryUsesY(op)) {
    needLen(env, y, n, fn, "y");
    noOverlap(env, fn, region(y.data, 0, n), "y", region(gx.data, 0, n), "gx");
    py = y.data;
  } else if (op != UnaryOp::Neg) {
    needLen(env, x, n, fn, "x");
    noOverlap(env, fn, region(x.data, 0, n), "x", region(gx.data, 0, n), "gx");
    px = x.data;
  }
  const auto& K = kernels();
  parallelFor(n, cheapUnary(op) || op == UnaryOp::Exp || op == UnaryOp::Tanh || op == UnaryOp::Sigmoid ? kGrainCheap : kGrainHeavy,
              [&](int64_t b, int64_t e) {
                K.unaryBackward(op, px ? px + b : nullptr, py ? py + b : nullptr, gy.data + b, gx.data + b, e - b);
              });
  return env.Undefined();
}
MOELAB_EXPORT(unaryBackward, UnaryBackwardNapi);

// ---------------------------------------------------------------- axpy, fill, sumSquares
Napi::Value AxpyNapi(const Napi::CallbackInfo& info) {
  const char* fn = "axpy";
  needArgs(info, 3, fn);
  Napi::Env env = info.Env();
  float alpha = (float)numArg(info, 0, fn, "alpha");
  auto x = f32Arg(info, 1, fn, "x");
  auto y = f32Arg(info, 2, fn, "y");
  int64_t n = (int64_t)y.length;
  needLen(env, x, n, fn, "x");
  noOverlap(env, fn, region(x.data, 0, n), "x", region(y.data, 0, n), "y");
  const auto& K = kernels();
  parallelFor(n, kGrainCheap, [&](int64_t b, int64_t e) { K.axpy(alpha, x.data + b, y.data + b, e - b); });
  return env.Undefined();
}
MOELAB_EXPORT(axpy, AxpyNapi);

Napi::Value FillNapi(const Napi::CallbackInfo& info) {
  const char* fn = "fill";
  needArgs(info, 2, fn);
  auto x = f32Arg(info, 0, fn, "x");
  float v = (float)numArg(info, 1, fn, "value");
  const auto& K = kernels();
  parallelFor((int64_t)x.length, 4 * kGrainCheap, [&](int64_t b, int64_t e) { K.fill(x.data + b, v, e - b); });
  return info.Env().Undefined();
}
MOELAB_EXPORT(fill, FillNapi);

// Fixed 64k-element blocks summed in order: the result does not depend on the thread count.
Napi::Value SumSquaresNapi(const Napi::CallbackInfo& info) {
  const char* fn = "sumSquares";
  needArgs(info, 1, fn);
  auto x = f32Arg(info, 0, fn, "x");
  const int64_t n = (int64_t)x.length, B = 65536, nb = (n + B - 1) / B;
  std::vector<double> part((size_t)std::max<int64_t>(nb, 1), 0.0);
  const auto& K = kernels();
  parallelFor(nb, 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; k++) part[k] = K.sumSquares(x.data + k * B, std::min(B, n - k * B));
  });
  double s = 0;
  for (int64_t k = 0; k < nb; k++) s += part[k];
  return Napi::Number::New(info.Env(), s);
}
MOELAB_EXPORT(sumSquares, SumSquaresNapi);

// ---------------------------------------------------------------- maskedFill, dropout
Napi::Value MaskedFillNapi(const Napi::CallbackInfo& info) {
  const char* fn = "maskedFill";
  needArgs(info, 4, fn);
  Napi::Env env = info.Env();
  auto x = f32Arg(info, 0, fn, "x");
  auto mask = u8Arg(info, 1, fn, "mask");
  float v = (float)numArg(info, 2, fn, "value");
  auto out = f32Arg(info, 3, fn, "out");
  int64_t n = (int64_t)out.length;
  needLen(env, x, n, fn, "x");
  needLen(env, mask, n, fn, "mask");
  sameOrDisjoint(env, fn, x, "x", out, "out", n);
  noOverlap(env, fn, region(mask.data, 0, n), "mask", region(out.data, 0, n), "out");
  const auto& K = kernels();
  parallelFor(n, kGrainCheap,
              [&](int64_t b, int64_t e) { K.maskedFill(x.data + b, mask.data + b, v, out.data + b, e - b); });
  return env.Undefined();
}
MOELAB_EXPORT(maskedFill, MaskedFillNapi);

Napi::Value DropoutNapi(const Napi::CallbackInfo& info) {
  const char* fn = "dropout";
  needArgs(info, 5, fn);
  Napi::Env env = info.Env();
  double p = numArg(info, 0, fn, "p");
  if (!(p >= 0.0 && p <= 1.0)) throwRange(env, "dropout: p must be in [0, 1]");
  double sd = numArg(info, 1, fn, "seed");
  if (!(sd >= 0.0 && sd <= 4294967295.0 && sd == std::floor(sd)))
    throwRange(env, "dropout: seed must be an integer in [0, 2^32)");
  auto x = f32Arg(info, 2, fn, "x");
  auto out = f32Arg(info, 3, fn, "out");
  auto mask = u8Arg(info, 4, fn, "mask");
  int64_t n = (int64_t)out.length;
  needLen(env, x, n, fn, "x");
  needLen(env, mask, n, fn, "mask");
  noOverlap(env, fn, region(x.data, 0, n), "x", region(out.data, 0, n), "out");
  noOverlap(env, fn, region(mask.data, 0, n), "mask", region(out.data, 0, n), "out");
  noOverlap(env, fn, region(mask.data, 0, n), "mask", region(x.data, 0, n), "x");
  const uint64_t thr = (uint64_t)std::ceil(p * 4294967296.0);  // keep iff hash >= p * 2^32
  const float scale = p < 1.0 ? (float)(1.0 / (1.0 - p)) : 0.0f;
  const uint32_t seed = (uint32_t)sd;
  const auto& K = kernels();
  parallelFor(n, kGrainCheap, [&](int64_t b, int64_t e) {
    K.dropout(thr, scale, seed, (uint32_t)b, x.data + b, out.data + b, mask.data + b, e - b);
  });
  return env.Undefined();
}
MOELAB_EXPORT(dropout, DropoutNapi);

}  // namespace
}  // namespace moelab
