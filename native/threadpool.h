// A persistent pool of worker threads. Kernels split work with parallelFor; the calling (JS) thread
// takes part, so threads() == 1 means no workers at all. MOELAB_THREADS sets the count at load
// time (default: hardware concurrency); setThreads changes it later.
#pragma once
#include <cstdint>
#include <functional>

namespace moelab {

int threads();
void setThreads(int n);

// Calls fn(begin, end) over [0, n) in contiguous chunks of at least `grain` items, one chunk per
// thread at most. Blocks until all chunks are done. Not reentrant: fn must not call parallelFor.
void parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// Calls fn(t, nt) once on each of nt = min(threads(), maxThreads) threads; t is the thread index.
void parallelRun(int maxThreads, const std::function<void(int, int)>& fn);

}  // namespace moelab
