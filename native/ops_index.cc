// Indexing kernels: row gather / scatter-add, last-axis gather / scatter-add, top-k, stable counting
// sort and the weighted embedding bag with its backward. All memory-bound; every index is checked
// (serially, before any thread starts) so a bad id throws instead of touching memory.
// Accumulating kernels split work so no two threads write the same element and each element sums its
// contributions in input order (results do not depend on the thread count).
#include "args.h"
#include "ops_simd.h"
#include "registry.h"
#include "threadpool.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <vector>

namespace moelab {
namespace {

// Grain (items per chunk) so each chunk moves at least ~32K elements.
int64_t grainFor(int64_t perItem) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, perItem)); }

// Runs body(c0, c1, r0, r1) so that threads own disjoint parts of a [dstRows, d] destination:
// column ranges [c0, c1) (multiples of 16 floats) for wide rows, row ranges [r0, r1) otherwise.
// work ~ elements touched, to decide whether threading pays.
template <typename Body>
void splitDestination(int64_t work, int64_t d, int64_t dstRows, const Body& body) {
  const bool wide = d >= 64;
  parallelRun(work >= 65536 ? threads() : 1, [&](int t, int nt) {
    if (nt == 1) {
      body(0, d, 0, dstRows);
    } else if (wide) {
      int64_t c0 = (d * t / nt) & ~int64_t(15), c1 = t + 1 == nt ? d : (d * (t + 1) / nt) & ~int64_t(15);
      if (c0 < c1) body(c0, c1, 0, dstRows);
    } else {
      body(0, d, dstRows * t / nt, dstRows * (t + 1) / nt);
    }
  });
}

// ------------------------------------------------------------------ rows

// Of a and b one is written (a when aWritten): it must overlap neither the other nor the indices.
void oneWritten(const Napi::Env& env, const char* fn, const Span<float>& a, const char* an, const Span<float>& b,
                const char* bn, bool aWritten, const Span<int32_t>& idx, const char* idxName) {
  noOverlap(env, fn, a, an, b, bn);
  noOverlap(env, fn, aWritten ? a : b, aWritten ? an : bn, idx, idxName);
}

// indexSelect(n, d, table, ids, out) and indexAdd(n, d, ids, src, dst) move rows between a table
// [rows, d] (rows = its length / d) and n dense rows [n, d] addressed by ids [n] in [0, rows).
struct RowsArgs {
  int64_t n, d, rows;
  Span<float> table;   // [rows, d]: read by indexSelect, accumulated by indexAdd
  Span<int32_t> ids;   // [n]
  Span<float> dense;   // [n, d]: written by indexSelect, read by indexAdd
};

RowsArgs rowsArgs(const Napi::CallbackInfo& info, const char* fn, size_t iTable, size_t iIds, size_t iDense,
                  const char* tableName, const char* denseName, bool tableWritten) {
  Napi::Env env = info.Env();
  needArgs(info, 5, fn);
  RowsArgs A;
  A.n = dimArg(info, 0, fn, "n");
  A.d = dimArg(info, 1, fn, "d");
  A.table = f32Arg(info, iTable, fn, tableName);
  A.ids = i32Arg(info, iIds, fn, "ids");
  A.dense = f32Arg(info, iDense, fn, denseName);
  needLen(env, A.ids, A.n, fn, "ids");
  needLen(env, A.dense, checkedProd(env, fn, {A.n, A.d}), fn, denseName);
  oneWritten(env, fn, A.table, tableName, A.dense, denseName, tableWritten, A.ids, "ids");
  A.rows = A.d ? (int64_t)A.table.length / A.d : 0;
  if (A.n && A.d) idsInRange(env, fn, "ids", A.ids.data, A.n, A.rows);
  return A;
}

// out[i, :] = table[ids[i], :]
void indexSelect(const RowsArgs& A) {
  const int64_t n = A.n, d = A.d;
  if (n == 0 || d == 0) return;
  const float* T = A.table.data;
  const int32_t* I = A.ids.data;
  float* O = A.dense.data;
  parallelFor(n, grainFor(d), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) std::memcpy(O + i * d, T + (int64_t)I[i] * d, sizeof(float) * d);
  });
}

