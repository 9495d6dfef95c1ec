// Routing kernels (contract in src/backend/kernels/routing.ts, reference in src/backend/ref/routing.ts):
//   expertChoice  expert-choice routing (Zhou et al. 2022): every expert picks its top-C tokens from
//                 its column of the [T, E] router scores. Threaded over experts; each thread ranks one
//                 column at a time in its own key buffer (nth_element + sort of the C winners), so
//                 the cost is O(T + C log C) per expert and no [E, T] transpose is materialised.
// Entry point: parse (args.h checks) -> argument struct -> pure kernel, as everywhere in native/.
#include "args.h"
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

struct ExpertChoiceArgs {
  int64_t T, E, C;
  const float* scores;  // [T, E]
  int32_t* tok;         // [E, C]
  float* vals;          // [E, C]
};

ExpertChoiceArgs parseExpertChoice(const Napi::CallbackInfo& info) {
  const char* fn = "expertChoice";
  Napi::Env env = info.Env();
  needArgs(info, 6, fn);
  const int64_t T = dimArg(info, 0, fn, "T"), E = dimArg(info, 1, fn, "E"), C = dimArg(info, 2, fn, "C");
  auto scores = f32Arg(info, 3, fn, "scores");
  auto tok = i32Arg(info, 4, fn, "tok");
  auto vals = f32Arg(info, 5, fn, "vals");
  if (C > T) throwRange(env, std::string(fn) + ": C (" + std::to_string(C) + ") > T (" + std::to_string(T) + "): an expert cannot take more tokens than there are");
  if (T > 0x7fffffff || E > 0x7fffffff) throwRange(env, std::string(fn) + ": sizes too large");
  needLen(env, scores, checkedMul(env, fn, T, E), fn, "scores");
  needLen(env, tok, checkedMul(env, fn, E, C), fn, "tok");
  needLen(env, vals, E * C, fn, "vals");
  noOverlap(env, fn, vals, "vals", scores, "scores");
  noOverlap(env, fn, tok, "tok", scores, "scores");
  noOverlap(env, fn, tok, "tok", vals, "vals");
  return {T, E, C, scores.data, tok.data, vals.data};
}

// Each expert (column e of scores) keeps its C best tokens, best first: tok[e*C + c], vals[e*C + c].
void expertChoice(const ExpertChoiceArgs& a) {
  const int64_t T = a.T, E = a.E, C = a.C;
  if (E * C == 0) return;
  const int nt = (E >= 2 && T * E >= 65536) ? threadsFor(E, 1) : 1;
  // one key buffer per thread, allocated here so a failure throws on the JS thread
  std::vector<uint64_t> bufs = scratch<uint64_t>("expertChoice", "ranking keys", (int64_t)nt * T);
  auto column = [&](int t, int64_t e0, int64_t e1) {
    uint64_t* buf = bufs.data() + (size_t)t * T;
    for (int64_t e = e0; e < e1; e++) {
      for (int64_t i = 0; i < T; i++) buf[i] = routeRankKey(a.scores[i * E + e], (uint32_t)i);
      if (C < T) std::nth_element(buf, buf + C - 1, buf + T, std::greater<uint64_t>());
      std::sort(buf, buf + C, std::greater<uint64_t>());
      for (int64_t c = 0; c < C; c++) {
        const int32_t i = (int32_t)~(uint32_t)buf[c];
        a.tok[e * C + c] = i;
        a.vals[e * C + c] = a.scores[(int64_t)i * E + e];
      }
    }
  };
  if (nt <= 1) column(0, 0, E);
  else parallelChunks(E, 1, column);
}

Napi::Value ExpertChoiceNapi(const Napi::CallbackInfo& info) {
  expertChoice(parseExpertChoice(info));
  return info.Env().Undefined();
}

}  // namespace

MOELAB_EXPORT(expertChoice, ExpertChoiceNapi);

}  // namespace moelab
