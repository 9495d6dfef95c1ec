// Kernel files register their N-API functions here at static-init time, so adding a kernel never
// means editing a shared list. addon.cc exports everything registered.
#pragma once
#include <napi.h>
#include <string>
#include <vector>

namespace moelab {

using NapiFn = Napi::Value (*)(const Napi::CallbackInfo&);

struct Registration {
  const char* name;
  NapiFn fn;
};

std::vector<Registration>& registry();

struct Registrar {
  Registrar(const char* name, NapiFn fn) { registry().push_back({name, fn}); }
};

}  // namespace moelab

// MOELAB_EXPORT(gemm, GemmNapi) exports GemmNapi as addon.gemm
#define MOELAB_EXPORT(jsname, fn) static ::moelab::Registrar moelab_reg_##jsname(#jsname, fn)
