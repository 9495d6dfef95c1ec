// SGEMM driver: Goto/BLIS blocking (jc: NC columns -> pc: KC depth -> pack B -> ic: MC rows ->
// pack A -> jr/ir micro-tiles), per-thread packing buffers, work splitting over the thread pool,
// and the N-API entry points for gemm, gemmBatched, gemmGroupedRows and gemmGroupedK.
//
// Threading model: every call is turned into a list of tasks, each a rectangular block of one
// problem's C that a single thread computes end to end with its own packed panels (no barriers
// inside a call). A lone GEMM is cut into one block per thread along M or N, whichever wastes the
// least on edges and repacking (a cost model below); several GEMMs (batch, MoE groups) are cut
// into pieces of about total/(f*T) work for the f in 1..3 whose list schedule is shortest, and the
// pieces are handed out largest-first from an atomic counter. Long thin weight-gradient products
// (small m*n, large k) can instead be split along k, with a reduction of per-thread partial sums.
// Work below kParallelMin stays on the calling thread, and tiny products skip packing entirely.
#include "gemm.h"
#include "gemm_api.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "cpu.h"
#include "args.h"
#include "op_codes.h"
#include "ops_simd.h"
#include "registry.h"
#include "threadpool.h"

namespace moelab {

namespace {

using gemmk::KernelSet;

const KernelSet& kernels() {
  static const KernelSet ks = [] {
    KernelSet k{};
    switch (activeIsa()) {
      case Isa::Avx512: gemmk::avx512KernelSet(&k); break;
      case Isa::Avx2: gemmk::avx2KernelSet(&k); break;
      default: gemmk::genericKernelSet(&k); break;
    }
    return k;
  }();
  return ks;
}

// ------------------------------------------------------------------ per-thread buffers

struct AlignedBuf {
  float* p = nullptr;
  size_t cap = 0;  // floats
  ~AlignedBuf() { std::free(p); }
  float* get(size_t n) {
    if (n > cap) {
      std::free(p);
      p = nullptr;
      cap = 0;
      size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
      p = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!p) throwAlloc("gemm", "packing buffers", (double)bytes, "out of memory");
      cap = n;
    }
    return p;
  }
};

struct ThreadBufs {
  AlignedBuf a, b, w;
};
thread_local ThreadBufs tbufs;

// ------------------------------------------------------------------ one GEMM problem

enum class Epilogue { None, Forward, Backward };

// C[m,n] = alpha * op(A) @ op(B) + beta * C + bias, op(A)(i,p) = a[i*rsa + p*csa],
// op(B)(p,j) = b[p*rsb + j*csb].
struct Prob {
  const float* a;
  int64_t rsa, csa;
  const float* b;
  int64_t rsb, csb;
  float* c;
  int64_t ldc;
  int64_t m, n, k;
  float alpha, beta;
  const float* bias;
  // Optional unary epilogue on the finished C (see gemmUnary): Forward writes aux = f(C) and leaves
  // C as the pre-activation; Backward replaces C by C * f'(aux).
  Epilogue epi = Epilogue::None;
  UnaryOp act = UnaryOp::Neg;
  float* aux = nullptr;
  int64_t ldaux = 0;
  // Operand shifts (bf16 kernel sets only): op(A)(i,p) - shiftA[p] - shiftAi[i] and
  // op(B)(p,j) - shiftB[j] enter the product in place of op(A) and op(B); null = no shift.
  const float* shiftA = nullptr;
  const float* shiftAi = nullptr;
  const float* shiftB = nullptr;
};

// Applies P's epilogue to the finished block C[m0:m1, n0:n1], row by row through the elementwise
// row kernels of the active ISA (the same code, and so the same numbers, as unary/unaryBackward).
void epilogueBlock(const Prob& P, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  if (P.epi == Epilogue::None || n1 <= n0) return;
  const simd::OpsTable& K = ops::kernels();
  for (int64_t i = m0; i < m1; i++) {
    float* cr = P.c + i * P.ldc + n0;
    float* ar = P.aux + i * P.ldaux + n0;
    if (P.epi == Epilogue::Forward)
      K.unary(P.act, cr, ar, n1 - n0);
    else
      K.unaryBackward(P.act, ar, nullptr, cr, cr, n1 - n0);
  }
}

// Products this small skip packing: below ~1k multiply-adds, or with a C of at most 8 elements
// (dot-product shapes, where a packed micro-tile would be mostly padding). Everything else takes
// the packed path even when small: with packing in L1 it beats plain loops from ~16^3 up (16^3:
// 0.6 us vs 2 us; 32^3: 2.7 us vs 11 us), and small products never wake the pool.
inline bool isDirect(const Prob& P) {
  const double mn = (double)P.m * (double)P.n;
  return mn * (double)P.k < 1024 || mn <= 8;
}

// C block = beta*C + bias for k == 0 (alpha * empty sum).
void scaleBlock(const Prob& P, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  for (int64_t i = m0; i < m1; i++) {
    float* cr = P.c + i * P.ldc;
    for (int64_t j = n0; j < n1; j++) {
      float v = P.beta == 0.f ? 0.f : P.beta * cr[j];
      cr[j] = P.bias ? v + P.bias[j] : v;
    }
  }
}

// Unpacked loops for tiny problems: lowest overhead, vectorizes along j when B rows are contiguous.
void directBlock(const Prob& P, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  for (int64_t i = m0; i < m1; i++) {
    float* cr = P.c + i * P.ldc;
    for (int64_t j = n0; j < n1; j++) cr[j] = P.beta == 0.f ? 0.f : P.beta * cr[j];
    if (P.bias)
      for (int64_t j = n0; j < n1; j++) cr[j] += P.bias[j];
    const float* ai = P.a + i * P.rsa;
    if (P.csb == 1) {
      for (int64_t p = 0; p < P.k; p++) {
        const float s = P.alpha * ai[p * P.csa];
        const float* bp = P.b + p * P.rsb;
        for (int64_t j = n0; j < n1; j++) cr[j] += s * bp[j];
      }
    } else {
      for (int64_t j = n0; j < n1; j++) {
        const float* bj = P.b + j * P.csb;
        float s = 0.f;
        for (int64_t p = 0; p < P.k; p++) s += ai[p * P.csa] * bj[p * P.rsb];
        cr[j] += P.alpha * s;
      }
    }
  }
}

// Unpacked loops for tiny problems with operand shifts (fp32 on the unrounded, shifted operands).
void directShifted(const Prob& P, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  for (int64_t i = m0; i < m1; i++) {
    float* cr = P.c + i * P.ldc;
    for (int64_t j = n0; j < n1; j++) {
      float s = 0.f;
      for (int64_t p = 0; p < P.k; p++) {
        const float a = P.a[i * P.rsa + p * P.csa] - (P.shiftA ? P.shiftA[p] : 0.f) - (P.shiftAi ? P.shiftAi[i] : 0.f);
        const float b = P.b[p * P.rsb + j * P.csb] - (P.shiftB ? P.shiftB[j] : 0.f);
        s += a * b;
      }
      const float v = P.alpha * s + (P.bias ? P.bias[j] : 0.f);
      cr[j] = P.beta == 0.f ? v : v + P.beta * cr[j];
    }
  }
}

// C of at most 8 elements (dot-product shapes): one dot product per output, with 4 partial sums
// to keep the adds independent.
void tinyC(const Prob& P) {
  for (int64_t i = 0; i < P.m; i++)
    for (int64_t j = 0; j < P.n; j++) {
      const float* ap = P.a + i * P.rsa;
      const float* bq = P.b + j * P.csb;
      const int64_t sa = P.csa, sb = P.rsb;
      float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
      int64_t p = 0;
      for (; p + 4 <= P.k; p += 4) {
        s0 += ap[p * sa] * bq[p * sb];
        s1 += ap[(p + 1) * sa] * bq[(p + 1) * sb];
        s2 += ap[(p + 2) * sa] * bq[(p + 2) * sb];
        s3 += ap[(p + 3) * sa] * bq[(p + 3) * sb];
      }
      for (; p < P.k; p++) s0 += ap[p * sa] * bq[p * sb];
      float* cij = P.c + i * P.ldc + j;
      const float v = P.alpha * ((s0 + s1) + (s2 + s3)) + (P.bias ? P.bias[j] : 0.f);
      *cij = P.beta == 0.f ? v : v + P.beta * *cij;
    }
}

// Edge tile: c = t + beta*c + bias for an mr x nr corner.
void mergeTile(const float* t, int64_t ldt, float* c, int64_t ldc, int64_t mr, int64_t nr, float beta,
               const float* bias) {
  for (int64_t r = 0; r < mr; r++) {
    float* cr = c + r * ldc;
    const float* tr = t + r * ldt;
    for (int64_t j = 0; j < nr; j++) {
      float v = tr[j] + (bias ? bias[j] : 0.f);
      cr[j] = beta == 0.f ? v : v + beta * cr[j];
    }
  }
}

// Splits `total` into ceil(total/maxBlock) near-equal blocks, each a multiple of `unit` (except
// possibly the last); returns the block size.
inline int64_t balancedBlock(int64_t total, int64_t maxBlock, int64_t unit) {
  int64_t nb = (total + maxBlock - 1) / maxBlock;
  int64_t b = (total + nb - 1) / nb;
  b = (b + unit - 1) / unit * unit;
  return std::min(b, maxBlock);
}

constexpr int64_t EPI_COLS = 256;

// The Goto loop nest over C[m0:m1, n0:n1] for the depth range [k0, k1), on the calling thread.
// If k0 > 0 the block accumulates (beta 1, no bias): used by the split-k path.
// With `epi`, P's epilogue runs on strips of mc rows x EPI_COLS columns right after their last
// depth block, while the strip is still in L2 (c must then be P.c and [k0, k1) all of P's depth).
void gotoBlock(const KernelSet& ks, const Prob& P, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t k0,
               int64_t k1, float* c, int64_t ldc, float beta, const float* bias, bool epi = false) {
  const int64_t MR = ks.mr, NR = ks.nr;
  const int64_t KC = balancedBlock(k1 - k0, ks.kc, 8);
  const int64_t kslots = ks.kpack == 2 ? (KC + 1) / 2 : KC;  // packed 32-bit slots per sliver step
  const int64_t MC = balancedBlock(m1 - m0, ks.mc, MR);
  const int64_t NC = balancedBlock(n1 - n0, ks.nc, NR);
  float* pa = tbufs.a.get((size_t)(MC * kslots + 64));
  float* pb = tbufs.b.get((size_t)(NC * kslots + 64));
  alignas(64) float tmp[16 * 32];
  // Row-contiguous B is packed a whole block up front, in one streaming pass over its rows (fast
  // when B comes from memory, as expert weights usually do). Transposed B is packed one sliver at
  // a time during the first row block, right before the sliver's first use, so it is still in L1
  // for the micro-kernels that follow.
  const bool eagerB = P.csb == 1;
  for (int64_t jc = n0; jc < n1; jc += NC) {
    const int64_t nc = std::min(NC, n1 - jc);
    for (int64_t pc = k0; pc < k1; pc += KC) {
      const int64_t kc = std::min(KC, k1 - pc), kcs = ks.kpack == 2 ? (kc + 1) / 2 : kc;
      const float bet = pc == k0 ? beta : 1.f;
      const float* bi = pc == k0 ? bias : nullptr;
      const bool lastK = epi && pc + kc >= k1;
      const float* bsrc = P.b + pc * P.rsb + jc * P.csb;
      // packs columns [j, j + cols) of this block (j from jc), shifted when P has a shift for B
      auto packB = [&](int64_t j, int64_t cols, float* dst) {
        if (P.shiftB)
          ks.packBShift(kc, cols, bsrc + j * P.csb, P.rsb, P.csb, P.shiftB + jc + j, dst);
        else
          ks.packB(kc, cols, bsrc + j * P.csb, P.rsb, P.csb, dst);
      };
      if (eagerB) packB(0, nc, pb);
      for (int64_t ic = m0; ic < m1; ic += MC) {
        const bool packingB = !eagerB && ic == m0;
        const int64_t mc = std::min(MC, m1 - ic);
        const float* asrc = P.a + ic * P.rsa + pc * P.csa;
        if (P.shiftA || P.shiftAi)
          ks.packAShift(mc, kc, asrc, P.rsa, P.csa, P.shiftA ? P.shiftA + pc : nullptr,
                        P.shiftAi ? P.shiftAi + ic : nullptr, pa);
        else
          ks.packA(mc, kc, asrc, P.rsa, P.csa, pa);
        const int64_t tilesM = (mc + MR - 1) / MR;
        int64_t epiFrom = 0;  // first column of the strip still waiting for the epilogue
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int64_t nr = std::min(NR, nc - jr);
          float* bp = pb + jr * kcs;
          if (packingB) packB(jr, nr, bp);
          const float* bb = bi ? bi + jc + jr : nullptr;
          // While this B sliver is in use, pull the next one toward L1 a slice per micro-tile
          // (it otherwise arrives from L3 at the start of the next column of tiles).
          const float* bn = !packingB && jr + NR < nc ? bp + NR * kcs : nullptr;
          const int64_t bnLines = NR * kcs / 16, bnPer = (bnLines + tilesM - 1) / tilesM;
          int64_t bnAt = 0;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int64_t mr = std::min(MR, mc - ir);
            if (bn) {
              const int64_t end = std::min(bnLines, bnAt + bnPer);
              for (; bnAt < end; bnAt++) __builtin_prefetch(bn + bnAt * 16, 0, 3);
            }
            float* cp = c + (ic + ir) * ldc + jc + jr;
            if (mr == MR && nr == NR) {
              ks.kernel(kc, pa + ir * kcs, bp, cp, ldc, P.alpha, bet, bb);
            } else if (nr == NR && ks.kernelRows[mr]) {
              ks.kernelRows[mr](kc, pa + ir * kcs, bp, cp, ldc, P.alpha, bet, bb);
            } else {
              ks.kernel(kc, pa + ir * kcs, bp, tmp, NR, P.alpha, 0.f, nullptr);
              mergeTile(tmp, NR, cp, ldc, mr, nr, bet, bb);
            }
          }
          // Strips of EPI_COLS columns get the epilogue once all their rows are final: long rows
          // keep its vector loop busy (per 12x32 micro-tile it ran at half speed) and a strip of
          // mc rows is still in L2.
          if (lastK && (jr + nr - epiFrom >= EPI_COLS || jr + nr >= nc)) {
            epilogueBlock(P, ic, ic + mc, jc + epiFrom, jc + jr + nr);
            epiFrom = jr + nr;
          }
        }
      }
    }
  }
}

