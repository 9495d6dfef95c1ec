// PEER kernels (contracts in src/backend/kernels/peer.ts, reference in src/backend/ref/peer_*.ts):
//   peerRetrieve          product-key retrieval: per row (token, head) both query halves scored
//                         against their sub-key tables in blocks of rows (6x16 register tiles on
//                         packed sub-keys), top-k per half by a threshold-skipping scan, then the
//                         k*k candidate sums pruned to the pairs (a+1)(b+1) <= k that can still rank
//                         in the top k. Never forms [T*h, N] scores; threaded over rows.
//   peerForward           softmax gates, gathered u-row dot products, gated v-row sums (tokens).
//   peerBackward          per-token side of the backward: gx, gate/score gradients, row coefficients.
//   peerRetrieveBackward  query and sub-key gradients of the chosen candidates (per-thread key sums).
//   peerUnionForward/Backward  the per-pick gathers and scatters of the dense union path
//                         (src/tensor/ops/peer_union.ts): gates, [T, U] coefficient matrices.
//   peerCoalesce          stable counting sort of expert ids -> unique ids + occurrence lists.
//   peerRowGrad           row-sparse table gradients from the coalesced lists (threaded over rows).
//   sparseAdam            lazy Adam on touched rows, fp32 or bf16 moments.
// This file validates every argument, packs, threads and dispatches; the AVX2 inner loops are in
// avx2/peer_avx2.cc (AVX-512 selection in avx512/peer_avx512.cc), the portable ones below
// (MOELAB_ISA=generic).
#include "cpu.h"
#include "op_codes.h"
#include "ops_simd.h"
#include "args.h"
#include "registry.h"
#include "threadpool.h"
#include "topk_insert.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

