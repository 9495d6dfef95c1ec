// Reductions: reduce (sum / max with argmax over the middle axis of [outer, n, inner]), sumInto
// (broadcast-gradient reduction into a strided destination), softmax and its backward. Sums are
// accumulated in double.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "args.h"
#include "ops_simd.h"
#include "registry.h"
#include "threadpool.h"

namespace moelab {

// ====================================================================== portable loops
namespace simd {
namespace generic {

namespace {
inline bool betterS(float v, float best) { return v > best || (v != v && best == best); }
}  // namespace

double sum(const float* x, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += x[i];
    s1 += x[i + 1];
    s2 += x[i + 2];
    s3 += x[i + 3];
  }
  for (; i < n; i++) s0 += x[i];
  return (s0 + s1) + (s2 + s3);
}

void colSum(double* acc, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; i++) acc[i] += x[i];
}

void colSumRows(double* acc, const float* x, int64_t ld, int64_t rows, int64_t n) {
  for (int64_t i = 0; i < rows; i++) colSum(acc, x + i * ld, n);
}

void colMax(float* best, int32_t* arg, const float* x, int64_t n, int32_t i) {
  for (int64_t j = 0; j < n; j++) {
    if (betterS(x[j], best[j])) {
      best[j] = x[j];
      arg[j] = i;
    }
  }
}

int64_t argmax(const float* x, int64_t n, float* maxOut) {
  float best = x[0];
  int64_t arg = 0;
  for (int64_t i = 1; i < n; i++) {
    if (betterS(x[i], best)) {
      best = x[i];
      arg = i;
    }
  }
  *maxOut = best;
  return arg;
}

void softmaxRows(const float* x, float* y, int64_t rows, int64_t n, bool log) {
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    float m = -INFINITY;
    for (int64_t j = 0; j < n; j++) m = xr[j] > m ? xr[j] : m;
    double s = 0;
    for (int64_t j = 0; j < n; j++) s += std::exp((double)xr[j] - m);
    double ls = std::log(s);
    for (int64_t j = 0; j < n; j++)
      yr[j] = log ? (float)((double)xr[j] - m - ls) : (float)(std::exp((double)xr[j] - m) / s);
  }
}

void softmaxBackwardRows(const float* y, const float* gy, float* gx, int64_t rows, int64_t n, bool log) {
  for (int64_t r = 0; r < rows; r++) {
    const float *yr = y + r * n, *gr = gy + r * n;
    float* outr = gx + r * n;
    double s = 0;
    for (int64_t j = 0; j < n; j++) s += log ? (double)gr[j] : (double)gr[j] * yr[j];
    for (int64_t j = 0; j < n; j++)
      outr[j] = log ? (float)(gr[j] - std::exp((double)yr[j]) * s) : (float)(yr[j] * (gr[j] - s));
  }
}

}  // namespace generic
}  // namespace simd

namespace {

using namespace ops;

constexpr int64_t kColBlock = 512;  // columns per unit for column reductions (double acc on the stack)

// ---------------------------------------------------------------- reduce
Napi::Value ReduceNapi(const Napi::CallbackInfo& info) {
  const char* fn = "reduce";
  needArgs(info, 7, fn);
  Napi::Env env = info.Env();
  const int64_t code = dimArg(info, 0, fn, "op");
  if (code >= (int64_t)ReduceOp::Count) throwRange(env, "reduce: unknown op code " + std::to_string(code));
  const ReduceOp op = (ReduceOp)code;
  int64_t outer = dimArg(info, 1, fn, "outer"), n = dimArg(info, 2, fn, "n"), inner = dimArg(info, 3, fn, "inner");
  auto x = f32Arg(info, 4, fn, "x");
  auto out = f32Arg(info, 5, fn, "out");
  auto arg = i32OptArg(info, 6, fn, "argIdx");
  const int64_t oi = checkedMul(env, fn, outer, inner), total = checkedMul(env, fn, oi, n);
  needLen(env, x, total, fn, "x");
  needLen(env, out, oi, fn, "out");
  noOverlap(env, fn, region(x.data, 0, total), "x", region(out.data, 0, oi), "out");
  const bool isMax = op == ReduceOp::Max;
  int32_t* parg = nullptr;
  if (isMax && arg.data) {
    needLen(env, arg, oi, fn, "argIdx");
    noOverlap(env, fn, region(arg.data, 0, oi), "argIdx", region(x.data, 0, total), "x");
    noOverlap(env, fn, region(arg.data, 0, oi), "argIdx", region(out.data, 0, oi), "out");
    parg = arg.data;
  }
  if (oi == 0) return env.Undefined();
  if (isMax && n == 0) throwRange(env, "reduce: max over an empty axis");
  if (isMax && n > 2147483647) throwRange(env, "reduce: axis too long for int32 indices");
  const auto& K = kernels();
  const float* px = x.data;
  float* po = out.data;
  if (inner == 1) {
    parallelFor(outer, std::max<int64_t>(1, kGrainCheap / std::max<int64_t>(n, 1)), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; o++) {
        if (!isMax) {
          po[o] = (float)K.sum(px + o * n, n);
        } else {
          float m;
          int64_t a = K.argmax(px + o * n, n, &m);
          po[o] = m;
          if (parg) parg[o] = (int32_t)a;
        }
      }
    });
    return env.Undefined();
  }
  const int64_t nb = (inner + kColBlock - 1) / kColBlock, units = outer * nb;
  const int64_t work = std::max<int64_t>(1, n * std::min(inner, kColBlock));
  parallelFor(units, std::max<int64_t>(1, kGrainCheap / work), [&](int64_t b, int64_t e) {
    double acc[kColBlock];
    float best[kColBlock];
    int32_t bi[kColBlock];
    for (int64_t u = b; u < e; u++) {
      const int64_t o = u / nb, j0 = (u % nb) * kColBlock, len = std::min(kColBlock, inner - j0);
      const float* base = px + o * n * inner + j0;
      float* dst = po + o * inner + j0;
      if (!isMax) {
        std::fill(acc, acc + len, 0.0);
        K.colSumRows(acc, base, inner, n, len);
        for (int64_t j = 0; j < len; j++) dst[j] = (float)acc[j];
      } else {
        std::copy(base, base + len, best);
        std::fill(bi, bi + len, 0);
        for (int64_t i = 1; i < n; i++) K.colMax(best, bi, base + i * inner, len, (int32_t)i);
        std::copy(best, best + len, dst);
        if (parg) std::copy(bi, bi + len, parg + o * inner + j0);
      }
    }
  });
  return env.Undefined();
}
MOELAB_EXPORT(reduce, ReduceNapi);

