// A persistent pool of worker threads. Kernels split work with parallelFor / parallelChunks /
// parallelRun; the calling (JS) thread takes part, so threads() == 1 means no workers at all.
// MOELAB_THREADS sets the count at load time (default: hardware concurrency); setThreads changes it.
//
// Several JS threads (worker_threads) may call kernels at once. Two locks keep that safe:
//   - every exported kernel runs under KernelLock (taken by the export trampoline in addon.cc), so
//     one kernel runs at a time and threads() cannot change while a kernel plans its work;
//   - the pool's own submit lock serialises jobs and resizes even for callers that bypass it.
// An exception thrown inside a job (on any thread) is caught, the job still completes on the other
// threads, and the first exception is rethrown on the calling thread.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <mutex>

namespace moelab {

int threads();
void setThreads(int n);

// Held for the whole of every exported N-API call (see addon.cc).
std::mutex& kernelMutex();

// Calls fn(begin, end) over [0, n) in contiguous chunks of at least `grain` items, one chunk per
// thread at most. Blocks until all chunks are done. Not reentrant: fn must not call parallelFor.
void parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// Calls fn(t, nt) once on each of nt <= min(threads(), maxThreads) threads; t is the thread index.
void parallelRun(int maxThreads, const std::function<void(int, int)>& fn);

// Threads parallelChunks would use for n items of at least minPer each: sizes per-thread scratch.
inline int threadsFor(int64_t n, int64_t minPer) {
  const int64_t maxT = std::max<int64_t>(1, (n + minPer - 1) / std::max<int64_t>(1, minPer));
  return (int)std::min<int64_t>(threads(), maxT);
}

// The start of part q of `parts` when n items with cumulative costs offsets[0..n] (non-decreasing)
// are cut into parts of about equal cost: the first item whose start reaches total * q / parts.
inline int64_t costCut(int64_t n, const int32_t* offsets, int64_t q, int64_t parts) {
  if (q <= 0) return 0;
  if (q >= parts) return n;
  const int64_t lo = offsets[0], target = lo + (offsets[n] - lo) * q / parts;
  return std::lower_bound(offsets, offsets + n, target, [](int32_t o, int64_t v) { return o < v; }) - offsets;
}

// Splits [0, n) into one contiguous range per thread (threadsFor(n, minPer) threads) and calls
// fn(thread, begin, end); thread indexes scratch sized with threadsFor.
template <typename F>
void parallelChunks(int64_t n, int64_t minPer, const F& fn) {
  if (n <= 0) return;
  parallelRun(threadsFor(n, minPer), [&](int t, int nt) {
    const int64_t b = n * t / nt, e = n * (t + 1) / nt;
    if (b < e) fn(t, b, e);
  });
}

// Like parallelChunks, but for n items whose cumulative costs are offsets[0..n] (non-decreasing):
// each thread's contiguous range carries about total/nt of the cost, not n/nt of the items. For
// skewed occurrence lists (a few experts holding most picks) an even split by items can leave one
// thread with most of the work.
template <typename F>
void parallelChunksWeighted(int64_t n, int64_t minPer, const int32_t* offsets, const F& fn) {
  if (n <= 0) return;
  parallelRun(threadsFor(n, minPer), [&](int t, int nt) {
    const int64_t b = costCut(n, offsets, t, nt), e = costCut(n, offsets, t + 1, nt);
    if (b < e) fn(t, b, e);
  });
}

// Sums whose bits must not depend on the thread count (a run resumed with another --threads, or on
// another machine, must train the same numbers). The items are cut into slices by the problem
// alone, at most kSumSlices of about minPer items or more each; each slice accumulates its items in
// order into a partial of its own (slice 0 into the output), and the partials are then added in
// slice order. The slices are spread over the threads, so up to kSumSlices threads share the work.
constexpr int kSumSlices = 8;

inline int sumSlices(int64_t n, int64_t minPer) {
  return (int)std::clamp<int64_t>((n + minPer - 1) / std::max<int64_t>(1, minPer), 1, kSumSlices);
}

// Calls fn(slice) for slices 0 .. slices-1 on up to maxThreads threads (slice s on thread s mod nt).
template <typename F>
void forSlicesOn(int maxThreads, int slices, const F& fn) {
  parallelRun(std::min(maxThreads, slices), [&](int t, int nt) {
    for (int s = t; s < slices; s += nt) fn(s);
  });
}

// Calls fn(slice, begin, end) for each of `slices` contiguous ranges of [0, n), cut even by items,
// or with offsets (cumulative costs offsets[0..n], non-decreasing) even by cost.
template <typename F>
void forSlices(int64_t n, int slices, const int32_t* offsets, const F& fn) {
  if (n <= 0) return;
  forSlicesOn(slices, slices, [&](int s) {
    const int64_t b = offsets ? costCut(n, offsets, s, slices) : n * s / slices;
    const int64_t e = offsets ? costCut(n, offsets, s + 1, slices) : n * (s + 1) / slices;
    if (b < e) fn(s, b, e);
  });
}

}  // namespace moelab