namespace moelab {

// avx2/peer_avx2.cc
void peerScoreAvx2(int rows, int nPanels, int half, const float* Q, int64_t ldq, const float* Kp, float* S,
                   int64_t lds);
int peerTopkAvx2(const float* s, int n, int k, float* vals, int32_t* idx);
void peerCandidatesAvx2(const float* v1, const float* v2, int k, float* cv, int32_t* ci);
// avx512/peer_avx512.cc: the two selections as filter-then-rank (same results)
int peerTopkAvx512(const float* s, int n, int k, float* vals, int32_t* idx);
void peerCandidatesAvx512(const float* v1, const float* v2, int k, float* cv, int32_t* ci);
void peerGatherDotsAvx2(const float* x, const float* table, const int32_t* ids, int n, int64_t d, float* out);
void peerGatherAxpyAvx2(const float* table, const int32_t* ids, const float* w, int n, int64_t d, float* y);
void peerAxpyAvx2(float a, const float* x, float* y, int64_t d);
void sparseAdamRowAvx2(int64_t d, const float* g, float* p, float* m, float* v, float b1c, float b2c, float step,
                       float eps);
void sparseAdamRowBf16Avx2(int64_t d, const float* g, float* p, uint16_t* m, uint16_t* v, float b1c, float b2c,
                           float step, float eps);
void peerGatherDotsBf16Avx2(const float* x, const uint16_t* table, const int32_t* ids, int n, int64_t d, float* out);
void peerGatherAxpyBf16Avx2(const uint16_t* table, const int32_t* ids, const float* w, int n, int64_t d, float* y);
void peerAxpyBf16Avx2(float a, const uint16_t* x, float* y, int64_t d);
void sparseAdamRowSrAvx2(int64_t d, const float* g, uint16_t* p, float* m, float* v, float b1c, float b2c, float step,
                         float eps, uint32_t key);
void sparseAdamRowSrBf16Avx2(int64_t d, const float* g, uint16_t* p, uint16_t* m, uint16_t* v, float b1c, float b2c,
                             float step, float eps, uint32_t key);

namespace {

// ------------------------------------------------------------------ portable inner loops


void scoreGeneric(int rows, int nPanels, int half, const float* Q, int64_t ldq, const float* Kp, float* S,
                  int64_t lds) {
  for (int r = 0; r < rows; r++) {
    const float* q = Q + r * ldq;
    for (int p = 0; p < nPanels; p++) {
      float acc[16] = {0};
      const float* kp = Kp + (int64_t)p * half * 16;
      for (int c = 0; c < half; c++)
        for (int j = 0; j < 16; j++) acc[j] += q[c] * kp[c * 16 + j];
      std::memcpy(S + r * lds + p * 16, acc, sizeof acc);
    }
  }
}

int topkGeneric(const float* s, int n, int k, float* vals, int32_t* idx) {
  int cnt = 0;
  for (int i = 0; i < n; i++) cnt = topkInsert(vals, idx, cnt, k, s[i], i);
  return cnt;
}

void candidatesGeneric(const float* v1, const float* v2, int k, float* cv, int32_t* ci) {
  int cnt = 0;
  for (int a = 0; a < k; a++) {
    const int bEnd = k / (a + 1);  // (a+1)(b+1) > k: at least k candidates rank before (a, b)
    for (int b = 0; b < bEnd; b++) cnt = topkInsert(cv, ci, cnt, k, v1[a] + v2[b], a * k + b);
  }
}

inline float ld1(float x) { return x; }
inline float ld1(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Table rows are float or bfloat16 (widened exactly by ld1), same arithmetic order for both.
template <typename E>
void gatherDotsGeneric(const float* x, const E* table, const int32_t* ids, int n, int64_t d, float* out) {
  for (int j = 0; j < n; j++) {
    const E* r = table + (int64_t)ids[j] * d;
    float s = 0;
    for (int64_t c = 0; c < d; c++) s += ld1(r[c]) * x[c];
    out[j] = s;
  }
}

template <typename E>
void gatherAxpyGeneric(const E* table, const int32_t* ids, const float* w, int n, int64_t d, float* y) {
  std::fill(y, y + d, 0.0f);
  for (int j = 0; j < n; j++) {
    const E* r = table + (int64_t)ids[j] * d;
    for (int64_t c = 0; c < d; c++) y[c] += w[j] * ld1(r[c]);
  }
}

template <typename E>
void axpyGeneric(float a, const E* x, float* y, int64_t d) {
  for (int64_t c = 0; c < d; c++) y[c] += a * ld1(x[c]);
}

void adamRowGeneric(int64_t d, const float* g, float* p, float* m, float* v, float b1c, float b2c, float step,
                    float eps) {
  for (int64_t c = 0; c < d; c++) {
    float mv = m[c] + b1c * (g[c] - m[c]);
    float vv = v[c] + b2c * (g[c] * g[c] - v[c]);
    m[c] = mv;
    v[c] = vv;
    p[c] -= step * mv / (std::sqrt(vv) + eps);
  }
}

inline float bf16ToF32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t f32ToBf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

void adamRowBf16Generic(int64_t d, const float* g, float* p, uint16_t* m, uint16_t* v, float b1c, float b2c,
                        float step, float eps) {
  for (int64_t c = 0; c < d; c++) {
    float m0 = bf16ToF32(m[c]), v0 = bf16ToF32(v[c]);
    float mv = m0 + b1c * (g[c] - m0);
    float vv = v0 + b2c * (g[c] * g[c] - v0);
    m[c] = f32ToBf16(mv);
    v[c] = f32ToBf16(vv);
    p[c] -= step * mv / (std::sqrt(vv) + eps);
  }
}

inline uint32_t lowbias32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  return x ^ (x >> 16);
}

// Stochastic rounding to bfloat16 (contract in src/backend/kernels/peer.ts): the low 16 bits of
// lowbias32(key + c) are added to the float's bits before truncation; Inf/NaN round to nearest.
inline uint16_t f32ToBf16Sr(float x, uint32_t key, int64_t c) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return f32ToBf16(x);
  return (uint16_t)((u + (lowbias32(key + (uint32_t)c) & 0xffffu)) >> 16);
}

inline float stM(float x, float*) { return x; }
inline uint16_t stM(float x, uint16_t*) { return f32ToBf16(x); }

// One SparseAdam row of a bfloat16 table (moments float or bfloat16), weight stored stochastically.
template <typename M>
void adamRowSrGeneric(int64_t d, const float* g, uint16_t* p, M* m, M* v, float b1c, float b2c, float step, float eps,
                      uint32_t key) {
  for (int64_t c = 0; c < d; c++) {
    float m0 = ld1(m[c]), v0 = ld1(v[c]);
    float mv = m0 + b1c * (g[c] - m0);
    float vv = v0 + b2c * (g[c] * g[c] - v0);
    m[c] = stM(mv, m);
    v[c] = stM(vv, v);
    p[c] = f32ToBf16Sr(ld1(p[c]) - step * mv / (std::sqrt(vv) + eps), key, c);
  }
}

struct PeerIsa {
  decltype(&scoreGeneric) score;
  decltype(&topkGeneric) topk;
  decltype(&candidatesGeneric) cand;
  decltype(&gatherDotsGeneric<float>) dots;
  decltype(&gatherAxpyGeneric<float>) axpys;
  decltype(&axpyGeneric<float>) axpy;
  decltype(&adamRowGeneric) adam;
  decltype(&adamRowBf16Generic) adamBf16;
  // bfloat16 tables
  decltype(&gatherDotsGeneric<uint16_t>) dotsB;
  decltype(&gatherAxpyGeneric<uint16_t>) axpysB;
  decltype(&axpyGeneric<uint16_t>) axpyB;
  decltype(&adamRowSrGeneric<float>) adamSr;
  decltype(&adamRowSrGeneric<uint16_t>) adamSrBf16;
};

const PeerIsa& isa() {
  static const PeerIsa avx2{peerScoreAvx2, peerTopkAvx2, peerCandidatesAvx2, peerGatherDotsAvx2, peerGatherAxpyAvx2, peerAxpyAvx2,
                            sparseAdamRowAvx2, sparseAdamRowBf16Avx2, peerGatherDotsBf16Avx2, peerGatherAxpyBf16Avx2,
                            peerAxpyBf16Avx2, sparseAdamRowSrAvx2, sparseAdamRowSrBf16Avx2};
  static const PeerIsa generic{scoreGeneric, topkGeneric, candidatesGeneric, gatherDotsGeneric<float>, gatherAxpyGeneric<float>,
                               axpyGeneric<float>, adamRowGeneric, adamRowBf16Generic, gatherDotsGeneric<uint16_t>,
                               gatherAxpyGeneric<uint16_t>, axpyGeneric<uint16_t>, adamRowSrGeneric<float>,
                               adamRowSrGeneric<uint16_t>};
  static const PeerIsa avx512 = [] {
    PeerIsa t = avx2;
    t.topk = peerTopkAvx512;
    t.cand = peerCandidatesAvx512;
    return t;
  }();
  return activeIsa() >= Isa::Avx512 ? avx512 : activeIsa() >= Isa::Avx2 ? avx2 : generic;
}

// ------------------------------------------------------------------ activations (float, as torch)

inline float actF(PeerAct act, float x) {
  if (act == PeerAct::Gelu) return 0.5f * x * std::erfc(-x * 0.70710678118654752f);
  return x > 0 ? x : 0.0f;
}

inline float actD(PeerAct act, float x) {
  if (act == PeerAct::Gelu)
    return 0.5f * std::erfc(-x * 0.70710678118654752f) + x * 0.39894228040143268f * std::exp(-0.5f * x * x);
  return x > 0 ? 1.0f : 0.0f;
}

// Softmax backward within each head's k gates of one token: gs = g (dg - sum_head g dg). Shared by
// the row kernels' and the union path's backward, so all give the same score gradients.
inline void softmaxHeadsBackward(const float* g, const float* dg, int64_t hk, int64_t k, float* gs) {
  for (int64_t j0 = 0; j0 < hk; j0 += k) {
    float s = 0;
    for (int64_t j = j0; j < j0 + k; j++) s += g[j] * dg[j];
    for (int64_t j = j0; j < j0 + k; j++) gs[j] = g[j] * (dg[j] - s);
  }
}

// ------------------------------------------------------------------ validation helpers

PeerAct actArg(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  int64_t a = dimArg(info, i, fn, "act");
  if (a >= (int64_t)PeerAct::Count) throwRange(info.Env(), std::string(fn) + ": unknown activation code " + std::to_string(a));
  return (PeerAct)a;
}

// ------------------------------------------------------------------ peerRetrieve

constexpr int RB = 24;  // rows per scoring block (multiple of the 6-row tile)

// Arguments 0..7 shared by peerRetrieve and peerRetrieveBackward: (T, h, nSub, half, k, q, keys,
// ids), R = T*h query rows of dk = 2*half, sub-keys [2, nSub, half], ids [R, k].
struct RetrieveArgs {
  int64_t T, h, nSub, half, k, R, dk, nk;  // nk = 2*nSub*half sub-key elements
  Span<float> q, keys;
  Span<int32_t> ids;
};

RetrieveArgs retrieveArgs(const Napi::CallbackInfo& info, const char* fn, size_t nargs) {
  auto env = info.Env();
  needArgs(info, nargs, fn);
  RetrieveArgs A;
  A.T = dimArg(info, 0, fn, "T");
  A.h = dimArg(info, 1, fn, "h", 1);
  A.nSub = dimArg(info, 2, fn, "nSub", 1);
  A.half = dimArg(info, 3, fn, "half", 1);
  A.k = dimArg(info, 4, fn, "k", 1);
  if (A.nSub > 46340) throwRange(env, std::string(fn) + ": nSub^2 must fit int32 ids (nSub <= 46340)");
  if (A.half > (1 << 20)) throwRange(env, std::string(fn) + ": half too large");
  A.q = f32Arg(info, 5, fn, "q");
  A.keys = f32Arg(info, 6, fn, "keys");
  A.ids = i32Arg(info, 7, fn, "ids");
  A.R = checkedMul(env, fn, A.T, A.h);
  A.dk = 2 * A.half;
  A.nk = checkedMul(env, fn, 2 * A.nSub, A.half);
  needLen(env, A.q, checkedMul(env, fn, A.R, A.dk), fn, "q");
  needLen(env, A.keys, A.nk, fn, "keys");
  needLen(env, A.ids, checkedMul(env, fn, A.R, A.k), fn, "ids");
  return A;
}

// peerRetrieve(T, h, nSub, half, k, q, keys, ids, scores): ids written
struct PeerRetrieveArgs {
  RetrieveArgs in;
  Span<float> scores;
};

PeerRetrieveArgs parseRetrieve(const Napi::CallbackInfo& info, const char* fn) {
  auto env = info.Env();
  PeerRetrieveArgs A{retrieveArgs(info, fn, 9), f32Arg(info, 8, fn, "scores")};
  const RetrieveArgs& in = A.in;
  if (in.k > in.nSub)
    throwRange(env, std::string(fn) + ": k (" + std::to_string(in.k) + ") must be <= nSub (" + std::to_string(in.nSub) + ")");
  needLen(env, A.scores, in.R * in.k, fn, "scores");
  noOverlap(env, fn, in.ids, "ids", A.scores, "scores");
  noOverlap(env, fn, in.ids, "ids", in.q, "q");
  noOverlap(env, fn, in.ids, "ids", in.keys, "keys");
  noOverlap(env, fn, A.scores, "scores", in.q, "q");
  noOverlap(env, fn, A.scores, "scores", in.keys, "keys");
  return A;
}

void peerRetrieve(const PeerRetrieveArgs& A) {
  const char* fn = "peerRetrieve";
  const int64_t R = A.in.R, nSub = A.in.nSub, half = A.in.half, k = A.in.k, dk = A.in.dk;
  const Span<float> keys = A.in.keys;
  if (R == 0) return;
  const int nP = (int)((nSub + 15) / 16), nSubP = nP * 16, H = (int)half, K = (int)k, NS = (int)nSub;
  const int64_t panelSize = (int64_t)H * 16;
  std::vector<float> Kp = scratch<float>(fn, "packed sub-keys", 2 * nP * panelSize);  // zero-padded sub-keys, scored but never selected
  for (int hf = 0; hf < 2; hf++)
    for (int n = 0; n < NS; n++)
      for (int c = 0; c < H; c++)
        Kp[(size_t)(hf * nP * panelSize + (n / 16) * panelSize + c * 16 + n % 16)] =
            keys.data[(int64_t)hf * nSub * half + (int64_t)n * half + c];

  const int nt = threadsFor(R, 8);
  const int64_t perThread = 2 * (int64_t)RB * nSubP + 6 * (int64_t)K;
  std::vector<float> blocks = scratch<float>(fn, "score blocks", nt * perThread);
  std::vector<int32_t> iscratch = scratch<int32_t>(fn, "top-k indices", (int64_t)nt * 3 * K);
  const PeerIsa& I = isa();
  const float* Q = A.in.q.data;
  int32_t* IDS = A.in.ids.data;
  float* SC = A.scores.data;

  parallelChunks(R, 8, [&](int t, int64_t r0, int64_t r1) {
    float* S0 = blocks.data() + t * perThread;
    float* S1 = S0 + (int64_t)RB * nSubP;
    float* v1 = S1 + (int64_t)RB * nSubP;
    float* v2 = v1 + K;
    float* cv = v2 + K;
    int32_t* i1 = iscratch.data() + (int64_t)t * 3 * K;
    int32_t* i2 = i1 + K;
    int32_t* ci = i2 + K;
    for (int64_t rb = r0; rb < r1; rb += RB) {
      const int rows = (int)std::min<int64_t>(RB, r1 - rb);
      I.score(rows, nP, H, Q + rb * dk, dk, Kp.data(), S0, nSubP);
      I.score(rows, nP, H, Q + rb * dk + half, dk, Kp.data() + nP * panelSize, S1, nSubP);
      for (int i = 0; i < rows; i++) {
        I.topk(S0 + (int64_t)i * nSubP, NS, K, v1, i1);
        I.topk(S1 + (int64_t)i * nSubP, NS, K, v2, i2);
        I.cand(v1, v2, K, cv, ci);
        const int64_t o = (rb + i) * k;
        for (int j = 0; j < K; j++) {
          IDS[o + j] = i1[ci[j] / K] * NS + i2[ci[j] % K];
          SC[o + j] = cv[j];
        }
      }
    }
  });
}

Napi::Value PeerRetrieveNapi(const Napi::CallbackInfo& info) {
  peerRetrieve(parseRetrieve(info, "peerRetrieve"));
  return info.Env().Undefined();
}
MOELAB_EXPORT(peerRetrieve, PeerRetrieveNapi);

// ------------------------------------------------------------------ peerRetrieveBackward

// peerRetrieveBackward(T, h, nSub, half, k, q, keys, ids, gscores, gq, gkeys): gq written, gkeys accumulates
struct PeerRetrieveBackwardArgs {
  RetrieveArgs in;
  Span<float> gs, gq, gk;
};

PeerRetrieveBackwardArgs parseRetrieveBackward(const Napi::CallbackInfo& info, const char* fn) {
  auto env = info.Env();
  PeerRetrieveBackwardArgs A{retrieveArgs(info, fn, 11), f32Arg(info, 8, fn, "gscores"), f32Arg(info, 9, fn, "gq"),
                             f32Arg(info, 10, fn, "gkeys")};
  const RetrieveArgs& in = A.in;
  needLen(env, A.gs, in.R * in.k, fn, "gscores");
  needLen(env, A.gq, in.R * in.dk, fn, "gq");
  needLen(env, A.gk, in.nk, fn, "gkeys");
  noOverlap(env, fn, A.gq, "gq", A.gk, "gkeys");
  for (const auto& [o, on] : {std::make_pair(A.gq, "gq"), std::make_pair(A.gk, "gkeys")}) {
    noOverlap(env, fn, o, on, in.q, "q");
    noOverlap(env, fn, o, on, in.keys, "keys");
    noOverlap(env, fn, o, on, in.ids, "ids");
    noOverlap(env, fn, o, on, A.gs, "gscores");
  }
  idsInRange(env, fn, "ids", in.ids.data, in.R * in.k, in.nSub * in.nSub);
  return A;
}

void peerRetrieveBackward(const PeerRetrieveBackwardArgs& A) {
  const char* fn = "peerRetrieveBackward";
  const int64_t R = A.in.R, nSub = A.in.nSub, half = A.in.half, k = A.in.k, dk = A.in.dk, nk = A.in.nk;
  if (R == 0) return;
  // the key gradient sums over rows: per-slice partials, so its bits do not depend on the threads
  const int S = sumSlices(R, 16);
  std::vector<float> local = scratch<float>(fn, "per-slice key gradients", (S - 1) * nk);  // slice 0 accumulates straight into gkeys
  const PeerIsa& I = isa();
  const float *Q = A.in.q.data, *KY = A.in.keys.data, *GS = A.gs.data;
  const int32_t* IDS = A.in.ids.data;
  float *GQ = A.gq.data, *GK = A.gk.data;
  forSlices(R, S, nullptr, [&](int s, int64_t r0, int64_t r1) {
    float* acc = s == 0 ? GK : local.data() + (s - 1) * nk;
    for (int64_t r = r0; r < r1; r++) {
      float* gqr = GQ + r * dk;
      std::fill(gqr, gqr + dk, 0.0f);
      const float* qr = Q + r * dk;
      for (int64_t j = 0; j < k; j++) {
        const int32_t id = IDS[r * k + j];
        const float g = GS[r * k + j];
        const int64_t k1 = (int64_t)(id / nSub) * half, k2 = nSub * half + (int64_t)(id % nSub) * half;
        I.axpy(g, KY + k1, gqr, half);
        I.axpy(g, KY + k2, gqr + half, half);
        I.axpy(g, qr, acc + k1, half);
        I.axpy(g, qr + half, acc + k2, half);
      }
    }
  });
  if (S > 1) {
    parallelChunks(nk, 4096, [&](int, int64_t b, int64_t e) {
      for (int s = 1; s < S; s++) {
        const float* l = local.data() + (s - 1) * nk;
        for (int64_t i = b; i < e; i++) GK[i] += l[i];
      }
    });
  }
}

Napi::Value PeerRetrieveBackwardNapi(const Napi::CallbackInfo& info) {
  peerRetrieveBackward(parseRetrieveBackward(info, "peerRetrieveBackward"));
  return info.Env().Undefined();
}
MOELAB_EXPORT(peerRetrieveBackward, PeerRetrieveBackwardNapi);

// ------------------------------------------------------------------ expert arguments

// An expert table [N, d] of float or bfloat16 rows (exactly one pointer set; both null: absent).
// Every row access goes through here, so each kernel has one body for both row types, and the
// bf16 one computes exactly what the float one computes on the widened rows.
struct TableRef {
  const float* f = nullptr;
  const uint16_t* h = nullptr;
  void dots(const PeerIsa& I, const float* x, const int32_t* ids, int n, int64_t d, float* out) const {
    if (h) I.dotsB(x, h, ids, n, d, out);
    else I.dots(x, f, ids, n, d, out);
  }
  void axpys(const PeerIsa& I, const int32_t* ids, const float* w, int n, int64_t d, float* y) const {
    if (h) I.axpysB(h, ids, w, n, d, y);
    else I.axpys(f, ids, w, n, d, y);
  }
  // y[0..d) += a * row at element offset off
  void axpyRow(const PeerIsa& I, float a, int64_t off, float* y, int64_t d) const {
    if (h) I.axpyB(a, h + off, y, d);
    else I.axpy(a, f + off, y, d);
  }
  void prefetch(int64_t off, int64_t d) const {
    const char* p = h ? reinterpret_cast<const char*>(h + off) : reinterpret_cast<const char*>(f + off);
    const int64_t bytes = d * (h ? 2 : 4);
    for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(p + b);
  }
};

bool isU16(const Napi::CallbackInfo& info, size_t i) {
  return info[i].IsTypedArray() && info[i].As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array;
}

// Arguments 0..9 shared by peerForward, peerBackward and peerBackwardRows:
//   (T, d, N, hk, k, act, x [T, d], u [N, d] | null, v [N, d], ids [T, hk]), with their length checks.
// u and v are both Float32Array or both Uint16Array (bfloat16 bits; u may be null either way).
struct ExpertArgs {
  int64_t T, d, N, hk, k;
  PeerAct act;
  Span<float> x, u, v;       // float tables (null spans when bf16)
  Span<uint16_t> ub, vb;     // bfloat16 tables (null spans when float)
  TableRef tu, tv;
  Span<int32_t> ids;
  bool pkm;  // no u: product-key memory (values only)
  int64_t Td, Thk, Nd;
};

ExpertArgs expertArgs(const Napi::CallbackInfo& info, const char* fn, size_t nargs) {
  auto env = info.Env();
  needArgs(info, nargs, fn);
  ExpertArgs b;
  b.T = dimArg(info, 0, fn, "T");
  b.d = dimArg(info, 1, fn, "d", 1);
  b.N = dimArg(info, 2, fn, "N", 1);
  b.hk = dimArg(info, 3, fn, "hk", 1);
  b.k = dimArg(info, 4, fn, "k", 1);
  b.act = actArg(info, 5, fn);
  if (b.hk % b.k != 0) throwRange(env, std::string(fn) + ": hk (" + std::to_string(b.hk) + ") must be a multiple of k (" + std::to_string(b.k) + ")");
  if (b.N > std::numeric_limits<int32_t>::max() || b.hk > (1 << 24)) throwRange(env, std::string(fn) + ": N or hk too large");
  b.x = f32Arg(info, 6, fn, "x");
  b.u = b.v = Span<float>{nullptr, 0};
  b.ub = b.vb = Span<uint16_t>{nullptr, 0};
  const bool bf = isU16(info, 8);
  if (!isNullish(info, 7) && isU16(info, 7) != bf)
    throwType(env, std::string(fn) + ": tables 'u' and 'v' must both be Float32Array or both Uint16Array (bfloat16)");
  if (bf) {
    b.ub = isNullish(info, 7) ? Span<uint16_t>{nullptr, 0} : u16Arg(info, 7, fn, "u");
    b.vb = u16Arg(info, 8, fn, "v");
    b.tu.h = b.ub.data;
    b.tv.h = b.vb.data;
  } else {
    b.u = f32OptArg(info, 7, fn, "u");
    b.v = f32Arg(info, 8, fn, "v");
    b.tu.f = b.u.data;
    b.tv.f = b.v.data;
  }
  b.ids = i32Arg(info, 9, fn, "ids");
  b.pkm = b.u.data == nullptr && b.ub.data == nullptr;
  b.Td = checkedMul(env, fn, b.T, b.d);
  b.Thk = checkedMul(env, fn, b.T, b.hk);
  b.Nd = checkedMul(env, fn, b.N, b.d);
  needLen(env, b.x, b.Td, fn, "x");
  if (bf) needLen(env, b.vb, b.Nd, fn, "v");
  else needLen(env, b.v, b.Nd, fn, "v");
  needLen(env, b.ids, b.Thk, fn, "ids");
  if (!b.pkm) {
    if (bf) needLen(env, b.ub, b.Nd, fn, "u");
    else needLen(env, b.u, b.Nd, fn, "u");
  }
  return b;
}

// Throws if output o overlaps any expert input (u only when present).
void outputApart(const Napi::Env& env, const char* fn, const ExpertArgs& in, const Span<float>& o, const char* on) {
  noOverlap(env, fn, o, on, in.x, "x");
  noOverlap(env, fn, o, on, in.v, "v");
  noOverlap(env, fn, o, on, in.vb, "v");
  noOverlap(env, fn, o, on, in.ids, "ids");
  if (!in.pkm) {
    noOverlap(env, fn, o, on, in.u, "u");
    noOverlap(env, fn, o, on, in.ub, "u");
  }
}

// ------------------------------------------------------------------ peerForward

// peerForward(T, d, N, hk, k, act, x, u|null, v, ids, scores, g, a|null, y): g, a, y written
struct PeerForwardArgs {
  ExpertArgs in;
  Span<float> sc, g, a, y;
};

PeerForwardArgs parseForward(const Napi::CallbackInfo& info, const char* fn) {
  auto env = info.Env();
  PeerForwardArgs A;
  A.in = expertArgs(info, fn, 14);
  A.sc = f32Arg(info, 10, fn, "scores");
  A.g = f32Arg(info, 11, fn, "g");
  A.a = f32OptArg(info, 12, fn, "a");
  A.y = f32Arg(info, 13, fn, "y");
  const ExpertArgs& in = A.in;
  needLen(env, A.sc, in.Thk, fn, "scores");
  needLen(env, A.g, in.Thk, fn, "g");
  needLen(env, A.y, in.Td, fn, "y");
  if (!in.pkm) {
    if (!A.a.data) throwType(env, std::string(fn) + ": argument 'a' must be a Float32Array when u is given");
    needLen(env, A.a, in.Thk, fn, "a");
  }
  // outputs g, a, y: pairwise distinct and distinct from every input
  noOverlap(env, fn, A.g, "g", A.y, "y");
  noOverlap(env, fn, A.a, "a", A.g, "g");
  noOverlap(env, fn, A.a, "a", A.y, "y");
  for (const auto& [o, on] : {std::make_pair(A.g, "g"), std::make_pair(A.a, "a"), std::make_pair(A.y, "y")}) {
    outputApart(env, fn, in, o, on);
    noOverlap(env, fn, o, on, A.sc, "scores");
  }
  idsInRange(env, fn, "ids", in.ids.data, in.Thk, in.N);
  return A;
}

void peerForward(const PeerForwardArgs& A) {
  const char* fn = "peerForward";
  const int64_t T = A.in.T, d = A.in.d, hk = A.in.hk, k = A.in.k;
  const PeerAct act = A.in.act;
  const bool pkm = A.in.pkm;
  const Span<float> x = A.in.x, sc = A.sc, g = A.g, a = A.a, y = A.y;
  const TableRef u = A.in.tu, v = A.in.tv;
  const Span<int32_t> ids = A.in.ids;
  if (T == 0) return;
  const int nt = threadsFor(T, 4);
  std::vector<float> wbuf = scratch<float>(fn, "gate weights", nt * hk);
  const PeerIsa& I = isa();
  parallelChunks(T, 4, [&](int th, int64_t t0, int64_t t1) {
    float* w = wbuf.data() + th * hk;
    for (int64_t t = t0; t < t1; t++) {
      const float* s = sc.data + t * hk;
      float* gt = g.data + t * hk;
      for (int64_t j0 = 0; j0 < hk; j0 += k) {
        float mx = -INFINITY;
        for (int64_t j = j0; j < j0 + k; j++) mx = std::max(mx, s[j]);
        float sum = 0;
        for (int64_t j = j0; j < j0 + k; j++) sum += (gt[j] = std::exp(s[j] - mx));
        const float inv = 1.0f / sum;
        for (int64_t j = j0; j < j0 + k; j++) gt[j] *= inv;
      }
      const int32_t* it = ids.data + t * hk;
      if (pkm) {
        v.axpys(I, it, gt, (int)hk, d, y.data + t * d);
      } else {
        float* at = a.data + t * hk;
        u.dots(I, x.data + t * d, it, (int)hk, d, at);
        for (int64_t j = 0; j < hk; j++) w[j] = gt[j] * actF(act, at[j]);
        v.axpys(I, it, w, (int)hk, d, y.data + t * d);
      }
    }
  });
}

Napi::Value PeerForwardNapi(const Napi::CallbackInfo& info) {
  peerForward(parseForward(info, "peerForward"));
  return info.Env().Undefined();
}
MOELAB_EXPORT(peerForward, PeerForwardNapi);

// Arguments 0..12 shared by peerBackward and peerBackwardRows: the expert arguments, then
// (g [T, hk], a [T, hk] | null, gy [T, d]).
struct BackwardInputs : ExpertArgs {
  Span<float> g, a, gy;
};

BackwardInputs backwardInputs(const Napi::CallbackInfo& info, const char* fn, size_t nargs) {
  auto env = info.Env();
  BackwardInputs b;
  static_cast<ExpertArgs&>(b) = expertArgs(info, fn, nargs);
  b.g = f32Arg(info, 10, fn, "g");
  b.a = f32OptArg(info, 11, fn, "a");
  b.gy = f32Arg(info, 12, fn, "gy");
  needLen(env, b.g, b.Thk, fn, "g");
  needLen(env, b.gy, b.Td, fn, "gy");
  return b;
}

// ------------------------------------------------------------------ peerBackward

// peerBackward(T, d, N, hk, k, act, x, u|null, v, ids, g, a|null, gy, gx|null, gscores, cu|null, cv)
struct PeerBackwardArgs {
  BackwardInputs in;
  Span<float> gx, gs, cu, cv;  // gx, cu null without u
};

PeerBackwardArgs parseBackward(const Napi::CallbackInfo& info, const char* fn) {
  auto env = info.Env();
  PeerBackwardArgs A;
  A.in = backwardInputs(info, fn, 17);
  const BackwardInputs& in = A.in;
  A.gx = f32OptArg(info, 13, fn, "gx");
  A.gs = f32Arg(info, 14, fn, "gscores");
  A.cu = f32OptArg(info, 15, fn, "cu");
  A.cv = f32Arg(info, 16, fn, "cv");
  needLen(env, A.gs, in.Thk, fn, "gscores");
  needLen(env, A.cv, in.Thk, fn, "cv");
  if (in.pkm) {
    A.gx = A.cu = Span<float>{nullptr, 0};  // not written
  } else {
    if (!in.a.data || !A.gx.data || !A.cu.data)
      throwType(env, std::string(fn) + ": arguments 'a', 'gx' and 'cu' must be Float32Arrays when u is given");
    needLen(env, in.a, in.Thk, fn, "a");
    needLen(env, A.gx, in.Td, fn, "gx");
    needLen(env, A.cu, in.Thk, fn, "cu");
  }
  const Span<float> outs[] = {A.gx, A.gs, A.cu, A.cv};
  const char* onames[] = {"gx", "gscores", "cu", "cv"};
  for (int i = 0; i < 4; i++) {
    for (int j = i + 1; j < 4; j++) noOverlap(env, fn, outs[i], onames[i], outs[j], onames[j]);
    outputApart(env, fn, in, outs[i], onames[i]);
    noOverlap(env, fn, outs[i], onames[i], in.g, "g");
    noOverlap(env, fn, outs[i], onames[i], in.gy, "gy");
    if (!in.pkm) noOverlap(env, fn, outs[i], onames[i], in.a, "a");
  }
  idsInRange(env, fn, "ids", in.ids.data, in.Thk, in.N);
  return A;
}

void peerBackward(const PeerBackwardArgs& A) {
  const char* fn = "peerBackward";
  const int64_t T = A.in.T, d = A.in.d, hk = A.in.hk, k = A.in.k;
  const PeerAct act = A.in.act;
  const bool pkm = A.in.pkm;
  const TableRef u = A.in.tu, v = A.in.tv;
  const Span<float> g = A.in.g, a = A.in.a, gy = A.in.gy;
  const Span<float> gx = A.gx, gs = A.gs, cu = A.cu, cv = A.cv;
  const Span<int32_t> ids = A.in.ids;
  if (T == 0) return;
  const int nt = threadsFor(T, 4);
  std::vector<float> buf = scratch<float>(fn, "gate gradients", nt * 2 * hk);
  const PeerIsa& I = isa();
  parallelChunks(T, 4, [&](int th, int64_t t0, int64_t t1) {
    float* gw = buf.data() + th * 2 * hk;
    float* dg = gw + hk;
    for (int64_t t = t0; t < t1; t++) {
      const int32_t* it = ids.data + t * hk;
      const float* gt = g.data + t * hk;
      float* cvt = cv.data + t * hk;
      v.dots(I, gy.data + t * d, it, (int)hk, d, gw);
      if (pkm) {
        for (int64_t j = 0; j < hk; j++) {
          cvt[j] = gt[j];
          dg[j] = gw[j];
        }
      } else {
        const float* at = a.data + t * hk;
        float* cut = cu.data + t * hk;
        for (int64_t j = 0; j < hk; j++) {
          const float f = actF(act, at[j]);
          cvt[j] = gt[j] * f;
          dg[j] = gw[j] * f;
          cut[j] = gw[j] * gt[j] * actD(act, at[j]);
        }
        u.axpys(I, it, cut, (int)hk, d, gx.data + t * d);
      }
      float* gst = gs.data + t * hk;
      softmaxHeadsBackward(gt, dg, hk, k, gst);
    }
  });
}

Napi::Value PeerBackwardNapi(const Napi::CallbackInfo& info) {
  peerBackward(parseBackward(info, "peerBackward"));
  return info.Env().Undefined();
}
MOELAB_EXPORT(peerBackward, PeerBackwardNapi);

// ------------------------------------------------------------------ peerBackwardRows

// peerBackwardRows(T, d, N, hk, k, act, x, u|null, v, ids, g, a|null, gy, U, uniq, offsets, order,
//                  gx|null, gscores, gu|null, gv|null)
// Expert-major backward: each touched expert's u and v rows are read once (in ascending id order)
// and all its occurrences are processed against them, producing gx (per-slice partial sums),
// the gate gradients and the coalesced row gradients in one pass.
struct BackwardRowsArgs {
  BackwardInputs in;
  int64_t U;
  Span<int32_t> uniq, offsets, order;  // the coalesced index of ids (peerCoalesce)
  Span<float> gx, gs, gu, gv;          // outputs; gx null without u, gu/gv null to skip
};

// Every check before the kernel: lengths, output aliasing, and that (U, uniq, offsets, order)
// describe exactly these ids: offsets run from 0 to T*hk without decreasing (so every occurrence p
// indexes order), and each position appears once, under its own id.
BackwardRowsArgs parseBackwardRows(const Napi::CallbackInfo& info, const char* fn) {
  auto env = info.Env();
  BackwardRowsArgs A;
  A.in = backwardInputs(info, fn, 21);
  const BackwardInputs& in = A.in;
  const bool pkm = in.pkm;
  A.U = dimArg(info, 13, fn, "U");
  A.uniq = i32Arg(info, 14, fn, "uniq");
  A.offsets = i32Arg(info, 15, fn, "offsets");
  A.order = i32Arg(info, 16, fn, "order");
  A.gx = f32OptArg(info, 17, fn, "gx");
  A.gs = f32Arg(info, 18, fn, "gscores");
  A.gu = f32OptArg(info, 19, fn, "gu");
  A.gv = f32OptArg(info, 20, fn, "gv");
  const int64_t U = A.U, Thk = in.Thk, Ud = checkedMul(env, fn, U, in.d);
  needLen(env, A.uniq, U, fn, "uniq");
  needLen(env, A.order, Thk, fn, "order");
  needLen(env, A.gs, Thk, fn, "gscores");
  if (!pkm) {
    if (!in.a.data || !A.gx.data)
      throwType(env, std::string(fn) + ": arguments 'a' and 'gx' must be Float32Arrays when u is given");
    needLen(env, in.a, Thk, fn, "a");
    needLen(env, A.gx, in.Td, fn, "gx");
  } else if (A.gu.data) {
    throwType(env, std::string(fn) + ": 'gu' must be null without u");
  }
  if (A.gu.data) needLen(env, A.gu, Ud, fn, "gu");
  if (A.gv.data) needLen(env, A.gv, Ud, fn, "gv");
  const Span<float> ins[] = {in.x, in.u, in.v, in.g, in.a, in.gy};
  const char* inNames[] = {"x", "u", "v", "g", "a", "gy"};
  const Span<float> outs[] = {pkm ? Span<float>{nullptr, 0} : A.gx, A.gs, A.gu, A.gv};
  const char* outNames[] = {"gx", "gscores", "gu", "gv"};
  for (int i = 0; i < 4; i++) {
    for (int j = i + 1; j < 4; j++) noOverlap(env, fn, outs[i], outNames[i], outs[j], outNames[j]);
    for (int j = 0; j < 6; j++)
      if (!(pkm && (j == 1 || j == 4))) noOverlap(env, fn, outs[i], outNames[i], ins[j], inNames[j]);
    noOverlap(env, fn, outs[i], outNames[i], in.ids, "ids");
    noOverlap(env, fn, outs[i], outNames[i], in.ub, "u");
    noOverlap(env, fn, outs[i], outNames[i], in.vb, "v");
    noOverlap(env, fn, outs[i], outNames[i], A.uniq, "uniq");
    noOverlap(env, fn, outs[i], outNames[i], A.offsets, "offsets");
    noOverlap(env, fn, outs[i], outNames[i], A.order, "order");
  }
  idsInRange(env, fn, "ids", in.ids.data, Thk, in.N);
  offsetsInRange(env, fn, "offsets", A.offsets, U, Thk);
  const int32_t *OF = A.offsets.data, *OR = A.order.data, *UQ = A.uniq.data, *IDS = in.ids.data;
  if (OF[0] != 0 || OF[U] != Thk)
    throwRange(env, std::string(fn) + ": offsets must run from 0 to T*hk = " + std::to_string(Thk) + ", got " +
                        std::to_string(OF[0]) + " .. " + std::to_string(OF[U]));
  idsInRange(env, fn, "uniq", UQ, U, in.N);
  std::vector<uint8_t> seen = scratch<uint8_t>(fn, "occurrence flags", Thk);
  for (int64_t i = 0; i < U; i++)
    for (int64_t p = OF[i]; p < OF[i + 1]; p++) {
      const int64_t pos = OR[p];
      if (pos < 0 || pos >= Thk || seen[pos] || IDS[pos] != UQ[i])
        throwRange(env, std::string(fn) + ": order/uniq do not match ids at order[" + std::to_string(p) + "]");
      seen[pos] = 1;
    }
  return A;
}

void peerBackwardRows(const BackwardRowsArgs& A) {
  const char* fn = "peerBackwardRows";
  const BackwardInputs& in = A.in;
  const int64_t T = in.T, d = in.d, hk = in.hk, k = in.k, U = A.U, Td = in.Td, Thk = in.Thk;
  const PeerAct act = in.act;
  const bool pkm = in.pkm;
  const Span<float> x = in.x, g = in.g, a = in.a, gy = in.gy;
  const TableRef u = in.tu, v = in.tv;
  const Span<float> gx = A.gx, gs = A.gs, gu = A.gu, gv = A.gv;
  const int32_t *OF = A.offsets.data, *OR = A.order.data, *UQ = A.uniq.data;
  if (T == 0) return;

  // phase 1: experts in slices of about equal occurrence counts, per-slice gx partials (slice 0
  // writes gx itself), so gx's bits do not depend on the threads
  const int S = sumSlices(U, 16);
  std::vector<float> gxLocal = scratch<float>(fn, "per-slice gx", pkm ? 0 : (S - 1) * Td);
  std::vector<float> dgBuf = scratch<float>(fn, "gate gradients", Thk);
  std::vector<float> rowBuf = scratch<float>(fn, "row accumulators", S * 2 * d);
  if (!pkm) std::fill(gx.data, gx.data + Td, 0.0f);
  const PeerIsa& I = isa();
  float* DG = dgBuf.data();
  forSlices(U, S, OF, [&](int sl, int64_t i0, int64_t i1) {
    float* gxa = pkm ? nullptr : (sl == 0 ? gx.data : gxLocal.data() + (sl - 1) * Td);
    float* accU = rowBuf.data() + sl * 2 * d;
    float* accV = accU + d;
    for (int64_t i = i0; i < i1; i++) {
      if (i + 1 < i1) {  // next expert's rows
        const int64_t nr = (int64_t)UQ[i + 1] * d;
        v.prefetch(nr, d);
        if (!pkm) u.prefetch(nr, d);
      }
      const int64_t row = (int64_t)UQ[i] * d;
      float* gur = gu.data ? gu.data + i * d : accU;
      float* gvr = gv.data ? gv.data + i * d : accV;
      std::fill(gur, gur + d, 0.0f);
      std::fill(gvr, gvr + d, 0.0f);
      for (int64_t p = OF[i]; p < OF[i + 1]; p++) {
        if (p + 2 < OF[i1]) {  // token rows two occurrences ahead
          const int64_t tp = OR[p + 2] / hk;
          for (int64_t b = 0; b < d; b += 16) {
            __builtin_prefetch(gy.data + tp * d + b);
            if (!pkm) {
              __builtin_prefetch(x.data + tp * d + b);
              __builtin_prefetch(gxa + tp * d + b);
            }
          }
        }
        const int64_t pos = OR[p], t = pos / hk;
        const float* gyt = gy.data + t * d;
        float gw;
        v.dots(I, gyt, UQ + i, 1, d, &gw);
        float cv;
        if (pkm) {
          cv = g.data[pos];
          DG[pos] = gw;
        } else {
          const float av = a.data[pos], f = actF(act, av);
          cv = g.data[pos] * f;
          DG[pos] = gw * f;
          const float cu = gw * g.data[pos] * actD(act, av);
          u.axpyRow(I, cu, row, gxa + t * d, d);
          if (gu.data) I.axpy(cu, x.data + t * d, gur, d);
        }
        if (gv.data) I.axpy(cv, gyt, gvr, d);
      }
    }
  });
  // phase 2: tokens: gate gradients (softmax backward per head) and the gx partial sums
  const float* GL = gxLocal.data();
  parallelChunks(T, 16, [&](int, int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const float* gt = g.data + t * hk;
      const float* dg = DG + t * hk;
      float* gst = gs.data + t * hk;
      softmaxHeadsBackward(gt, dg, hk, k, gst);
      if (!pkm)
        for (int sl = 1; sl < S; sl++) I.axpy(1.0f, GL + (sl - 1) * Td + t * d, gx.data + t * d, d);
    }
  });
}

