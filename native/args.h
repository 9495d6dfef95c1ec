// Argument checks for every N-API entry point, in one place. JS hands us typed arrays and numbers;
// anything of the wrong type, length, range or overlap must become a JS exception before a kernel
// touches memory, so entry points read and check their arguments only through these helpers, then
// call a pure kernel on plain pointers and sizes.
//
// Also here: scratch allocation. Sizes that come from arguments may be absurd; a kernel's own
// buffers are allocated through scratch()/growScratch(), which refuse more than the machine's
// memory up front and turn an allocation failure into AllocError (a JS Error naming the kernel and
// the size, raised by the export trampoline in addon.cc) instead of std::terminate.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace moelab {

// Largest element count or offset any argument may describe (exact in a double).
constexpr int64_t kMaxElems = int64_t(1) << 53;

[[noreturn]] inline void throwType(const Napi::Env& env, const std::string& msg) {
  throw Napi::TypeError::New(env, msg);
}
[[noreturn]] inline void throwRange(const Napi::Env& env, const std::string& msg) {
  throw Napi::RangeError::New(env, msg);
}

// A typed array's elements (data is null when length is 0).
template <typename T>
struct Span {
  T* data;
  size_t length;  // in elements
};

// Elements [begin, begin + len) of s (the part of an array a kernel touches).
template <typename T>
inline Span<T> slice(const Span<T>& s, int64_t begin, int64_t len) {
  return {s.data && len > 0 ? s.data + begin : nullptr, len > 0 ? (size_t)len : 0};
}
// Elements [lo, hi) from a raw pointer.
template <typename T>
inline Span<T> region(T* p, int64_t lo, int64_t hi) {
  return {p && hi > lo ? p + lo : nullptr, hi > lo ? (size_t)(hi - lo) : 0};
}

// ------------------------------------------------------------------ getters

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

inline bool isNullish(const Napi::CallbackInfo& info, size_t i) {
  return i >= info.Length() || info[i].IsNull() || info[i].IsUndefined();
}
// Optional typed arrays: null/undefined -> {nullptr, 0}
inline Span<float> f32OptArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (isNullish(info, i)) return {nullptr, 0};
  return f32Arg(info, i, fn, name);
}
inline Span<int32_t> i32OptArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (isNullish(info, i)) return {nullptr, 0};
  return i32Arg(info, i, fn, name);
}

inline double numArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (!info[i].IsNumber()) throwType(info.Env(), std::string(fn) + ": argument '" + name + "' must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

inline double finiteArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  double v = numArg(info, i, fn, name);
  if (!std::isfinite(v)) throwRange(info.Env(), std::string(fn) + ": argument '" + name + "' must be finite");
  return v;
}

// A non-negative integer dimension/count; rejects NaN, fractions, negatives and absurd sizes.
inline int64_t dimArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name,
                      int64_t minValue = 0) {
  double d = numArg(info, i, fn, name);
  if (!std::isfinite(d) || d != std::floor(d) || d < (double)minValue || d > (double)kMaxElems)
    throwRange(info.Env(), std::string(fn) + ": argument '" + name + "' must be an integer >= " +
                               std::to_string(minValue) + ", got " + std::to_string(d));
  return (int64_t)d;
}

inline bool boolArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (!info[i].IsBoolean()) throwType(info.Env(), std::string(fn) + ": argument '" + name + "' must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

// Reads N Float32Array arguments from info[first] on; argument i must hold lens[i] elements and
// out[i] is those first lens[i] elements (the part the kernel touches, for overlap checks).
template <size_t N>
inline void f32Args(const Napi::CallbackInfo& info, size_t first, const char* fn, const char* const (&names)[N],
                    const int64_t (&lens)[N], Span<float> (&out)[N]);

// ------------------------------------------------------------------ sizes

// a * b and a + b as element counts; throws RangeError beyond kMaxElems.
inline int64_t checkedMul(const Napi::Env& env, const char* fn, int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r) || r > kMaxElems || r < -kMaxElems)
    throwRange(env, std::string(fn) + ": sizes too large (" + std::to_string(a) + " x " + std::to_string(b) + ")");
  return r;
}
inline int64_t checkedAdd(const Napi::Env& env, const char* fn, int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r) || r > kMaxElems)
    throwRange(env, std::string(fn) + ": sizes too large (" + std::to_string(a) + " + " + std::to_string(b) + ")");
  return r;
}
// Product of non-negative dims (0 if any is 0, checked otherwise).
inline int64_t checkedProd(const Napi::Env& env, const char* fn, std::initializer_list<int64_t> xs) {
  for (int64_t x : xs)
    if (x == 0) return 0;
  int64_t p = 1;
  for (int64_t x : xs) p = checkedMul(env, fn, p, x);
  return p;
}

// Throws unless span holds at least `need` elements.
template <typename T>
inline void needLen(const Napi::Env& env, const Span<T>& s, int64_t need, const char* fn, const char* name) {
  if (need < 0 || (uint64_t)s.length < (uint64_t)need)
    throwRange(env, std::string(fn) + ": '" + name + "' has " + std::to_string(s.length) + " elements, needs " +
                        std::to_string(need));
}

// ------------------------------------------------------------------ overlap

// The one aliasing check: throws if the bytes of a and b intersect (an output must not overlap an
// input or another output unless the kernel documents in-place use). Pass slice()/region() to
// check only the elements a kernel touches.
template <typename A, typename B>
inline void noOverlap(const Napi::Env& env, const char* fn, const Span<A>& a, const char* na, const Span<B>& b,
                      const char* nb) {
  auto a0 = reinterpret_cast<uintptr_t>(a.data), a1 = a0 + a.length * sizeof(A);
  auto b0 = reinterpret_cast<uintptr_t>(b.data), b1 = b0 + b.length * sizeof(B);
  if (a.length && b.length && a0 < b1 && b0 < a1)
    throwRange(env, std::string(fn) + ": '" + na + "' and '" + nb + "' must not overlap");
}