// dst[ids[i], :] += src[i, :], each destination row summed in input order
void indexAdd(const RowsArgs& A) {
  const int64_t n = A.n, d = A.d, rows = A.rows;
  if (n == 0 || d == 0) return;
  const int32_t* I = A.ids.data;
  const float* S = A.dense.data;
  float* D = A.table.data;
  splitDestination(n * d, d, rows, [&](int64_t c0, int64_t c1, int64_t r0, int64_t r1) {
    for (int64_t i = 0; i < n; i++) {
      const int64_t id = I[i];
      if (id < r0 || id >= r1) continue;
      float* o = D + id * d;
      const float* s = S + i * d;
      for (int64_t c = c0; c < c1; c++) o[c] += s[c];
    }
  });
}

Napi::Value IndexSelectNapi(const Napi::CallbackInfo& info) {
  indexSelect(rowsArgs(info, "indexSelect", 2, 3, 4, "table", "out", false));
  return info.Env().Undefined();
}

Napi::Value IndexAddNapi(const Napi::CallbackInfo& info) {
  indexAdd(rowsArgs(info, "indexAdd", 4, 2, 3, "dst", "src", true));
  return info.Env().Undefined();
}

// ------------------------------------------------------------------ last axis

// gather(rows, n, k, x, idx, out) and scatterAdd(rows, n, k, idx, src, dst) relate a dense
// [rows, n] array and k picked entries per row [rows, k] through idx [rows, k] in [0, n).
struct LastAxisArgs {
  int64_t rows, n, k;
  Span<float> dense;   // [rows, n]: read by gather, accumulated by scatterAdd
  Span<int32_t> idx;   // [rows, k]
  Span<float> picked;  // [rows, k]: written by gather, read by scatterAdd
};

LastAxisArgs lastAxisArgs(const Napi::CallbackInfo& info, const char* fn, size_t iDense, size_t iIdx,
                          size_t iPicked, const char* denseName, const char* pickedName, bool denseWritten) {
  Napi::Env env = info.Env();
  needArgs(info, 6, fn);
  LastAxisArgs A;
  A.rows = dimArg(info, 0, fn, "rows");
  A.n = dimArg(info, 1, fn, "n");
  A.k = dimArg(info, 2, fn, "k");
  A.dense = f32Arg(info, iDense, fn, denseName);
  A.idx = i32Arg(info, iIdx, fn, "idx");
  A.picked = f32Arg(info, iPicked, fn, pickedName);
  needLen(env, A.dense, checkedProd(env, fn, {A.rows, A.n}), fn, denseName);
  needLen(env, A.idx, checkedProd(env, fn, {A.rows, A.k}), fn, "idx");
  needLen(env, A.picked, checkedProd(env, fn, {A.rows, A.k}), fn, pickedName);
  oneWritten(env, fn, A.dense, denseName, A.picked, pickedName, denseWritten, A.idx, "idx");
  idsInRange(env, fn, "idx", A.idx.data, A.rows * A.k, A.n);
  return A;
}

// out[r, j] = x[r, idx[r, j]]
void gather(const LastAxisArgs& A) {
  const int64_t rows = A.rows, n = A.n, k = A.k;
  if (rows * k == 0) return;
  const float* X = A.dense.data;
  const int32_t* I = A.idx.data;
  float* O = A.picked.data;
  parallelFor(rows, grainFor(k), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++)
      for (int64_t j = 0; j < k; j++) O[r * k + j] = X[r * n + I[r * k + j]];
  });
}

// dst[r, idx[r, j]] += src[r, j]
void scatterAdd(const LastAxisArgs& A) {
  const int64_t rows = A.rows, n = A.n, k = A.k;
  if (rows * k == 0) return;
  const float* S = A.picked.data;
  const int32_t* I = A.idx.data;
  float* D = A.dense.data;
  parallelFor(rows, grainFor(k), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++)
      for (int64_t j = 0; j < k; j++) D[r * n + I[r * k + j]] += S[r * k + j];
  });
}