Napi::Value PeerBackwardRowsNapi(const Napi::CallbackInfo& info) {
  peerBackwardRows(parseBackwardRows(info, "peerBackwardRows"));
  return info.Env().Undefined();
}
MOELAB_EXPORT(peerBackwardRows, PeerBackwardRowsNapi);

// ------------------------------------------------------------------ peerCoalesce

// Stable grouping of n ids in [0, N): uniq (ascending), offsets (U + 1), order (positions grouped
// by id, ascending within a group); returns U. A counting sort when its N counters cost about as
// much as the ids themselves, else a sort of (id, position) keys: memory stays O(n) for any N.
int32_t peerCoalesce(const char* fn, int64_t n, int64_t N, const int32_t* ids, int32_t* uniq, int32_t* offsets,
                     int32_t* order) {
  int32_t U = 0;
  if (N <= 4 * n + 4096) {
    std::vector<int32_t> cnt = scratch<int32_t>(fn, "id counts", N);
    for (int64_t i = 0; i < n; i++) cnt[ids[i]]++;
    int32_t off = 0;
    for (int64_t id = 0; id < N; id++) {
      const int32_t c = cnt[id];
      if (!c) continue;
      uniq[U] = (int32_t)id;
      offsets[U++] = off;
      cnt[id] = off;  // now the write cursor
      off += c;
    }
    offsets[U] = off;
    for (int64_t i = 0; i < n; i++) order[cnt[ids[i]]++] = (int32_t)i;
    return U;
  }
  std::vector<uint64_t> keys = scratch<uint64_t>(fn, "sort keys", n);
  for (int64_t i = 0; i < n; i++) keys[i] = (uint64_t)(uint32_t)ids[i] << 32 | (uint32_t)i;
  std::sort(keys.begin(), keys.end());
  for (int64_t p = 0; p < n; p++) {
    const int32_t id = (int32_t)(keys[p] >> 32);
    if (p == 0 || id != uniq[U - 1]) {
      uniq[U] = id;
      offsets[U++] = (int32_t)p;
    }
    order[p] = (int32_t)(uint32_t)keys[p];
  }
  offsets[U] = (int32_t)n;
  return U;
}

