// Argument validation for every N-API entry point. JS hands us typed arrays and numbers; anything
// of the wrong type, length or range must become a JS exception, never a crash, so every kernel
// reads its arguments only through these helpers.
#pragma once
#include <napi.h>
#include <cmath>
#include <cstdint>
#include <string>

namespace moelab {

[[noreturn]] inline void throwType(const Napi::Env& env, const std::string& msg) {
  throw Napi::TypeError::New(env, msg);
}
[[noreturn]] inline void throwRange(const Napi::Env& env, const std::string& msg) {
  throw Napi::RangeError::New(env, msg);
}

template <typename T>
struct Span {
  T* data;
  size_t length;  // in elements
};

inline void needArgs(const Napi::CallbackInfo& info, size_t n, const char* fn) {
  if (info.Length() < n)
    throwType(info.Env(), std::string(fn) + ": expected " + std::to_string(n) + " arguments, got " +
                              std::to_string(info.Length()));
}

template <typename T, napi_typedarray_type K>
inline Span<T> typedArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name,
                        const char* tname) {
  // One napi_get_typedarray_info call gives type, length and the offset data pointer: this runs for
  // every array argument of every kernel call, so it stays a single N-API round trip.
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_value v = i < info.Length() ? static_cast<napi_value>(info[i]) : nullptr;
  bool isTyped = false;
  if (v == nullptr || napi_is_typedarray(info.Env(), v, &isTyped) != napi_ok || !isTyped ||
      napi_get_typedarray_info(info.Env(), v, &type, &length, &data, nullptr, nullptr) != napi_ok || type != K)
    throwType(info.Env(), std::string(fn) + ": argument '" + name + "' must be a " + tname);
  if (length == 0) data = nullptr;
  return {reinterpret_cast<T*>(data), length};
}

inline Span<float> f32Arg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  return typedArg<float, napi_float32_array>(info, i, fn, name, "Float32Array");
}
inline Span<int32_t> i32Arg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  return typedArg<int32_t, napi_int32_array>(info, i, fn, name, "Int32Array");
}
inline Span<uint8_t> u8Arg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  return typedArg<uint8_t, napi_uint8_array>(info, i, fn, name, "Uint8Array");
}
inline Span<uint16_t> u16Arg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  return typedArg<uint16_t, napi_uint16_array>(info, i, fn, name, "Uint16Array");
}

// Optional typed array: null/undefined -> {nullptr, 0}
inline Span<float> f32OptArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined()) return {nullptr, 0};
  return f32Arg(info, i, fn, name);
}

inline double numArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (!info[i].IsNumber()) throwType(info.Env(), std::string(fn) + ": argument '" + name + "' must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

// A non-negative integer dimension/count; rejects NaN, fractions, negatives and absurd sizes.
inline int64_t dimArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name,
                      int64_t minValue = 0) {
  double d = numArg(info, i, fn, name);
  if (!std::isfinite(d) || d != std::floor(d) || d < (double)minValue || d > 9.0e15)
    throwRange(info.Env(), std::string(fn) + ": argument '" + name + "' must be an integer >= " +
                               std::to_string(minValue) + ", got " + std::to_string(d));
  return (int64_t)d;
}

inline bool boolArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (!info[i].IsBoolean()) throwType(info.Env(), std::string(fn) + ": argument '" + name + "' must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

// Throws unless span holds at least `need` elements.
template <typename T>
inline void needLen(const Napi::Env& env, const Span<T>& s, int64_t need, const char* fn, const char* name) {
  if (need < 0 || (uint64_t)s.length < (uint64_t)need)
    throwRange(env, std::string(fn) + ": '" + name + "' has " + std::to_string(s.length) + " elements, needs " +
                        std::to_string(need));
}

// Throws if the byte ranges of two spans overlap (an output must not alias an input unless the
// kernel documents in-place use).
template <typename A, typename B>
inline void noAlias(const Napi::Env& env, const Span<A>& a, const Span<B>& b, const char* fn, const char* na,
                    const char* nb) {
  auto a0 = reinterpret_cast<uintptr_t>(a.data), a1 = a0 + a.length * sizeof(A);
  auto b0 = reinterpret_cast<uintptr_t>(b.data), b1 = b0 + b.length * sizeof(B);
  if (a.length && b.length && a0 < b1 && b0 < a1)
    throwRange(env, std::string(fn) + ": '" + na + "' and '" + nb + "' must not overlap");
}

}  // namespace moelab