// ---------------------------------------------------------------- sumInto
// After merging contiguous dims, the innermost dim (src stride 1) is either kept (dst stride != 0:
// summed as vectors of double accumulators) or reduced (dst stride 0: row sums). The outer dims
// split into kept ones (one unit of work each, times column blocks) and reduced ones (looped
// inside a unit). Units run in parallel only when the kept dims map to distinct dst elements.
Napi::Value SumIntoNapi(const Napi::CallbackInfo& info) {
  const char* fn = "sumInto";
  needArgs(info, 5, fn);
  Napi::Env env = info.Env();
  Layout l = shapeArg(info, 0, fn);
  auto src = f32Arg(info, 1, fn, "src");
  needLen(env, src, l.total, fn, "src");
  auto dst = f32Arg(info, 2, fn, "dst");
  StridedOperand d = stridedArg(info, 3, 4, l, (int64_t)dst.length, fn, "dst", "dstOffset", "dstStrides");
  noOverlap(env, fn, region(src.data, 0, l.total), "src", region(dst.data, d.lo, d.hi), "dst");
  if (l.total == 0) return env.Undefined();

  // merge dims (src contiguous)
  int rank = 0;
  int64_t shape[kMaxRank], ss[kMaxRank], ds[kMaxRank];
  {
    int64_t cs[kMaxRank], s = 1;
    for (int k = l.rank - 1; k >= 0; k--) {
      cs[k] = s;
      s *= l.shape[k];
    }
    for (int k = 0; k < l.rank; k++) {
      if (l.shape[k] == 1) continue;
      if (rank > 0 && ss[rank - 1] == cs[k] * l.shape[k] && ds[rank - 1] == d.strides[k] * l.shape[k]) {
        shape[rank - 1] *= l.shape[k];
        ss[rank - 1] = cs[k];
        ds[rank - 1] = d.strides[k];
      } else {
        shape[rank] = l.shape[k];
        ss[rank] = cs[k];
        ds[rank] = d.strides[k];
        rank++;
      }
    }
    if (rank == 0) {
      rank = 1;
      shape[0] = 1;
      ss[0] = 1;
      ds[0] = 0;
    }
  }
  const int64_t W = shape[rank - 1], dW = ds[rank - 1];
  const bool innerKept = dW != 0;
  int nk = 0, nr = 0;
  int64_t kShape[kMaxRank], kSs[kMaxRank], kDs[kMaxRank], rShape[kMaxRank], rSs[kMaxRank];
  int64_t keptCount = 1, redCount = 1;
  for (int k = 0; k < rank - 1; k++) {
    if (ds[k] != 0) {
      kShape[nk] = shape[k], kSs[nk] = ss[k], kDs[nk] = ds[k], nk++;
      keptCount *= shape[k];
    } else {
      rShape[nr] = shape[k], rSs[nr] = ss[k], nr++;
      redCount *= shape[k];
    }
  }
  // injectivity of the kept dims (inner included when kept)
  Layout kl;
  int64_t kst[kMaxRank];
  kl.rank = nk;
  for (int k = 0; k < nk; k++) kl.shape[k] = kShape[k], kst[k] = kDs[k];
  if (innerKept) kl.shape[kl.rank] = W, kst[kl.rank] = dW, kl.rank++;
  const bool par = injective(kl, kst);

  const int64_t nb = innerKept ? (W + kColBlock - 1) / kColBlock : 1, units = keptCount * nb;
  const int64_t work = std::max<int64_t>(1, redCount * (innerKept ? std::min(W, kColBlock) : W));
  const auto& K = kernels();
  const float* ps = src.data;
  float* pd = dst.data;
  parallelFor(units, par ? std::max<int64_t>(1, kGrainCheap / work) : units, [&](int64_t b, int64_t e) {
    double acc[kColBlock];
    for (int64_t u = b; u < e; u++) {
      int64_t kidx = u / nb, j0 = (u % nb) * kColBlock;
      int64_t sBase = 0, dBase = d.offset;
      for (int k = nk - 1; k >= 0; k--) {
        int64_t i = kidx % kShape[k];
        kidx /= kShape[k];
        sBase += i * kSs[k];
        dBase += i * kDs[k];
      }
      const int64_t len = innerKept ? std::min(kColBlock, W - j0) : W;
      double tot = 0;
      if (innerKept) std::fill(acc, acc + len, 0.0);
      int64_t ridx[kMaxRank] = {};
      int64_t rOff = 0;
      // with the inner dim kept, the innermost reduced dim goes to colSumRows in one call
      const int nro = innerKept && nr > 0 ? nr - 1 : nr;
      const int64_t lastRows = innerKept && nr > 0 ? rShape[nr - 1] : 1, lastLd = innerKept && nr > 0 ? rSs[nr - 1] : 0;
      for (int64_t q = 0; q < redCount / lastRows; q++) {
        if (innerKept)
          K.colSumRows(acc, ps + sBase + rOff + j0, lastLd, lastRows, len);
        else
          tot += K.sum(ps + sBase + rOff, W);
        for (int k = nro - 1; k >= 0; k--) {  // odometer over the (other) reduced dims
          rOff += rSs[k];
          if (++ridx[k] < rShape[k]) break;
          rOff -= rSs[k] * rShape[k];
          ridx[k] = 0;
        }
      }
      if (innerKept) {
        for (int64_t j = 0; j < len; j++) {
          float* t = pd + dBase + (j0 + j) * dW;
          *t = (float)((double)*t + acc[j]);
        }
      } else {
        pd[dBase] = (float)((double)pd[dBase] + tot);
      }
    }
  });
  return env.Undefined();
}
MOELAB_EXPORT(sumInto, SumIntoNapi);