// peerCoalesce(n, N, ids, uniq, offsets, order) -> U
Napi::Value PeerCoalesceNapi(const Napi::CallbackInfo& info) {
  const char* fn = "peerCoalesce";
  auto env = info.Env();
  needArgs(info, 6, fn);
  int64_t n = dimArg(info, 0, fn, "n"), N = dimArg(info, 1, fn, "N", 1);
  if (n >= std::numeric_limits<int32_t>::max() || N > std::numeric_limits<int32_t>::max())
    throwRange(env, std::string(fn) + ": n and N must be < 2^31");
  auto ids = i32Arg(info, 2, fn, "ids");
  auto uniq = i32Arg(info, 3, fn, "uniq");
  auto offsets = i32Arg(info, 4, fn, "offsets");
  auto order = i32Arg(info, 5, fn, "order");
  needLen(env, ids, n, fn, "ids");
  needLen(env, uniq, n, fn, "uniq");
  needLen(env, offsets, n + 1, fn, "offsets");
  needLen(env, order, n, fn, "order");
  noOverlap(env, fn, uniq, "uniq", offsets, "offsets");
  noOverlap(env, fn, uniq, "uniq", order, "order");
  noOverlap(env, fn, offsets, "offsets", order, "order");
  noOverlap(env, fn, uniq, "uniq", ids, "ids");
  noOverlap(env, fn, offsets, "offsets", ids, "ids");
  noOverlap(env, fn, order, "order", ids, "ids");
  idsInRange(env, fn, "ids", ids.data, n, N);
  return Napi::Number::New(env, peerCoalesce(fn, n, N, ids.data, uniq.data, offsets.data, order.data));
}
MOELAB_EXPORT(peerCoalesce, PeerCoalesceNapi);