Napi::Value GatherNapi(const Napi::CallbackInfo& info) {
  gather(lastAxisArgs(info, "gather", 3, 4, 5, "x", "out", false));
  return info.Env().Undefined();
}

Napi::Value ScatterAddNapi(const Napi::CallbackInfo& info) {
  scatterAdd(lastAxisArgs(info, "scatterAdd", 5, 3, 4, "dst", "src", true));
  return info.Env().Undefined();
}

// ------------------------------------------------------------------ top-k

// Ranking key: larger key ranks first. Value order maps onto unsigned order (-0 as +0, every NaN
// above +inf), and the low word is ~index so equal values keep the lower index first.
inline uint64_t rankKey(float v, uint32_t i) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  b = (b << 1) == 0 ? 0 : b;                                    // -0 -> +0
  uint32_t key = b ^ ((uint32_t)((int32_t)b >> 31) | 0x80000000u);  // branch-free total order
  key = (b & 0x7fffffffu) > 0x7f800000u ? 0xffffffffu : key;    // NaN above +inf
  return ((uint64_t)key << 32) | (uint32_t)~i;
}

Napi::Value TopkNapi(const Napi::CallbackInfo& info) {
  const char* fn = "topk";
  Napi::Env env = info.Env();
  needArgs(info, 6, fn);
  int64_t rows = dimArg(info, 0, fn, "rows"), n = dimArg(info, 1, fn, "n"), k = dimArg(info, 2, fn, "k");
  auto x = f32Arg(info, 3, fn, "x");
  auto vals = f32Arg(info, 4, fn, "vals");
  auto idx = i32Arg(info, 5, fn, "idx");
  if (k > n) throwRange(env, std::string(fn) + ": k (" + std::to_string(k) + ") > n (" + std::to_string(n) + ")");
  if (n > 0x7fffffff) throwRange(env, std::string(fn) + ": n too large");
  needLen(env, x, checkedProd(env, fn, {rows, n}), fn, "x");
  needLen(env, vals, checkedProd(env, fn, {rows, k}), fn, "vals");
  needLen(env, idx, checkedProd(env, fn, {rows, k}), fn, "idx");
  noOverlap(env, fn, vals, "vals", x, "x");
  noOverlap(env, fn, idx, "idx", x, "x");
  noOverlap(env, fn, vals, "vals", idx, "idx");
  if (rows * k == 0) return env.Undefined();
  const float* X = x.data;
  float* V = vals.data;
  int32_t* I = idx.data;
  // Small k: a sorted buffer of the best k so far; large k: partial_sort of all keys.
  const bool small = k <= 32;
  // Per-thread key buffers, allocated here so an allocation failure throws on the JS thread.
  const int64_t len = small ? k : n;
  const bool par = rows >= 2 * grainFor(n);
  std::vector<uint64_t> bufs = scratch<uint64_t>(fn, "top-k keys", (par ? threads() : 1) * len);
  parallelRun(par ? threads() : 1, [&, n, k, len](int t, int nt) {  // n, k by value: no reloads in the inner loops
    uint64_t* buf = bufs.data() + t * len;
    const int64_t b = rows * t / nt, e = rows * (t + 1) / nt;
    for (int64_t r = b; r < e; r++) {
      const float* xr = X + r * n;
      if (small) {
        // buf holds the best k keys so far, descending; 0 ranks below every real key. A key that
        // beats the k-th bubbles in with branch-free max/min steps.
        std::fill(buf, buf + k, 0);
        uint64_t* bp = buf;
        for (int64_t i = 0; i < n; i++) {
          uint64_t c = rankKey(xr[i], (uint32_t)i);
          if (c <= bp[k - 1]) continue;
          for (int64_t j = 0; j < k; j++) {
            const uint64_t cur = bp[j];
            bp[j] = cur > c ? cur : c;
            c = cur > c ? c : cur;
          }
        }
      } else {
        for (int64_t i = 0; i < n; i++) buf[i] = rankKey(xr[i], (uint32_t)i);
        std::partial_sort(buf, buf + k, buf + n, std::greater<uint64_t>());
      }
      for (int64_t j = 0; j < k; j++) {
        const int32_t i = (int32_t)~(uint32_t)buf[j];
        I[r * k + j] = i;
        V[r * k + j] = xr[i];
      }
    }
  });
  return env.Undefined();
}

