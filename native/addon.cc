#include "registry.h"
#include "cpu.h"
#include "threadpool.h"

namespace moelab {

std::vector<Registration>& registry() {
  static std::vector<Registration> r;
  return r;
}

}  // namespace moelab

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  for (const auto& r : moelab::registry()) exports.Set(r.name, Napi::Function::New(env, r.fn, r.name));
  return exports;
}

NODE_API_MODULE(moelab, Init)