void runBlock(const KernelSet& ks, const Prob& P, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  if (m0 >= m1 || n0 >= n1) return;
  if (P.k == 0) {
    scaleBlock(P, m0, m1, n0, n1);
  } else if (isDirect(P)) {
    if (P.shiftA || P.shiftAi || P.shiftB)
      directShifted(P, m0, m1, n0, n1);
    else if (P.m * P.n <= 8 && m0 == 0 && n0 == 0 && m1 == P.m && n1 == P.n)
      tinyC(P);
    else
      directBlock(P, m0, m1, n0, n1);
  } else {
    return gotoBlock(ks, P, m0, m1, n0, n1, 0, P.k, P.c, P.ldc, P.beta, P.bias, true);
  }
  epilogueBlock(P, m0, m1, n0, n1);
}

// ------------------------------------------------------------------ work planning

// Rough cost of one block in multiply-add lanes: padded compute plus packing (each packed element
// costs about as much as 8 multiply-adds).
double blockCost(const KernelSet& ks, int64_t rows, int64_t cols, int64_t k) {
  if (rows <= 0 || cols <= 0) return 0;
  const double rp = (double)((rows + ks.mr - 1) / ks.mr * ks.mr);
  const double cp = (double)((cols + ks.nr - 1) / ks.nr * ks.nr);
  const double kk = (double)std::max<int64_t>(k, 1);
  const double ncBlocks = std::ceil((double)cols / (double)ks.nc);
  return rp * cp * kk + 8.0 * kk * ((double)cols + (double)rows * ncBlocks) + 64.0 * (double)rows;
}

