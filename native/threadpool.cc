#include "threadpool.h"
#include "args.h"
#include "registry.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace moelab {

namespace {

// Workers sleep on a condition variable between jobs and spin briefly after one, because training
// issues thousands of short kernels back to back and a futex wake-up costs tens of microseconds.
class Pool {
 public:
  Pool() {
    int n = (int)std::thread::hardware_concurrency();
    if (const char* e = std::getenv("MOELAB_THREADS")) {
      int v = std::atoi(e);
      if (v > 0) n = v;
    }
    resize(std::max(1, n));
  }
  ~Pool() { stopAll(); }

  int size() const { return nthreads_.load(std::memory_order_acquire); }

  void resize(int n) {
    std::lock_guard<std::mutex> submit(submit_);
    n = std::max(1, std::min(n, 256));
    if (n == nthreads_.load()) return;
    stopAll();
    nthreads_.store(n, std::memory_order_release);
    stop_ = false;
    // The generation is read here, not in the new thread: a job issued before a worker first runs
    // must still count as new to it, or the caller would wait for that worker forever.
    const uint64_t g0 = generation_.load(std::memory_order_acquire);
    for (int i = 1; i < n; i++) workers_.emplace_back([this, i, g0] { loop(i, g0); });
  }

  void run(int nt, const std::function<void(int, int)>& fn) {
    if (std::max(1, std::min(nt, size())) == 1) {
      fn(0, 1);
      return;
    }
    // One job at a time: the job slot, the pending count and the generation belong to one caller.
    std::lock_guard<std::mutex> submit(submit_);
    nt = std::max(1, std::min(nt, nthreads_.load()));
    if (nt == 1) {
      fn(0, 1);
      return;
    }
    error_ = nullptr;
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = &fn;
      jobThreads_ = nt;
      pending_.store(nt - 1, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    runCaught(fn, 0, nt);
    // Spin briefly (workers usually finish within microseconds of us), then yield the core: when
    // the machine is oversubscribed a pure spin would burn the time slice a worker needs.
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; spin++) {
      if (spin < 4000) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
      } else {
        std::this_thread::yield();
      }
    }
    if (error_) std::rethrow_exception(error_);
  }

 private:
  // A job must not throw into a worker loop (std::terminate) nor leave the others waiting: the
  // first exception is kept and rethrown by run() on the submitting thread.
  void runCaught(const std::function<void(int, int)>& fn, int t, int nt) {
    try {
      fn(t, nt);
    } catch (...) {
      std::lock_guard<std::mutex> lk(errMu_);
      if (!error_) error_ = std::current_exception();
    }
  }

  void loop(int idx, uint64_t seen) {
    for (;;) {
      // spin a little before sleeping
      for (int spin = 0; spin < 20000; spin++) {
        if (generation_.load(std::memory_order_acquire) != seen || stop_.load(std::memory_order_relaxed)) break;
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
        if ((spin & 1023) == 1023) std::this_thread::yield();
      }
      const std::function<void(int, int)>* job;
      int nt;
      {
        // Generation, job and width are read together under the lock: a worker that is not part of
        // job N may only notice it after job N+1 was posted, and must then run N+1 exactly once.
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen || stop_.load(); });
        if (stop_.load()) return;
        seen = generation_.load(std::memory_order_acquire);
        job = job_;
        nt = jobThreads_;
      }
      if (idx < nt) {
        runCaught(*job, idx, nt);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
  }

  void stopAll() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      generation_.fetch_add(1);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::atomic<int> nthreads_{0};
  std::vector<std::thread> workers_;
  std::mutex submit_;  // held by run() for a whole job and by resize()
  std::mutex mu_;
  std::mutex errMu_;
  std::exception_ptr error_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int, int)>* job_ = nullptr;
  int jobThreads_ = 1;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

int threads() { return pool().size(); }

std::mutex& kernelMutex() {
  static std::mutex m;
  return m;
}

void setThreads(int n) { pool().resize(n); }

void parallelRun(int maxThreads, const std::function<void(int, int)>& fn) { pool().run(maxThreads, fn); }

void parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  int64_t maxChunks = (n + grain - 1) / grain;
  int nt = (int)std::min<int64_t>(threads(), maxChunks);
  if (nt <= 1) {
    fn(0, n);
    return;
  }
  pool().run(nt, [&](int t, int ntt) {
    int64_t b = n * t / ntt, e = n * (t + 1) / ntt;
    if (b < e) fn(b, e);
  });
}

static Napi::Value ThreadsNapi(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), threads());
}
MOELAB_EXPORT(getThreads, ThreadsNapi);

static Napi::Value SetThreadsNapi(const Napi::CallbackInfo& info) {
  needArgs(info, 1, "setThreads");
  int64_t n = dimArg(info, 0, "setThreads", "n", 1);
  if (n > 256) throwRange(info.Env(), "setThreads: n must be <= 256");
  setThreads((int)n);
  return info.Env().Undefined();
}
MOELAB_EXPORT(setThreads, SetThreadsNapi);

}  // namespace moelab
