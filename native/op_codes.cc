// opCodes(): the addon's op-code tables, {unary: {neg: 0, ...}, binary, reduce, peerAct}, so a
// test can check them against src/backend/op_codes.ts.
#include "op_codes.h"

#include "args.h"
#include "registry.h"

namespace moelab {
namespace {

template <size_t N>
Napi::Object table(Napi::Env env, const char* const (&names)[N]) {
  Napi::Object o = Napi::Object::New(env);
  for (size_t i = 0; i < N; i++) o.Set(names[i], Napi::Number::New(env, (double)i));
  return o;
}

Napi::Value OpCodesNapi(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("unary", table(env, kUnaryOpNames));
  o.Set("binary", table(env, kBinaryOpNames));
  o.Set("reduce", table(env, kReduceOpNames));
  o.Set("peerAct", table(env, kPeerActNames));
  return o;
}

}  // namespace
MOELAB_EXPORT(opCodes, OpCodesNapi);
}  // namespace moelab