double probCost(const KernelSet& ks, const Prob& P) {
  if (P.m == 0 || P.n == 0) return 0;
  if (P.k == 0 || isDirect(P)) return (double)P.m * (double)P.n * (double)std::max<int64_t>(P.k, 1) + 64.0 * P.m;
  return blockCost(ks, P.m, P.n, P.k);
}

struct Task {
  int prob;
  int64_t m0, m1, n0, n1;
  double cost;
};

// Cuts problem `pi` into `pieces` blocks on a tm x tn grid of micro-tile-aligned ranges, choosing
// the grid with the cheapest largest block. Returns that largest block's cost.
double splitProb(const KernelSet& ks, const Prob& P, int pi, int pieces, std::vector<Task>* out) {
  const int64_t mt = (P.m + ks.mr - 1) / ks.mr, ntl = (P.n + ks.nr - 1) / ks.nr;
  if (P.k == 0 || isDirect(P)) pieces = 1;
  pieces = (int)std::max<int64_t>(1, std::min<int64_t>(pieces, mt * ntl));
  int bestTm = 1, bestTn = 1;
  double best = -1;
  for (int tm = 1; tm <= pieces; tm++) {
    if (pieces % tm) continue;
    int tn = pieces / tm;
    if (tm > mt || tn > ntl) continue;
    int64_t rows = (mt + tm - 1) / tm * ks.mr, cols = (ntl + tn - 1) / tn * ks.nr;
    double c = blockCost(ks, std::min(rows, P.m), std::min(cols, P.n), P.k);
    if (best < 0 || c < best) best = c, bestTm = tm, bestTn = tn;
  }
  if (best < 0) {  // e.g. a prime piece count that fits neither way: fall back to a row split
    bestTm = (int)std::min<int64_t>(pieces, mt);
    bestTn = 1;
    best = blockCost(ks, std::min(P.m, (mt + bestTm - 1) / bestTm * ks.mr), P.n, P.k);
  }
  if (out) {
    for (int a = 0; a < bestTm; a++) {
      int64_t m0 = std::min(P.m, mt * a / bestTm * ks.mr), m1 = std::min(P.m, mt * (a + 1) / bestTm * ks.mr);
      for (int b = 0; b < bestTn; b++) {
        int64_t n0 = std::min(P.n, ntl * b / bestTn * ks.nr), n1 = std::min(P.n, ntl * (b + 1) / bestTn * ks.nr);
        if (m0 < m1 && n0 < n1) {
          double c = (P.k == 0 || isDirect(P)) ? probCost(ks, P) : blockCost(ks, m1 - m0, n1 - n0, P.k);
          out->push_back({pi, m0, m1, n0, n1, c});
        }
      }
    }
  }
  return best;
}

