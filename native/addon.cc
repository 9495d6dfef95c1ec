// The addon's module init. Every function registered with MOELAB_EXPORT is exported through one
// trampoline that
//   - holds the kernel lock for the whole call, so kernels called from several JS threads
//     (worker_threads) run one at a time and never share the pool's job slot (threadpool.h);
//   - turns allocation failure anywhere in the call (any thread of the pool) into a JS Error naming
//     the kernel, instead of std::terminate.
// NAPI_MODULE_INIT makes the addon context-aware: each worker thread that loads it gets its own
// exports object over the same registry and pool.
#include <unistd.h>

#include <mutex>
#include <new>
#include <stdexcept>
#include <string>

#include "args.h"
#include "registry.h"
#include "threadpool.h"

namespace moelab {

std::vector<Registration>& registry() {
  static std::vector<Registration> r;
  return r;
}

uint64_t physicalMemoryBytes() {
  static const uint64_t bytes = [] {
    const long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : (uint64_t)0;
  }();
  return bytes;
}

namespace {

Napi::Value trampoline(const Napi::CallbackInfo& info) {
  const Registration& r = *static_cast<const Registration*>(info.Data());
  std::lock_guard<std::mutex> lock(kernelMutex());
  try {
    return r.fn(info);
  } catch (const AllocError& e) {
    throw Napi::Error::New(info.Env(), e.what());
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(info.Env(), std::string(r.name) + ": out of memory (reduce the sizes passed to this kernel)");
  } catch (const std::length_error&) {
    throw Napi::Error::New(info.Env(), std::string(r.name) + ": a buffer size is too large (reduce the sizes passed to this kernel)");
  }
}

}  // namespace
}  // namespace moelab

NAPI_MODULE_INIT() {
  Napi::Env e(env);
  Napi::Object ex(env, exports);
  try {
    for (auto& r : moelab::registry())
      ex.Set(r.name, Napi::Function::New(e, moelab::trampoline, r.name, static_cast<void*>(&r)));
  } catch (const Napi::Error& err) {
    err.ThrowAsJavaScriptException();
    return nullptr;
  }
  return exports;
}