// ------------------------------------------------------------------ counting sort

Napi::Value ArgsortIntNapi(const Napi::CallbackInfo& info) {
  const char* fn = "argsortInt";
  Napi::Env env = info.Env();
  needArgs(info, 5, fn);
  int64_t n = dimArg(info, 0, fn, "n");
  auto keys = i32Arg(info, 1, fn, "keys");
  int64_t numKeys = dimArg(info, 2, fn, "numKeys");
  auto order = i32Arg(info, 3, fn, "order");
  auto counts = i32Arg(info, 4, fn, "counts");
  if (n > 0x7fffffff) throwRange(env, std::string(fn) + ": n too large");
  needLen(env, keys, n, fn, "keys");
  needLen(env, order, n, fn, "order");
  needLen(env, counts, numKeys, fn, "counts");
  noOverlap(env, fn, order, "order", keys, "keys");
  noOverlap(env, fn, counts, "counts", keys, "keys");
  noOverlap(env, fn, order, "order", counts, "counts");
  const int32_t* K = keys.data;
  idsInRange(env, fn, "keys", K, n, numKeys);
  int32_t* C = counts.data;
  std::fill(C, C + numKeys, 0);
  for (int64_t i = 0; i < n; i++) C[K[i]]++;
  thread_local std::vector<int32_t> next;
  next.resize(numKeys);
  int32_t run = 0;
  for (int64_t c = 0; c < numKeys; c++) {
    next[c] = run;
    run += C[c];
  }
  int32_t* O = order.data;
  for (int64_t i = 0; i < n; i++) O[next[K[i]]++] = (int32_t)i;
  return env.Undefined();
}

// ------------------------------------------------------------------ embedding bag

// Arguments 0..5 shared by embeddingBag and embeddingBagBackward: (bags, per, d, table [rows, d],
// ids [bags*per] in [0, rows), weights [bags*per]); rows = table length / d.
struct BagArgs {
  int64_t bags, per, d, ne, maxId;  // ne = bags*per entries; maxId = largest id (-1 if none)
  Span<float> table;
  Span<int32_t> ids;
  Span<float> weights;
};

BagArgs bagArgs(const Napi::CallbackInfo& info, const char* fn, size_t nargs) {
  Napi::Env env = info.Env();
  needArgs(info, nargs, fn);
  BagArgs A;
  A.bags = dimArg(info, 0, fn, "bags");
  A.per = dimArg(info, 1, fn, "per");
  A.d = dimArg(info, 2, fn, "d");
  A.table = f32Arg(info, 3, fn, "table");
  A.ids = i32Arg(info, 4, fn, "ids");
  A.weights = f32Arg(info, 5, fn, "weights");
  A.ne = checkedProd(env, fn, {A.bags, A.per});
  needLen(env, A.ids, A.ne, fn, "ids");
  needLen(env, A.weights, A.ne, fn, "weights");
  A.maxId = A.d ? idsInRange(env, fn, "ids", A.ids.data, A.ne, (int64_t)A.table.length / A.d) : -1;
  return A;
}

// Throws if written span o overlaps any of the bag inputs.
void bagOutput(const Napi::Env& env, const char* fn, const BagArgs& A, const Span<float>& o, const char* on) {
  noOverlap(env, fn, o, on, A.table, "table");
  noOverlap(env, fn, o, on, A.ids, "ids");
  noOverlap(env, fn, o, on, A.weights, "weights");
}