// Work (in multiply-add lanes, about 25 us on one core) below which a call stays on the calling
// thread: a spinning pool joins in about a microsecond, but a sleeping one can take 100+ us to
// wake in a VM, which only large products amortize.
constexpr double kParallelMin = 5.0e5;

// List-scheduling makespan of tasks (sorted largest first) on T threads.
double makespan(const std::vector<Task>& tasks, int T) {
  std::vector<double> load(T, 0.0);
  for (const Task& t : tasks) *std::min_element(load.begin(), load.end()) += t.cost;
  return *std::max_element(load.begin(), load.end());
}

void runTasks(const KernelSet& ks, const std::vector<Prob>& probs, const std::vector<Task>& tasks, int T) {
  if (T <= 1 || tasks.size() <= 1) {
    for (const Task& t : tasks) runBlock(ks, probs[t.prob], t.m0, t.m1, t.n0, t.n1);
    return;
  }
  std::atomic<size_t> next{0};
  parallelRun(T, [&](int, int) {
    for (;;) {
      size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= tasks.size()) break;
      const Task& t = tasks[i];
      runBlock(ks, probs[t.prob], t.m0, t.m1, t.n0, t.n1);
    }
  });
}

// Split-k, for a product with few output tiles and a long depth (the weight gradient of a narrow
// layer, e.g. a router's [E, d] summed over every token): the depth is cut into slices, each summed
// into a partial of its own (slice 0 straight into C with beta and bias), and the partials are
// added in slice order. Whether to split and where are decided by the shape alone (threadpool.h,
// sumSlices), so C's bits do not depend on the thread count; on one thread the slices run in turn.
bool splitKShape(const KernelSet& ks, const Prob& P) {
  const int64_t mt = (P.m + ks.mr - 1) / ks.mr, ntl = (P.n + ks.nr - 1) / ks.nr;
  return !isDirect(P) && P.k >= 2 * ks.kc && mt * ntl < 16;
}

void runSplitK(const KernelSet& ks, const Prob& P, int T) {
  const int64_t kUnit = 8;
  const int64_t kt = (P.k + kUnit - 1) / kUnit;
  const int S = sumSlices(P.k, ks.kc);
  const int64_t mn = P.m * P.n;
  std::vector<float> parts = scratch<float>("gemm", "split-k partials", (S - 1) * mn);
  forSlicesOn(T, S, [&](int s) {
    const int64_t k0 = std::min(P.k, kt * s / S * kUnit), k1 = std::min(P.k, kt * (s + 1) / S * kUnit);
    if (s == 0)
      gotoBlock(ks, P, 0, P.m, 0, P.n, k0, k1, P.c, P.ldc, P.beta, P.bias);
    else if (k0 < k1)
      gotoBlock(ks, P, 0, P.m, 0, P.n, k0, k1, parts.data() + (s - 1) * mn, P.n, 0.f, nullptr);
  });
  for (int64_t i = 0; i < P.m; i++) {
    float* cr = P.c + i * P.ldc;
    for (int s = 1; s < S; s++) {
      const float* wr = parts.data() + (s - 1) * mn + i * P.n;
      for (int64_t j = 0; j < P.n; j++) cr[j] += wr[j];
    }
  }
  epilogueBlock(P, 0, P.m, 0, P.n);
}

// Plans and runs a set of independent problems (their C blocks are disjoint).
void runProblems(const std::vector<Prob>& probs, int maxThreads = 0, const KernelSet* set = nullptr) {
  const KernelSet& ks = set ? *set : kernels();
  if (probs.size() == 1 && isDirect(probs[0])) {  // tiny: no planning, no pool
    const Prob& P = probs[0];
    return runBlock(ks, P, 0, P.m, 0, P.n);
  }
  double total = 0;
  for (const Prob& P : probs) total += probCost(ks, P);
  if (total <= 0) return;
  int T = maxThreads > 0 ? std::min(maxThreads, threads()) : threads();
  T = (int)std::max<double>(1, std::min<double>(T, std::floor(total / kParallelMin)));
  if (probs.size() == 1 && splitKShape(ks, probs[0])) return runSplitK(ks, probs[0], T);

  std::vector<Task> tasks;
  if (T <= 1) {
    for (size_t i = 0; i < probs.size(); i++)
      if (probs[i].m > 0 && probs[i].n > 0) tasks.push_back({(int)i, 0, probs[i].m, 0, probs[i].n, 0});
    runTasks(ks, probs, tasks, 1);
    return;
  }

  if (probs.size() == 1) {
    const Prob& P = probs[0];
    splitProb(ks, P, 0, T, &tasks);
    runTasks(ks, probs, tasks, T);
    return;
  }

  // Several problems: try cutting each into pieces of about total/(f*T) for a few f and keep the
  // plan with the shortest list-scheduled makespan.
  std::vector<Task> best;
  double bestSpan = -1;
  const int maxF = probs.size() <= 16 * (size_t)T ? 3 : 1;  // many problems balance by themselves
  for (int f = 1; f <= maxF; f++) {
    std::vector<Task> cand;
    for (size_t i = 0; i < probs.size(); i++) {
      const Prob& P = probs[i];
      if (P.m == 0 || P.n == 0) continue;
      double c = probCost(ks, P);
      int pieces = (int)std::max(1.0, std::min<double>(4.0 * T, std::ceil(c * f * T / total - 1e-9)));
      splitProb(ks, P, (int)i, pieces, &cand);
    }
    std::stable_sort(cand.begin(), cand.end(), [](const Task& x, const Task& y) { return x.cost > y.cost; });
    double span = makespan(cand, T);
    if (bestSpan < 0 || span < bestSpan * 0.98) bestSpan = span, best.swap(cand);
  }
  runTasks(ks, probs, best, T);
}