// ------------------------------------------------------------------ peerRowGrad

// peerRowGrad(U, d, per, offsets, order, coef|null, src, out)
struct RowGradArgs {
  int64_t U, d, per;
  Span<int32_t> offsets, order;
  Span<float> coef, src, out;  // coef may be null (all ones)
};

RowGradArgs parseRowGrad(const Napi::CallbackInfo& info, const char* fn) {
  auto env = info.Env();
  needArgs(info, 8, fn);
  RowGradArgs A;
  A.U = dimArg(info, 0, fn, "U");
  A.d = dimArg(info, 1, fn, "d");
  A.per = dimArg(info, 2, fn, "per", 1);
  A.offsets = i32Arg(info, 3, fn, "offsets");
  A.order = i32Arg(info, 4, fn, "order");
  A.coef = f32OptArg(info, 5, fn, "coef");
  A.src = f32Arg(info, 6, fn, "src");
  A.out = f32Arg(info, 7, fn, "out");
  const int64_t U = A.U, d = A.d, per = A.per;
  needLen(env, A.offsets, U + 1, fn, "offsets");
  needLen(env, A.out, checkedMul(env, fn, U, d), fn, "out");
  noOverlap(env, fn, A.out, "out", A.src, "src");
  noOverlap(env, fn, A.out, "out", A.offsets, "offsets");
  noOverlap(env, fn, A.out, "out", A.order, "order");
  noOverlap(env, fn, A.out, "out", A.coef, "coef");
  if (U == 0 || d == 0) return A;
  offsetsInRange(env, fn, "offsets", A.offsets, U, (int64_t)A.order.length);
  const int32_t *OF = A.offsets.data, *OR = A.order.data;
  const int64_t srcRows = (int64_t)(A.src.length / (uint64_t)d);
  for (int64_t p = OF[0]; p < OF[U]; p++) {
    const int64_t pos = OR[p];
    if (pos < 0 || pos / per >= srcRows || (A.coef.data && (uint64_t)pos >= A.coef.length))
      throwRange(env, std::string(fn) + ": order[" + std::to_string(p) + "] = " + std::to_string(pos) + " out of range");
  }
  return A;
}

