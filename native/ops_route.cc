// Routing kernels (contract in src/backend/kernels/routing.ts, reference in src/backend/ref/routing.ts):
//   expertChoice  expert-choice routing (Zhou et al. 2022): every expert picks its top-C tokens from
//                 its column of the [T, E] router scores. Threaded over experts; each thread ranks one
//                 column at a time in its own key buffer (nth_element + sort of the C winners), so
//                 the cost is O(T + C log C) per expert and no [E, T] transpose is materialised.
// Self-contained (its own size and ranking helpers) so argument-check refactors elsewhere in native/
// do not touch it; it reads arguments only through napi_util.h.
#include "napi_util.h"
#include "registry.h"
#include "threadpool.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace moelab {
namespace {

// Ranking key, the same total order as topk: larger key ranks first; -0 ranks as +0, every NaN above
// +inf, and the low word is ~index so equal values keep the lower index first.
inline uint64_t routeRankKey(float v, uint32_t i) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  b = (b << 1) == 0 ? 0 : b;
  uint32_t key = b ^ ((uint32_t)((int32_t)b >> 31) | 0x80000000u);
  key = (b & 0x7fffffffu) > 0x7f800000u ? 0xffffffffu : key;
  return ((uint64_t)key << 32) | (uint32_t)~i;
}

Napi::Value ExpertChoiceNapi(const Napi::CallbackInfo& info) {
  const char* fn = "expertChoice";
  Napi::Env env = info.Env();
  needArgs(info, 6, fn);
  const int64_t T = dimArg(info, 0, fn, "T"), E = dimArg(info, 1, fn, "E"), C = dimArg(info, 2, fn, "C");
  auto scores = f32Arg(info, 3, fn, "scores");
  auto tok = i32Arg(info, 4, fn, "tok");
  auto vals = f32Arg(info, 5, fn, "vals");
  if (C > T) throwRange(env, std::string(fn) + ": C (" + std::to_string(C) + ") > T (" + std::to_string(T) + "): an expert cannot take more tokens than there are");
  if (T > 0x7fffffff || E > 0x7fffffff || T * E > (int64_t(1) << 53) / 2) throwRange(env, std::string(fn) + ": sizes too large");
  needLen(env, scores, T * E, fn, "scores");
  needLen(env, tok, E * C, fn, "tok");
  needLen(env, vals, E * C, fn, "vals");
  noAlias(env, vals, scores, fn, "vals", "scores");
  noAlias(env, tok, scores, fn, "tok", "scores");
  noAlias(env, tok, vals, fn, "tok", "vals");
  if (E * C == 0) return env.Undefined();
  const float* S = scores.data;
  int32_t* TOK = tok.data;
  float* V = vals.data;
  // Jobs go to all pool threads or none (see runOnPool in ops_index.cc); spare threads idle.
  const int nt = (E >= 2 && T * E >= 65536) ? threads() : 1;
  std::vector<uint64_t> bufs;
  try {
    bufs.resize((size_t)nt * T);  // allocated here so a failure throws on the JS thread
  } catch (const std::exception&) {
    throwRange(env, std::string(fn) + ": out of memory");
  }
  auto body = [&, T, E, C](int t, int n) {
    uint64_t* buf = bufs.data() + (size_t)t * T;
    for (int64_t e = E * t / n; e < E * (t + 1) / n; e++) {
      for (int64_t i = 0; i < T; i++) buf[i] = routeRankKey(S[i * E + e], (uint32_t)i);
      if (C < T) std::nth_element(buf, buf + C - 1, buf + T, std::greater<uint64_t>());
      std::sort(buf, buf + C, std::greater<uint64_t>());
      for (int64_t c = 0; c < C; c++) {
        const int32_t i = (int32_t)~(uint32_t)buf[c];
        TOK[e * C + c] = i;
        V[e * C + c] = S[(int64_t)i * E + e];
      }
    }
  };
  if (nt <= 1) body(0, 1);
  else parallelRun(nt, body);
  return env.Undefined();
}

}  // namespace

MOELAB_EXPORT(expertChoice, ExpertChoiceNapi);

}  // namespace moelab