Prob makeProb(bool tA, bool tB, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
              const float* b, int64_t ldb, float beta, float* c, int64_t ldc, const float* bias) {
  Prob P;
  P.a = a;
  P.rsa = tA ? 1 : lda;
  P.csa = tA ? lda : 1;
  P.b = b;
  P.rsb = tB ? 1 : ldb;
  P.csb = tB ? ldb : 1;
  P.c = c;
  P.ldc = ldc;
  P.m = m, P.n = n, P.k = k;
  P.alpha = alpha, P.beta = beta;
  P.bias = bias;
  return P;
}

}  // namespace

void sgemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc, const float* bias, int maxThreads) {
  if (m <= 0 || n <= 0) return;
  runProblems(std::vector<Prob>{makeProb(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias)},
              maxThreads);
}

namespace {

// ------------------------------------------------------------------ argument validation

[[noreturn]] void fail(const Napi::Env& env, const char* fn, const std::string& msg) {
  throwRange(env, std::string(fn) + ": " + msg);
}

// Elements spanned by a rows x cols matrix with row stride ld (0 if empty). Requires ld >= cols.
int64_t matExtent(const Napi::Env& env, const char* fn, const char* name, int64_t rows, int64_t cols,
                  int64_t ld) {
  if (ld < cols)
    fail(env, fn, std::string("row stride of '") + name + "' is " + std::to_string(ld) + ", needs >= " +
                      std::to_string(cols));
  if (rows == 0 || cols == 0) return 0;
  return checkedAdd(env, fn, checkedMul(env, fn, rows - 1, ld), cols);
}

// Elements spanned by `count` matrices of extent ext placed every `stride` elements.
int64_t batchExtent(const Napi::Env& env, const char* fn, int64_t count, int64_t stride, int64_t ext) {
  if (count == 0 || ext == 0) return 0;
  return checkedAdd(env, fn, checkedMul(env, fn, count - 1, stride), ext);
}

// Output matrices written by different tasks must not overlap each other: either each lies past
// the previous one's extent, or they interleave column-wise inside one row stride.
void outputsDisjoint(const Napi::Env& env, const char* fn, const char* name, int64_t count, int64_t stride,
                     int64_t rows, int64_t cols, int64_t ld) {
  if (count <= 1 || rows == 0 || cols == 0) return;
  int64_t ext = (rows - 1) * ld + cols;
  if (stride >= ext) return;
  if (stride >= cols && (count - 1) * stride + cols <= ld) return;
  fail(env, fn, std::string("matrices of '") + name + "' overlap (stride " + std::to_string(stride) + ")");
}

// An optional operand shift of the bf16 GEMMs (argument i, `len` floats, must not overlap C), or
// null. Kernel sets without shifted packing (fp32) take no such arguments.
const float* shiftArg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name, const KernelSet* ks,
                      int64_t len, Span<float> cs) {
  if (!ks || !ks->packAShift) return nullptr;
  auto sh = f32OptArg(info, i, fn, name);
  if (!sh.data) return nullptr;
  needLen(info.Env(), sh, len, fn, name);
  noOverlap(info.Env(), fn, cs, "c", slice(sh, 0, len), name);
  return sh.data;
}

// gemm's and gemmUnary's shifts, arguments i (shiftA, length k) and i + 1 (shiftB, length n), into P.
void shiftArgs(const Napi::CallbackInfo& info, size_t i, const char* fn, const KernelSet* ks, Span<float> cs,
               Prob& P) {
  P.shiftA = shiftArg(info, i, fn, "shiftA", ks, P.k, cs);
  P.shiftB = shiftArg(info, i + 1, fn, "shiftB", ks, P.n, cs);
}

// ------------------------------------------------------------------ N-API entry points

}  // namespace

// gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias[, shiftA, shiftB]): the shifts
// only for bf16 kernel sets.
Napi::Value gemmBody(const Napi::CallbackInfo& info, const char* fn, const KernelSet* ks) {
  Napi::Env env = info.Env();
  needArgs(info, 14, fn);
  bool tA = boolArg(info, 0, fn, "transA"), tB = boolArg(info, 1, fn, "transB");
  int64_t m = dimArg(info, 2, fn, "m"), n = dimArg(info, 3, fn, "n"), k = dimArg(info, 4, fn, "k");
  double alpha = numArg(info, 5, fn, "alpha");
  auto a = f32Arg(info, 6, fn, "a");
  int64_t lda = dimArg(info, 7, fn, "lda");
  auto b = f32Arg(info, 8, fn, "b");
  int64_t ldb = dimArg(info, 9, fn, "ldb");
  double beta = numArg(info, 10, fn, "beta");
  auto c = f32Arg(info, 11, fn, "c");
  int64_t ldc = dimArg(info, 12, fn, "ldc");
  auto bias = f32OptArg(info, 13, fn, "bias");

  int64_t extA = tA ? matExtent(env, fn, "a", k, m, lda) : matExtent(env, fn, "a", m, k, lda);
  int64_t extB = tB ? matExtent(env, fn, "b", n, k, ldb) : matExtent(env, fn, "b", k, n, ldb);
  int64_t extC = matExtent(env, fn, "c", m, n, ldc);
  needLen(env, a, extA, fn, "a");
  needLen(env, b, extB, fn, "b");
  needLen(env, c, extC, fn, "c");
  if (bias.data) needLen(env, bias, n, fn, "bias");
  auto cs = slice(c, 0, extC);
  noOverlap(env, fn, cs, "c", slice(a, 0, extA), "a");
  noOverlap(env, fn, cs, "c", slice(b, 0, extB), "b");
  if (bias.data) noOverlap(env, fn, cs, "c", slice(bias, 0, n), "bias");
  Prob P = makeProb(tA, tB, m, n, k, (float)alpha, a.data, lda, b.data, ldb, (float)beta, c.data, ldc, bias.data);
  shiftArgs(info, 14, fn, ks, cs, P);
  if (m == 0 || n == 0) return env.Undefined();

  runProblems(std::vector<Prob>{P}, 0, ks);
  return env.Undefined();
}