// spans[first..n) are written: each must overlap no other of the n spans (inputs may share memory).
template <typename T>
inline void writtenApart(const Napi::Env& env, const char* fn, const Span<T>* spans, const char* const* names, int n,
                         int first) {
  for (int i = first; i < n; i++)
    for (int j = 0; j < n; j++)
      if (j != i && (j < first || j > i)) noOverlap(env, fn, spans[i], names[i], spans[j], names[j]);
}

template <size_t N>
inline void f32Args(const Napi::CallbackInfo& info, size_t first, const char* fn, const char* const (&names)[N],
                    const int64_t (&lens)[N], Span<float> (&out)[N]) {
  for (size_t i = 0; i < N; i++) {
    Span<float> s = f32Arg(info, first + i, fn, names[i]);
    needLen(info.Env(), s, lens[i], fn, names[i]);
    out[i] = slice(s, 0, lens[i]);
  }
}

// In-place allowed: the same first n elements are fine, any other overlap throws.
template <typename T>
inline void sameOrDisjoint(const Napi::Env& env, const char* fn, const Span<T>& x, const char* nx, const Span<T>& out,
                           const char* nout, int64_t n) {
  if (x.data == out.data) return;
  noOverlap(env, fn, slice(x, 0, n), nx, slice(out, 0, n), nout);
}

// ------------------------------------------------------------------ indices

// Throws unless ids[0..n) all lie in [0, hi); returns the largest id (-1 when n == 0).
inline int64_t idsInRange(const Napi::Env& env, const char* fn, const char* name, const int32_t* ids, int64_t n,
                          int64_t hi) {
  int32_t mx = -1;
  for (int64_t i = 0; i < n; i++) {
    const int32_t v = ids[i];
    if (v < 0 || v >= hi)
      throwRange(env, std::string(fn) + ": " + name + "[" + std::to_string(i) + "] = " + std::to_string(v) +
                          " out of range [0, " + std::to_string(hi) + ")");
    mx = v > mx ? v : mx;
  }
  return mx;
}

// Group boundaries: `off` holds count + 1 entries, off[0] >= 0, non-decreasing, off[count] <= hi.
// After this, every p in [off[0], off[count]) indexes an array of hi elements.
inline void offsetsInRange(const Napi::Env& env, const char* fn, const char* name, const Span<int32_t>& off,
                           int64_t count, int64_t hi) {
  needLen(env, off, count + 1, fn, name);
  const int32_t* o = off.data;
  if (o[0] < 0) throwRange(env, std::string(fn) + ": " + name + "[0] = " + std::to_string(o[0]) + " is negative");
  for (int64_t g = 0; g < count; g++)
    if (o[g + 1] < o[g])
      throwRange(env, std::string(fn) + ": " + name + " must be non-decreasing (" + name + "[" +
                          std::to_string(g + 1) + "] = " + std::to_string(o[g + 1]) + " < " + std::to_string(o[g]) +
                          ")");
  if (o[count] > hi)
    throwRange(env, std::string(fn) + ": " + name + "[" + std::to_string(count) + "] = " + std::to_string(o[count]) +
                        " exceeds " + std::to_string(hi));
}

// ------------------------------------------------------------------ scratch memory

// A kernel could not get its scratch memory; addon.cc turns it into a JS Error with this message.
struct AllocError : std::bad_alloc {
  std::string msg;
  explicit AllocError(std::string m) : msg(std::move(m)) {}
  const char* what() const noexcept override { return msg.c_str(); }
};

// Physical memory in bytes (0 if unknown): more scratch than this is refused before allocating.
uint64_t physicalMemoryBytes();

[[noreturn]] inline void throwAlloc(const char* fn, const char* what, double bytes, const char* why) {
  char b[64];
  std::snprintf(b, sizeof b, "%.4g GiB", bytes / 1073741824.0);
  throw AllocError(std::string(fn) + ": cannot allocate " + b + " of scratch for " + what + " (" + why +
                   "); reduce the sizes passed to this kernel");
}

inline void checkScratchBytes(const char* fn, const char* what, double bytes) {
  const uint64_t phys = physicalMemoryBytes();
  if (bytes < 0 || bytes > 9.0e18 || (phys && bytes > (double)phys)) throwAlloc(fn, what, bytes, "more than this machine's memory");
}

// std::vector<T>(count, init), or AllocError.
template <typename T>
std::vector<T> scratch(const char* fn, const char* what, int64_t count, T init = T()) {
  checkScratchBytes(fn, what, (double)count * sizeof(T));
  try {
    return std::vector<T>((size_t)count, init);
  } catch (const std::bad_alloc&) {
    throwAlloc(fn, what, (double)count * sizeof(T), "out of memory");
  } catch (const std::length_error&) {
    throwAlloc(fn, what, (double)count * sizeof(T), "too large");
  }
}

// v.resize(count) for reused (thread_local) buffers, or AllocError.
template <typename T>
void growScratch(const char* fn, const char* what, std::vector<T>& v, int64_t count) {
  if ((int64_t)v.size() >= count) return;
  checkScratchBytes(fn, what, (double)count * sizeof(T));
  try {
    v.resize((size_t)count);
  } catch (const std::bad_alloc&) {
    throwAlloc(fn, what, (double)count * sizeof(T), "out of memory");
  } catch (const std::length_error&) {
    throwAlloc(fn, what, (double)count * sizeof(T), "too large");
  }
}

}  // namespace moelab