void peerRowGrad(const RowGradArgs& A) {
  const int64_t U = A.U, d = A.d, per = A.per;
  if (U == 0 || d == 0) return;
  const int32_t *OF = A.offsets.data, *OR = A.order.data;
  const PeerIsa& I = isa();
  const float* C = A.coef.data;
  const float* S = A.src.data;
  float* O = A.out.data;
  parallelChunksWeighted(U, 8, OF, [&](int, int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      float* o = O + i * d;
      std::fill(o, o + d, 0.0f);
      for (int64_t p = OF[i]; p < OF[i + 1]; p++) {
        if (p + 4 < OF[i1]) {  // the source row four occurrences ahead (rows are scattered over src)
          const char* pf = reinterpret_cast<const char*>(S + (OR[p + 4] / per) * d);
          for (int64_t b = 0; b < d * 4; b += 64) __builtin_prefetch(pf + b);
        }
        const int64_t pos = OR[p];
        I.axpy(C ? C[pos] : 1.0f, S + (pos / per) * d, o, d);
      }
    }
  });
}

Napi::Value PeerRowGradNapi(const Napi::CallbackInfo& info) {
  peerRowGrad(parseRowGrad(info, "peerRowGrad"));
  return info.Env().Undefined();
}
MOELAB_EXPORT(peerRowGrad, PeerRowGradNapi);

// ------------------------------------------------------------------ sparseAdam

// sparseAdam(U, d, ids, g, p, m, v, lr, beta1, beta2, eps, bc1, bc2, seed?); m, v both Float32Array or both
// Uint16Array; p Float32Array, or Uint16Array (bfloat16 table, stochastic rounding keyed by seed, required)
struct SparseAdamArgs {
  int64_t U, d;
  Span<int32_t> ids;            // U rows of p, strictly increasing
  Span<float> g, p;             // g [U, d], p [N, d] (p null when bf16)
  Span<uint16_t> ph;            // p as bfloat16 bits
  uint32_t seed;
  bool bf;                      // moments in bfloat16 bits (mh, vh) instead of float (mf, vf)
  Span<float> mf, vf;
  Span<uint16_t> mh, vh;
  float b1c, b2c, step, eps;    // 1-beta1, 1-beta2, lr*sqrt(bc2)/bc1, eps
};

SparseAdamArgs parseSparseAdam(const Napi::CallbackInfo& info, const char* fn) {
  auto env = info.Env();
  needArgs(info, 13, fn);
  SparseAdamArgs A{};
  A.U = dimArg(info, 0, fn, "U");
  A.d = dimArg(info, 1, fn, "d", 1);
  A.ids = i32Arg(info, 2, fn, "ids");
  A.g = f32Arg(info, 3, fn, "g");
  if (isU16(info, 4)) {
    A.ph = u16Arg(info, 4, fn, "p");
    if (isNullish(info, 13)) throwType(env, std::string(fn) + ": a bfloat16 table 'p' needs the rounding seed (argument 13)");
    const double sd = numArg(info, 13, fn, "seed");
    if (!(sd >= 0 && sd <= 4294967295.0) || sd != std::floor(sd)) throwRange(env, std::string(fn) + ": seed must be a uint32");
    A.seed = (uint32_t)sd;
  } else {
    A.p = f32Arg(info, 4, fn, "p");
  }
  A.bf = isU16(info, 5);
  if (A.bf != isU16(info, 6) && info[6].IsTypedArray())
    throwType(env, std::string(fn) + ": 'm' and 'v' must both be Float32Array or both Uint16Array");
  if (A.bf) {
    A.mh = u16Arg(info, 5, fn, "m");
    A.vh = u16Arg(info, 6, fn, "v");
  } else {
    A.mf = f32Arg(info, 5, fn, "m");
    A.vf = f32Arg(info, 6, fn, "v");
  }
  const double lr = numArg(info, 7, fn, "lr"), b1 = numArg(info, 8, fn, "beta1"), b2 = numArg(info, 9, fn, "beta2");
  const double eps = numArg(info, 10, fn, "eps"), bc1 = numArg(info, 11, fn, "bc1"), bc2 = numArg(info, 12, fn, "bc2");
  if (!(bc1 > 0 && bc2 > 0)) throwRange(env, std::string(fn) + ": bias corrections must be > 0");
  A.b1c = (float)(1 - b1), A.b2c = (float)(1 - b2), A.step = (float)(lr * std::sqrt(bc2) / bc1), A.eps = (float)eps;
  const uint64_t pLen = A.ph.data ? A.ph.length : A.p.length;
  const int64_t U = A.U, d = A.d, N = (int64_t)(pLen / (uint64_t)d), Nd = N * d;
  needLen(env, A.ids, U, fn, "ids");
  needLen(env, A.g, checkedMul(env, fn, U, d), fn, "g");
  auto moments = [&](const auto& m, const auto& v) {
    needLen(env, m, Nd, fn, "m");
    needLen(env, v, Nd, fn, "v");
    noOverlap(env, fn, m, "m", v, "v");
    for (const auto& [s, sn] : {std::make_pair(m, "m"), std::make_pair(v, "v")}) {
      noOverlap(env, fn, s, sn, A.p, "p");
      noOverlap(env, fn, s, sn, A.ph, "p");
      noOverlap(env, fn, s, sn, A.g, "g");
      noOverlap(env, fn, s, sn, A.ids, "ids");
    }
  };
  if (A.bf) moments(A.mh, A.vh);
  else moments(A.mf, A.vf);
  noOverlap(env, fn, A.p, "p", A.g, "g");
  noOverlap(env, fn, A.p, "p", A.ids, "ids");
  noOverlap(env, fn, A.ph, "p", A.g, "g");
  noOverlap(env, fn, A.ph, "p", A.ids, "ids");
  idsInRange(env, fn, "ids", A.ids.data, U, N);
  const int32_t* I = A.ids.data;
  for (int64_t i = 1; i < U; i++)
    if (I[i] <= I[i - 1])
      throwRange(env, std::string(fn) + ": ids must be strictly increasing (ids[" + std::to_string(i) + "] = " + std::to_string(I[i]) + ")");
  return A;
}