namespace {
Napi::Value GemmNapi(const Napi::CallbackInfo& info) { return gemmBody(info, "gemm", nullptr); }

// gemv(trans, m, n, alpha, a, lda, x, beta, y): y = alpha * op(A) x + beta * y with A stored [m, n]
// (row stride lda); op(A) = A (x [n], y [m]) or A^T (x [m], y [n]). A matrix-vector product through
// gemm would pad its one row to a micro-tile and pack all of A for one use: this reads A once, as
// dot products of its rows (A x) or axpys along them (A^T x), over the ISA's row kernels. Rows
// (or column ranges) are split over threads only when large: the product is memory-bound.
Napi::Value GemvNapi(const Napi::CallbackInfo& info) {
  const char* fn = "gemv";
  Napi::Env env = info.Env();
  needArgs(info, 9, fn);
  const bool trans = boolArg(info, 0, fn, "trans");
  const int64_t m = dimArg(info, 1, fn, "m"), n = dimArg(info, 2, fn, "n");
  const float alpha = (float)numArg(info, 3, fn, "alpha");
  auto a = f32Arg(info, 4, fn, "a");
  const int64_t lda = dimArg(info, 5, fn, "lda");
  auto x = f32Arg(info, 6, fn, "x");
  const float beta = (float)numArg(info, 7, fn, "beta");
  auto y = f32Arg(info, 8, fn, "y");
  const int64_t extA = matExtent(env, fn, "a", m, n, lda), nx = trans ? m : n, ny = trans ? n : m;
  needLen(env, a, extA, fn, "a");
  needLen(env, x, nx, fn, "x");
  needLen(env, y, ny, fn, "y");
  const auto ys = slice(y, 0, ny);
  noOverlap(env, fn, ys, "y", slice(a, 0, extA), "a");
  noOverlap(env, fn, ys, "y", slice(x, 0, nx), "x");
  if (ny == 0) return env.Undefined();
  const simd::OpsTable& K = ops::kernels();
  const float *A = a.data, *X = x.data;
  float* Y = y.data;
  const int64_t grainElems = int64_t(1) << 16;  // about 20 us of streaming per chunk
  if (!trans) {
    parallelFor(m, std::max<int64_t>(1, grainElems / std::max<int64_t>(n, 1)), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) {
        const float d = K.dot(A + i * lda, X, n);
        Y[i] = beta == 0.f ? alpha * d : alpha * d + beta * Y[i];
      }
    });
  } else {
    parallelFor(n, std::max<int64_t>(64, grainElems / std::max<int64_t>(m, 1)), [&](int64_t j0, int64_t j1) {
      float* yj = Y + j0;
      const int64_t len = j1 - j0;
      if (beta == 0.f) std::fill(yj, yj + len, 0.f);
      else if (beta != 1.f)
        for (int64_t j = 0; j < len; j++) yj[j] *= beta;
      for (int64_t i = 0; i < m; i++) K.axpy(alpha * X[i], A + i * lda + j0, yj, len);
    });
  }
  return env.Undefined();
}
MOELAB_EXPORT(gemv, GemvNapi);
MOELAB_EXPORT(gemm, GemmNapi);

// Unary ops whose derivative gemmUnary's backward can form from the pre-activation alone (the
// others, exp/tanh/sigmoid/sqrt, take theirs from the output, which the backward does not get).
bool derivFromInput(UnaryOp op) {
  return op != UnaryOp::Exp && op != UnaryOp::Tanh && op != UnaryOp::Sigmoid && op != UnaryOp::Sqrt;
}

}  // namespace

// gemmUnary(op, backward, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, aux, ldaux
//           [, shiftA, shiftB]): the shifts only for bf16 kernel sets.
Napi::Value gemmUnaryBody(const Napi::CallbackInfo& info, const char* fn, const KernelSet* ks) {
  Napi::Env env = info.Env();
  needArgs(info, 18, fn);
  int64_t opc = dimArg(info, 0, fn, "op");
  if (opc >= (int64_t)UnaryOp::Count) fail(env, fn, "unknown unary op code " + std::to_string(opc));
  const UnaryOp op = (UnaryOp)opc;
  const bool backward = boolArg(info, 1, fn, "backward");
  if (backward && !derivFromInput(op))
    fail(env, fn, std::string("the backward epilogue needs f'(x) from x alone; '") + kUnaryOpNames[opc] +
                      "' takes it from its output: use gemm and unaryBackward instead");
  bool tA = boolArg(info, 2, fn, "transA"), tB = boolArg(info, 3, fn, "transB");
  int64_t m = dimArg(info, 4, fn, "m"), n = dimArg(info, 5, fn, "n"), k = dimArg(info, 6, fn, "k");
  double alpha = numArg(info, 7, fn, "alpha");
  auto a = f32Arg(info, 8, fn, "a");
  int64_t lda = dimArg(info, 9, fn, "lda");
  auto b = f32Arg(info, 10, fn, "b");
  int64_t ldb = dimArg(info, 11, fn, "ldb");
  double beta = numArg(info, 12, fn, "beta");
  auto c = f32Arg(info, 13, fn, "c");
  int64_t ldc = dimArg(info, 14, fn, "ldc");
  auto bias = f32OptArg(info, 15, fn, "bias");
  auto aux = f32Arg(info, 16, fn, "aux");
  int64_t ldaux = dimArg(info, 17, fn, "ldaux");

  int64_t extA = tA ? matExtent(env, fn, "a", k, m, lda) : matExtent(env, fn, "a", m, k, lda);
  int64_t extB = tB ? matExtent(env, fn, "b", n, k, ldb) : matExtent(env, fn, "b", k, n, ldb);
  int64_t extC = matExtent(env, fn, "c", m, n, ldc);
  int64_t extX = matExtent(env, fn, "aux", m, n, ldaux);
  needLen(env, a, extA, fn, "a");
  needLen(env, b, extB, fn, "b");
  needLen(env, c, extC, fn, "c");
  needLen(env, aux, extX, fn, "aux");
  if (bias.data) needLen(env, bias, n, fn, "bias");
  auto cs = slice(c, 0, extC), xs = slice(aux, 0, extX);
  noOverlap(env, fn, cs, "c", slice(a, 0, extA), "a");
  noOverlap(env, fn, cs, "c", slice(b, 0, extB), "b");
  noOverlap(env, fn, cs, "c", xs, "aux");
  if (bias.data) noOverlap(env, fn, cs, "c", slice(bias, 0, n), "bias");
  if (!backward) {  // aux is written too
    noOverlap(env, fn, xs, "aux", slice(a, 0, extA), "a");
    noOverlap(env, fn, xs, "aux", slice(b, 0, extB), "b");
    if (bias.data) noOverlap(env, fn, xs, "aux", slice(bias, 0, n), "bias");
  }
  Prob P = makeProb(tA, tB, m, n, k, (float)alpha, a.data, lda, b.data, ldb, (float)beta, c.data, ldc, bias.data);
  shiftArgs(info, 18, fn, ks, cs, P);
  if (m == 0 || n == 0) return env.Undefined();
  P.epi = backward ? Epilogue::Backward : Epilogue::Forward;
  P.act = op;
  P.aux = aux.data;
  P.ldaux = ldaux;
  runProblems(std::vector<Prob>{P}, 0, ks);
  return env.Undefined();
}