// ---------------------------------------------------------------- softmax
Napi::Value SoftmaxNapi(const Napi::CallbackInfo& info) {
  const char* fn = "softmax";
  needArgs(info, 5, fn);
  Napi::Env env = info.Env();
  int64_t rows = dimArg(info, 0, fn, "rows"), n = dimArg(info, 1, fn, "n");
  bool log = boolArg(info, 4, fn, "log");
  const int64_t total = checkedMul(env, fn, rows, n);
  const char* names[] = {"x", "y"};
  Span<float> arr[2];
  f32Args(info, 2, fn, names, {total, total}, arr);
  writtenApart(env, fn, arr, names, 2, 1);
  const Span<float> x = arr[0], y = arr[1];
  if (total == 0) return env.Undefined();
  const auto& K = kernels();
  parallelFor(rows, std::max<int64_t>(1, kGrainHeavy / n), [&](int64_t b, int64_t e) {
    K.softmaxRows(x.data + b * n, y.data + b * n, e - b, n, log);
  });
  return env.Undefined();
}
MOELAB_EXPORT(softmax, SoftmaxNapi);

Napi::Value SoftmaxBackwardNapi(const Napi::CallbackInfo& info) {
  const char* fn = "softmaxBackward";
  needArgs(info, 6, fn);
  Napi::Env env = info.Env();
  int64_t rows = dimArg(info, 0, fn, "rows"), n = dimArg(info, 1, fn, "n");
  bool log = boolArg(info, 5, fn, "log");
  const int64_t total = checkedMul(env, fn, rows, n);
  const char* names[] = {"y", "gy", "gx"};
  Span<float> arr[3];
  f32Args(info, 2, fn, names, {total, total, total}, arr);
  writtenApart(env, fn, arr, names, 3, 2);
  const Span<float> y = arr[0], gy = arr[1], gx = arr[2];
  if (total == 0) return env.Undefined();
  const auto& K = kernels();
  parallelFor(rows, std::max<int64_t>(1, (log ? kGrainHeavy : kGrainCheap) / n), [&](int64_t b, int64_t e) {
    K.softmaxBackwardRows(y.data + b * n, gy.data + b * n, gx.data + b * n, e - b, n, log);
  });
  return env.Undefined();
}
MOELAB_EXPORT(softmaxBackward, SoftmaxBackwardNapi);

}  // namespace
}  // namespace moelab