// Lazy Adam on the rows ids[0..U) of p (PyTorch SparseAdam semantics, see src/backend/kernels/peer.ts).
void sparseAdam(const SparseAdamArgs& A) {
  const int64_t d = A.d;
  const int32_t* I = A.ids.data;
  const float *g = A.g.data, b1c = A.b1c, b2c = A.b2c, step = A.step, ep = A.eps;
  float* p = A.p.data;
  const PeerIsa& K = isa();
  parallelChunks(A.U, 16, [&](int, int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      const int64_t o = (int64_t)I[i] * d;
      if (A.ph.data) {
        const uint32_t key = lowbias32(A.seed ^ lowbias32((uint32_t)I[i]));
        if (A.bf) K.adamSrBf16(d, g + i * d, A.ph.data + o, A.mh.data + o, A.vh.data + o, b1c, b2c, step, ep, key);
        else K.adamSr(d, g + i * d, A.ph.data + o, A.mf.data + o, A.vf.data + o, b1c, b2c, step, ep, key);
      } else if (A.bf) K.adamBf16(d, g + i * d, p + o, A.mh.data + o, A.vh.data + o, b1c, b2c, step, ep);
      else K.adam(d, g + i * d, p + o, A.mf.data + o, A.vf.data + o, b1c, b2c, step, ep);
    }
  });
}

Napi::Value SparseAdamNapi(const Napi::CallbackInfo& info) {
  sparseAdam(parseSparseAdam(info, "sparseAdam"));
  return info.Env().Undefined();
}
MOELAB_EXPORT(sparseAdam, SparseAdamNapi);

// ------------------------------------------------------------------ query BatchNorm

// peerBatchNorm(T, C, training, eps, momentum, x, w, b, runMean, runVar, y, mean, rstd)
// BatchNorm1d over the rows of x [T, C], threaded over blocks of channels; statistics in double.
struct BatchNormArgs {
  int64_t T, C;
  bool training;
  double eps, mom;
  Span<float> x, w, b, rm, rv, y, mean, rstd;  // runMean, runVar, y, mean, rstd written
};

BatchNormArgs parseBatchNorm(const Napi::CallbackInfo& info, const char* fn) {
  auto env = info.Env();
  needArgs(info, 13, fn);
  BatchNormArgs A;
  A.T = dimArg(info, 0, fn, "T");
  A.C = dimArg(info, 1, fn, "C", 1);
  A.training = boolArg(info, 2, fn, "training");
  A.eps = numArg(info, 3, fn, "eps");
  A.mom = numArg(info, 4, fn, "momentum");
  if (!(A.eps >= 0) || !(A.mom >= 0 && A.mom <= 1)) throwRange(env, std::string(fn) + ": eps must be >= 0 and momentum in [0, 1]");
  if (A.training && A.T < 2) throwRange(env, std::string(fn) + ": training needs more than 1 value per channel");
  const Span<float> all[] = {A.x = f32Arg(info, 5, fn, "x"),        A.w = f32Arg(info, 6, fn, "w"),
                             A.b = f32Arg(info, 7, fn, "b"),        A.rm = f32Arg(info, 8, fn, "runMean"),
                             A.rv = f32Arg(info, 9, fn, "runVar"),  A.y = f32Arg(info, 10, fn, "y"),
                             A.mean = f32Arg(info, 11, fn, "mean"), A.rstd = f32Arg(info, 12, fn, "rstd")};
  const char* names[] = {"x", "w", "b", "runMean", "runVar", "y", "mean", "rstd"};
  const int64_t TC = checkedMul(env, fn, A.T, A.C);
  for (int i = 0; i < 8; i++) needLen(env, all[i], i == 0 || i == 5 ? TC : A.C, fn, names[i]);
  writtenApart(env, fn, all, names, 8, 3);
  return A;
}

void peerBatchNorm(const BatchNormArgs& A) {
  const int64_t T = A.T, C = A.C;
  const bool training = A.training;
  const double eps = A.eps, mom = A.mom;
  const Span<float> x = A.x, w = A.w, b = A.b, rm = A.rm, rv = A.rv, y = A.y, mean = A.mean, rstd = A.rstd;
  const float* X = x.data;
  parallelChunks(C, 32, [&](int, int64_t c0, int64_t c1) {
    const int64_t nc = c1 - c0;
    std::vector<double> s(nc, 0.0), q(nc, 0.0);
    if (training) {
      for (int64_t t = 0; t < T; t++)
        for (int64_t c = 0; c < nc; c++) s[c] += X[t * C + c0 + c];
      for (int64_t c = 0; c < nc; c++) s[c] /= (double)T;
      for (int64_t t = 0; t < T; t++)
        for (int64_t c = 0; c < nc; c++) {
          const double e = X[t * C + c0 + c] - s[c];
          q[c] += e * e;
        }
      for (int64_t c = 0; c < nc; c++) {
        mean.data[c0 + c] = (float)s[c];
        rstd.data[c0 + c] = (float)(1.0 / std::sqrt(q[c] / (double)T + eps));
        rm.data[c0 + c] = (float)((1 - mom) * rm.data[c0 + c] + mom * s[c]);
        rv.data[c0 + c] = (float)((1 - mom) * rv.data[c0 + c] + mom * q[c] / (double)(T - 1));
      }
    } else {
      for (int64_t c = c0; c < c1; c++) {
        mean.data[c] = rm.data[c];
        rstd.data[c] = (float)(1.0 / std::sqrt((double)rv.data[c] + eps));
      }
    }
    for (int64_t t = 0; t < T; t++)
      for (int64_t c = c0; c < c1; c++)
        y.data[t * C + c] = (X[t * C + c] - mean.data[c]) * rstd.data[c] * w.data[c] + b.data[c];
  });
}

Napi::Value PeerBatchNormNapi(const Napi::CallbackInfo& info) {
  peerBatchNorm(parseBatchNorm(info, "peerBatchNorm"));
  return info.Env().Undefined();
}
MOELAB_EXPORT(peerBatchNorm, PeerBatchNormNapi);

// peerBatchNormBackward(T, C, training, x, w, mean, rstd, gy, gx, gw, gb): gx, gw, gb written.
struct BatchNormBackwardArgs {
  int64_t T, C;
  bool training;
  Span<float> x, w, mean, rstd, gy, gx, gw, gb;
};

BatchNormBackwardArgs parseBatchNormBackward(const Napi::CallbackInfo& info, const char* fn) {
  auto env = info.Env();
  needArgs(info, 11, fn);
  BatchNormBackwardArgs A;
  A.T = dimArg(info, 0, fn, "T");
  A.C = dimArg(info, 1, fn, "C", 1);
  A.training = boolArg(info, 2, fn, "training");
  const Span<float> all[] = {A.x = f32Arg(info, 3, fn, "x"),     A.w = f32Arg(info, 4, fn, "w"),
                             A.mean = f32Arg(info, 5, fn, "mean"), A.rstd = f32Arg(info, 6, fn, "rstd"),
                             A.gy = f32Arg(info, 7, fn, "gy"),   A.gx = f32Arg(info, 8, fn, "gx"),
                             A.gw = f32Arg(info, 9, fn, "gw"),   A.gb = f32Arg(info, 10, fn, "gb")};
  const char* names[] = {"x", "w", "mean", "rstd", "gy", "gx", "gw", "gb"};
  const int64_t TC = checkedMul(env, fn, A.T, A.C);
  for (int i = 0; i < 8; i++) needLen(env, all[i], i == 0 || i == 4 || i == 5 ? TC : A.C, fn, names[i]);
  writtenApart(env, fn, all, names, 8, 5);
  return A;
}

void peerBatchNormBackward(const BatchNormBackwardArgs& A) {
  const int64_t T = A.T, C = A.C;
  const bool training = A.training;
  const Span<float> x = A.x, w = A.w, mean = A.mean, rstd = A.rstd, gy = A.gy, gx = A.gx, gw = A.gw, gb = A.gb;
  const float *X = x.data, *GY = gy.data;
  parallelChunks(C, 32, [&](int, int64_t c0, int64_t c1) {
    const int64_t nc = c1 - c0;
    std::vector<double> sw(nc, 0.0), sb(nc, 0.0);
    for (int64_t t = 0; t < T; t++)
      for (int64_t c = 0; c < nc; c++) {
        const int64_t o = t * C + c0 + c;
        sw[c] += GY[o] * ((X[o] - mean.data[c0 + c]) * rstd.data[c0 + c]);
        sb[c] += GY[o];
      }
    for (int64_t c = 0; c < nc; c++) {
      gw.data[c0 + c] = (float)sw[c];
      gb.data[c0 + c] = (float)sb[c];
    }
    const double invT = T > 0 ? 1.0 / (double)T : 0.0;
    for (int64_t t = 0; t < T; t++)
      for (int64_t c = 0; c < nc; c++) {
        const int64_t o = t * C + c0 + c, ch = c0 + c;
        const double xh = (X[o] - mean.data[ch]) * rstd.data[ch];
        gx.data[o] = training ? (float)(w.data[ch] * rstd.data[ch] * (GY[o] - sb[c] * invT - xh * sw[c] * invT))
                              : w.data[ch] * rstd.data[ch] * GY[o];
      }
  });
}