namespace {
Napi::Value GemmUnaryNapi(const Napi::CallbackInfo& info) { return gemmUnaryBody(info, "gemmUnary", nullptr); }
MOELAB_EXPORT(gemmUnary, GemmUnaryNapi);
}  // namespace

// gemmBatched(batch, transA, transB, m, n, k, alpha, a, strideA, lda, b, strideB, ldb, beta, c, strideC, ldc)
Napi::Value gemmBatchedBody(const Napi::CallbackInfo& info, const char* fn, const KernelSet* ks) {
  Napi::Env env = info.Env();
  needArgs(info, 17, fn);
  int64_t batch = dimArg(info, 0, fn, "batch");
  bool tA = boolArg(info, 1, fn, "transA"), tB = boolArg(info, 2, fn, "transB");
  int64_t m = dimArg(info, 3, fn, "m"), n = dimArg(info, 4, fn, "n"), k = dimArg(info, 5, fn, "k");
  double alpha = numArg(info, 6, fn, "alpha");
  auto a = f32Arg(info, 7, fn, "a");
  int64_t sA = dimArg(info, 8, fn, "strideA"), lda = dimArg(info, 9, fn, "lda");
  auto b = f32Arg(info, 10, fn, "b");
  int64_t sB = dimArg(info, 11, fn, "strideB"), ldb = dimArg(info, 12, fn, "ldb");
  double beta = numArg(info, 13, fn, "beta");
  auto c = f32Arg(info, 14, fn, "c");
  int64_t sC = dimArg(info, 15, fn, "strideC"), ldc = dimArg(info, 16, fn, "ldc");

  int64_t extA = tA ? matExtent(env, fn, "a", k, m, lda) : matExtent(env, fn, "a", m, k, lda);
  int64_t extB = tB ? matExtent(env, fn, "b", n, k, ldb) : matExtent(env, fn, "b", k, n, ldb);
  int64_t extC = matExtent(env, fn, "c", m, n, ldc);
  int64_t totA = batchExtent(env, fn, batch, sA, extA);
  int64_t totB = batchExtent(env, fn, batch, sB, extB);
  int64_t totC = batchExtent(env, fn, batch, sC, extC);
  needLen(env, a, totA, fn, "a");
  needLen(env, b, totB, fn, "b");
  needLen(env, c, totC, fn, "c");
  outputsDisjoint(env, fn, "c", batch, sC, m, n, ldc);
  auto cs = slice(c, 0, totC);
  noOverlap(env, fn, cs, "c", slice(a, 0, totA), "a");
  noOverlap(env, fn, cs, "c", slice(b, 0, totB), "b");
  if (batch == 0 || m == 0 || n == 0) return env.Undefined();

  std::vector<Prob> probs((size_t)batch);
  for (int64_t i = 0; i < batch; i++)
    probs[(size_t)i] = makeProb(tA, tB, m, n, k, (float)alpha, a.data + i * sA, lda, b.data + i * sB, ldb,
                                (float)beta, c.data + i * sC, ldc, nullptr);
  runProblems(probs, 0, ks);
  return env.Undefined();
}

namespace {
Napi::Value GemmBatchedNapi(const Napi::CallbackInfo& info) { return gemmBatchedBody(info, "gemmBatched", nullptr); }
MOELAB_EXPORT(gemmBatched, GemmBatchedNapi);

}  // namespace