// embeddingBag(bags, per, d, table, ids, weights, out): out[b] = sum_j weights[b, j] table[ids[b, j]]
Napi::Value EmbeddingBagNapi(const Napi::CallbackInfo& info) {
  const char* fn = "embeddingBag";
  Napi::Env env = info.Env();
  const BagArgs A = bagArgs(info, fn, 7);
  const int64_t bags = A.bags, per = A.per, d = A.d;
  auto out = f32Arg(info, 6, fn, "out");
  needLen(env, out, checkedProd(env, fn, {bags, d}), fn, "out");
  bagOutput(env, fn, A, out, "out");
  if (bags * d == 0) return env.Undefined();
  const float* T = A.table.data;
  const int32_t* I = A.ids.data;
  const float* W = A.weights.data;
  float* O = out.data;
  parallelFor(bags, grainFor(per * d), [&](int64_t b, int64_t e) {
    for (int64_t bg = b; bg < e; bg++) {
      float* o = O + bg * d;
      std::fill(o, o + d, 0.0f);
      for (int64_t j = 0; j < per; j++) {
        const float w = W[bg * per + j];
        const float* t = T + (int64_t)I[bg * per + j] * d;
        for (int64_t c = 0; c < d; c++) o[c] += w * t[c];
      }
    }
  });
  return env.Undefined();
}

// embeddingBagBackward(bags, per, d, table, ids, weights, gout, gweights, gtable|null): gweights
// written, gtable (rows up to the largest id) accumulates
Napi::Value EmbeddingBagBackwardNapi(const Napi::CallbackInfo& info) {
  const char* fn = "embeddingBagBackward";
  Napi::Env env = info.Env();
  const BagArgs A = bagArgs(info, fn, 9);
  const int64_t bags = A.bags, per = A.per, d = A.d, ne = A.ne, maxId = A.maxId;
  auto gout = f32Arg(info, 6, fn, "gout");
  auto gweights = f32Arg(info, 7, fn, "gweights");
  auto gtable = f32OptArg(info, 8, fn, "gtable");
  const bool hasG = gtable.data != nullptr;
  needLen(env, gweights, ne, fn, "gweights");
  needLen(env, gout, checkedProd(env, fn, {bags, d}), fn, "gout");
  bagOutput(env, fn, A, gweights, "gweights");
  noOverlap(env, fn, gweights, "gweights", gout, "gout");
  bagOutput(env, fn, A, gtable, "gtable");
  noOverlap(env, fn, gtable, "gtable", gout, "gout");
  noOverlap(env, fn, gtable, "gtable", gweights, "gweights");
  if (ne == 0) return env.Undefined();
  if (d == 0) {
    std::fill(gweights.data, gweights.data + ne, 0.0f);
    return env.Undefined();
  }
  if (hasG) needLen(env, gtable, (maxId + 1) * d, fn, "gtable");
  const Span<float> table = A.table, weights = A.weights;
  const Span<int32_t> ids = A.ids;
  const float* T = table.data;
  const int32_t* I = ids.data;
  const float* W = weights.data;
  const float* G = gout.data;
  float* GW = gweights.data;
  const simd::OpsTable& K = ops::kernels();
  parallelFor(ne, grainFor(d), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      const float* g = G + (i / per) * d;
      GW[i] = K.dot(g, T + (int64_t)I[i] * d, d);
    }
  });
  if (hasG) {
    float* GT = gtable.data;
    splitDestination(ne * d, d, maxId + 1, [&](int64_t c0, int64_t c1, int64_t r0, int64_t r1) {
      for (int64_t i = 0; i < ne; i++) {
        const int64_t id = I[i];
        if (id < r0 || id >= r1) continue;
        float* o = GT + id * d;
        const float* g = G + (i / per) * d;
        const float w = W[i];
        for (int64_t c = c0; c < c1; c++) o[c] += w * g[c];
      }
    });
  }
  return env.Undefined();
}

}  // namespace

MOELAB_EXPORT(indexSelect, IndexSelectNapi);
MOELAB_EXPORT(indexAdd, IndexAddNapi);
MOELAB_EXPORT(gather, GatherNapi);
MOELAB_EXPORT(scatterAdd, ScatterAddNapi);
MOELAB_EXPORT(topk, TopkNapi);
MOELAB_EXPORT(argsortInt, ArgsortIntNapi);
MOELAB_EXPORT(embeddingBag, EmbeddingBagNapi);
MOELAB_EXPORT(embeddingBagBackward, EmbeddingBagBackwardNapi);

}  // namespace moelab