Napi::Value PeerBatchNormBackwardNapi(const Napi::CallbackInfo& info) {
  peerBatchNormBackward(parseBatchNormBackward(info, "peerBatchNormBackward"));
  return info.Env().Undefined();
}
MOELAB_EXPORT(peerBatchNormBackward, PeerBatchNormBackwardNapi);

// ------------------------------------------------------------------ peerAdviseHugePages

// peerAdviseHugePages(array) -> bool: asks the kernel to back the 2 MiB-aligned interior of a large
// typed array with transparent huge pages (madvise MADV_HUGEPAGE; effective when THP is in
// "madvise" or "always" mode). For the expert tables, their moments and gradient rows this turns a
// page fault per 4 KiB into one per 2 MiB and lets the TLB cover the whole table, which random row
// gathers otherwise miss on almost every row. Purely advisory: contents are unchanged.
Napi::Value PeerAdviseHugePagesNapi(const Napi::CallbackInfo& info) {
  const char* fn = "peerAdviseHugePages";
  auto env = info.Env();
  needArgs(info, 1, fn);
  if (!info[0].IsTypedArray()) throwType(env, std::string(fn) + ": argument must be a typed array");
  auto a = info[0].As<Napi::TypedArray>();
  auto buf = a.ArrayBuffer();
  uintptr_t b = reinterpret_cast<uintptr_t>(buf.Data()) + a.ByteOffset();
  uintptr_t e = b + a.ByteLength();
  const uintptr_t huge = uintptr_t(2) << 20;
  b = (b + huge - 1) & ~(huge - 1);
  e &= ~(huge - 1);
  bool ok = false;
#ifdef MADV_HUGEPAGE
  if (e > b) ok = madvise(reinterpret_cast<void*>(b), e - b, MADV_HUGEPAGE) == 0;
#endif
  return Napi::Boolean::New(env, ok);
}
MOELAB_EXPORT(peerAdviseHugePages, PeerAdviseHugePagesNapi);

// ------------------------------------------------------------------ peerUnionForward / peerUnionBackward

// The gate side of the dense union path (src/tensor/ops/peer_union.ts): the GEMMs against the U
// gathered rows run elsewhere; these pick each token's entries out of the [T, U] products and
// scatter its coefficients back into [T, U] matrices. Threaded over tokens (each owns its rows).
//   peerUnionForward(T, hk, k, act, U, cols, scores, A|null, g, a|null, W)
//   peerUnionBackward(T, hk, k, act, U, cols, g, a|null, GW, gscores, C|null)
struct UnionShape {
  int64_t T, hk, k, U, Thk, TU;
  PeerAct act;
  Span<int32_t> cols;
};

UnionShape unionShape(const Napi::CallbackInfo& info, const char* fn, size_t nargs) {
  auto env = info.Env();
  needArgs(info, nargs, fn);
  UnionShape S;
  S.T = dimArg(info, 0, fn, "T");
  S.hk = dimArg(info, 1, fn, "hk", 1);
  S.k = dimArg(info, 2, fn, "k", 1);
  S.act = actArg(info, 3, fn);
  S.U = dimArg(info, 4, fn, "U", 1);
  if (S.hk % S.k) throwRange(env, std::string(fn) + ": hk (" + std::to_string(S.hk) + ") must be a multiple of k (" + std::to_string(S.k) + ")");
  S.Thk = checkedMul(env, fn, S.T, S.hk);
  S.TU = checkedMul(env, fn, S.T, S.U);
  S.cols = i32Arg(info, 5, fn, "cols");
  needLen(env, S.cols, S.Thk, fn, "cols");
  idsInRange(env, fn, "cols", S.cols.data, S.Thk, S.U);
  return S;
}

UnaryOp unaryOf(PeerAct act) { return act == PeerAct::Gelu ? UnaryOp::GeluErf : UnaryOp::Relu; }

Napi::Value PeerUnionForwardNapi(const Napi::CallbackInfo& info) {
  const char* fn = "peerUnionForward";
  auto env = info.Env();
  const UnionShape S = unionShape(info, fn, 11);
  const Span<float> sc = f32Arg(info, 6, fn, "scores"), A = f32OptArg(info, 7, fn, "A"), g = f32Arg(info, 8, fn, "g"),
                    a = f32OptArg(info, 9, fn, "a"), W = f32Arg(info, 10, fn, "W");
  const bool pkm = !A.data;
  if (!pkm && !a.data) throwType(env, std::string(fn) + ": argument 'a' must be a Float32Array when A is given");
  needLen(env, sc, S.Thk, fn, "scores");
  needLen(env, g, S.Thk, fn, "g");
  needLen(env, W, S.TU, fn, "W");
  if (!pkm) {
    needLen(env, A, S.TU, fn, "A");
    needLen(env, a, S.Thk, fn, "a");
  }
  const Span<float> spans[] = {sc, A, g, pkm ? Span<float>{nullptr, 0} : a, W};
  const char* names[] = {"scores", "A", "g", "a", "W"};
  writtenApart(env, fn, spans, names, 5, 2);
  for (int i = 2; i < 5; i++) noOverlap(env, fn, spans[i], names[i], S.cols, "cols");
  const int64_t hk = S.hk, k = S.k, U = S.U;
  const UnaryOp op = unaryOf(S.act);
  const int32_t* cols = S.cols.data;
  const simd::OpsTable& K = ops::kernels();
  const int nt = threadsFor(S.T, 16);
  std::vector<float> faBuf = scratch<float>(fn, "activations", nt * hk);
  parallelChunks(S.T, 16, [&](int th, int64_t t0, int64_t t1) {
    float* fa = faBuf.data() + th * hk;
    for (int64_t t = t0; t < t1; t++) {
      float* gt = g.data + t * hk;
      K.softmaxRows(sc.data + t * hk, gt, hk / k, k, false);
      const int32_t* ct = cols + t * hk;
      float* Wt = W.data + t * U;
      std::fill(Wt, Wt + U, 0.0f);
      if (pkm) {
        for (int64_t j = 0; j < hk; j++) Wt[ct[j]] += gt[j];
      } else {
        const float* At = A.data + t * U;
        float* at = a.data + t * hk;
        for (int64_t j = 0; j < hk; j++) at[j] = At[ct[j]];
        K.unary(op, at, fa, hk);
        for (int64_t j = 0; j < hk; j++) Wt[ct[j]] += gt[j] * fa[j];
      }
    }
  });
  return env.Undefined();
}
MOELAB_EXPORT(peerUnionForward, PeerUnionForwardNapi);

Napi::Value PeerUnionBackwardNapi(const Napi::CallbackInfo& info) {
  const char* fn = "peerUnionBackward";
  auto env = info.Env();
  const UnionShape S = unionShape(info, fn, 11);
  const Span<float> g = f32Arg(info, 6, fn, "g"), a = f32OptArg(info, 7, fn, "a"), GW = f32Arg(info, 8, fn, "GW"),
                    gs = f32Arg(info, 9, fn, "gscores"), C = f32OptArg(info, 10, fn, "C");
  const bool pkm = !a.data;
  if (pkm != !C.data) throwType(env, std::string(fn) + ": arguments 'a' and 'C' must both be Float32Arrays or both null");
  needLen(env, g, S.Thk, fn, "g");
  needLen(env, GW, S.TU, fn, "GW");
  needLen(env, gs, S.Thk, fn, "gscores");
  if (!pkm) {
    needLen(env, a, S.Thk, fn, "a");
    needLen(env, C, S.TU, fn, "C");
  }
  const Span<float> spans[] = {g, a, GW, gs, C};
  const char* names[] = {"g", "a", "GW", "gscores", "C"};
  writtenApart(env, fn, spans, names, 5, 3);
  for (int i = 3; i < 5; i++) noOverlap(env, fn, spans[i], names[i], S.cols, "cols");
  const int64_t hk = S.hk, k = S.k, U = S.U;
  const UnaryOp op = unaryOf(S.act);
  const int32_t* cols = S.cols.data;
  const simd::OpsTable& K = ops::kernels();
  const int nt = threadsFor(S.T, 16);
  std::vector<float> buf = scratch<float>(fn, "gate gradients", nt * 4 * hk);
  parallelChunks(S.T, 16, [&](int th, int64_t t0, int64_t t1) {
    float* gw = buf.data() + th * 4 * hk;
    float* dg = gw + hk;
    float* fa = dg + hk;
    float* gd = fa + hk;
    for (int64_t t = t0; t < t1; t++) {
      const float* gt = g.data + t * hk;
      const int32_t* ct = cols + t * hk;
      const float* GWt = GW.data + t * U;
      for (int64_t j = 0; j < hk; j++) gw[j] = GWt[ct[j]];
      if (pkm) {
        for (int64_t j = 0; j < hk; j++) dg[j] = gw[j];
      } else {
        const float* at = a.data + t * hk;
        K.unary(op, at, fa, hk);
        K.unaryBackward(op, at, fa, gw, gd, hk);  // gw act'(a)
        float* Ct = C.data + t * U;
        std::fill(Ct, Ct + U, 0.0f);
        for (int64_t j = 0; j < hk; j++) {
          dg[j] = gw[j] * fa[j];
          Ct[ct[j]] += gd[j] * gt[j];
        }
      }
      float* gst = gs.data + t * hk;
      softmaxHeadsBackward(gt, dg, hk, k, gst);
    }
  });
  return env.Undefined();
}
MOELAB_EXPORT(peerUnionBackward, PeerUnionBackwardNapi);

}  // namespace
}  // namespace moelab