// gemmGroupedRows(G, offsets, transB, n, k, alpha, a, lda, b, strideB, ldb, beta, c, ldc, bias[, shift]):
// shift [k] (bf16 kernel sets only) is subtracted from every row of a.
Napi::Value gemmGroupedRowsBody(const Napi::CallbackInfo& info, const char* fn, const KernelSet* ks) {
  Napi::Env env = info.Env();
  needArgs(info, 15, fn);
  int64_t G = dimArg(info, 0, fn, "G");
  auto offs = i32Arg(info, 1, fn, "offsets");
  bool tB = boolArg(info, 2, fn, "transB");
  int64_t n = dimArg(info, 3, fn, "n"), k = dimArg(info, 4, fn, "k");
  double alpha = numArg(info, 5, fn, "alpha");
  auto a = f32Arg(info, 6, fn, "a");
  int64_t lda = dimArg(info, 7, fn, "lda");
  auto b = f32Arg(info, 8, fn, "b");
  int64_t sB = dimArg(info, 9, fn, "strideB"), ldb = dimArg(info, 10, fn, "ldb");
  double beta = numArg(info, 11, fn, "beta");
  auto c = f32Arg(info, 12, fn, "c");
  int64_t ldc = dimArg(info, 13, fn, "ldc");
  auto bias = f32OptArg(info, 14, fn, "bias");

  offsetsInRange(env, fn, "offsets", offs, G, kMaxElems);
  const int32_t* o = offs.data;
  const int64_t r0 = o[0], r1 = o[G], rows = r1 - r0;
  int64_t extA = matExtent(env, fn, "a", rows, k, lda);
  int64_t extB = tB ? matExtent(env, fn, "b", n, k, ldb) : matExtent(env, fn, "b", k, n, ldb);
  int64_t extC = matExtent(env, fn, "c", rows, n, ldc);
  int64_t begA = rows && k ? checkedMul(env, fn, r0, lda) : 0, begC = rows && n ? checkedMul(env, fn, r0, ldc) : 0;
  int64_t totB = batchExtent(env, fn, G, sB, extB);
  needLen(env, a, checkedAdd(env, fn, begA, extA), fn, "a");
  needLen(env, b, totB, fn, "b");
  needLen(env, c, checkedAdd(env, fn, begC, extC), fn, "c");
  if (bias.data) needLen(env, bias, checkedMul(env, fn, G, n), fn, "bias");
  auto cs = slice(c, begC, extC);
  noOverlap(env, fn, cs, "c", slice(a, begA, extA), "a");
  noOverlap(env, fn, cs, "c", slice(b, 0, totB), "b");
  if (bias.data) noOverlap(env, fn, cs, "c", slice(bias, 0, G * n), "bias");
  const float* shift = shiftArg(info, 15, fn, "shift", ks, k, cs);
  if (rows == 0 || n == 0) return env.Undefined();

  std::vector<Prob> probs;
  probs.reserve((size_t)G);
  for (int64_t g = 0; g < G; g++) {
    int64_t s = o[g], e = o[g + 1];
    if (s == e) continue;
    Prob P;
    P.a = a.data + s * lda;
    P.rsa = lda;
    P.csa = 1;
    P.b = b.data + g * sB;
    P.rsb = tB ? 1 : ldb;
    P.csb = tB ? ldb : 1;
    P.c = c.data + s * ldc;
    P.ldc = ldc;
    P.m = e - s, P.n = n, P.k = k;
    P.alpha = (float)alpha, P.beta = (float)beta;
    P.bias = bias.data ? bias.data + g * n : nullptr;
    P.shiftA = shift;
    probs.push_back(P);
  }
  runProblems(probs, 0, ks);
  return env.Undefined();
}

namespace {
Napi::Value GemmGroupedRowsNapi(const Napi::CallbackInfo& info) { return gemmGroupedRowsBody(info, "gemmGroupedRows", nullptr); }
MOELAB_EXPORT(gemmGroupedRows, GemmGroupedRowsNapi);

}  // namespace

// gemmGroupedK(G, offsets, m, n, alpha, a, lda, b, ldb, beta, c, strideC, ldc[, shift]): shift [m]
// (bf16 kernel sets only) is subtracted from every row of a.
Napi::Value gemmGroupedKBody(const Napi::CallbackInfo& info, const char* fn, const KernelSet* ks) {
  Napi::Env env = info.Env();
  needArgs(info, 13, fn);
  int64_t G = dimArg(info, 0, fn, "G");
  auto offs = i32Arg(info, 1, fn, "offsets");
  int64_t m = dimArg(info, 2, fn, "m"), n = dimArg(info, 3, fn, "n");
  double alpha = numArg(info, 4, fn, "alpha");
  auto a = f32Arg(info, 5, fn, "a");
  int64_t lda = dimArg(info, 6, fn, "lda");
  auto b = f32Arg(info, 7, fn, "b");
  int64_t ldb = dimArg(info, 8, fn, "ldb");
  double beta = numArg(info, 9, fn, "beta");
  auto c = f32Arg(info, 10, fn, "c");
  int64_t sC = dimArg(info, 11, fn, "strideC"), ldc = dimArg(info, 12, fn, "ldc");

  offsetsInRange(env, fn, "offsets", offs, G, kMaxElems);
  const int32_t* o = offs.data;
  const int64_t r0 = o[0], r1 = o[G], rows = r1 - r0;
  int64_t extA = matExtent(env, fn, "a", rows, m, lda);
  int64_t extB = matExtent(env, fn, "b", rows, n, ldb);
  int64_t extC = matExtent(env, fn, "c", m, n, ldc);
  int64_t begA = rows && m ? checkedMul(env, fn, r0, lda) : 0, begB = rows && n ? checkedMul(env, fn, r0, ldb) : 0;
  int64_t totC = batchExtent(env, fn, G, sC, extC);
  needLen(env, a, checkedAdd(env, fn, begA, extA), fn, "a");
  needLen(env, b, checkedAdd(env, fn, begB, extB), fn, "b");
  needLen(env, c, totC, fn, "c");
  outputsDisjoint(env, fn, "c", G, sC, m, n, ldc);
  auto cs = slice(c, 0, totC);
  noOverlap(env, fn, cs, "c", slice(a, begA, extA), "a");
  noOverlap(env, fn, cs, "c", slice(b, begB, extB), "b");
  const float* shift = shiftArg(info, 13, fn, "shift", ks, m, cs);
  if (G == 0 || m == 0 || n == 0) return env.Undefined();

  std::vector<Prob> probs((size_t)G);
  for (int64_t g = 0; g < G; g++) {
    int64_t s = o[g], e = o[g + 1];
    Prob& P = probs[(size_t)g];
    P.a = a.data + (e > s ? s * lda : 0);
    P.rsa = 1;
    P.csa = lda;
    P.b = b.data + (e > s ? s * ldb : 0);
    P.rsb = ldb;
    P.csb = 1;
    P.c = c.data + g * sC;
    P.ldc = ldc;
    P.m = m, P.n = n, P.k = e - s;
    P.alpha = (float)alpha, P.beta = (float)beta;
    P.bias = nullptr;
    P.shiftAi = shift;
  }
  runProblems(probs, 0, ks);
  return env.Undefined();
}

namespace {
Napi::Value GemmGroupedKNapi(const Napi::CallbackInfo& info) { return gemmGroupedKBody(info, "gemmGroupedK", nullptr); }
MOELAB_EXPORT(gemmGroupedK, GemmGroupedKNapi);

}  // namespace

}  // namespace moelab
