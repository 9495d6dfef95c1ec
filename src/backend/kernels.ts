/**
 * The kernel contract: every numeric routine moelab runs, on raw typed arrays with explicit sizes.
 *
 * Two implementations exist and must agree: `ref/` (pure TypeScript, the oracle in tests, readable
 * first) and the native addon (C++, fast, validated). The tensor layer calls only these functions.
 *
 * Conventions
 * - Matrices are row-major. A "row stride" (lda, ldb, ldc) is the distance in elements between rows.
 * - Outputs are written, not accumulated, unless the doc says "accumulates" (+=).
 * - Ownership: kernels never keep references to arrays after returning; callers own all buffers.
 * - Outputs must not overlap inputs unless the doc says in-place is allowed. The native side checks
 *   lengths, index ranges and aliasing and throws a JS error instead of touching bad memory.
 * - Indices are Int32Array. Masks are Uint8Array (0 or 1).
 *
 * The contract is split by family (PEER in kernels/peer.ts, MoE routing in kernels/routing.ts, bf16
 * mixed precision in kernels/bf16.ts) and
 * joined into the one `Kernels` interface; KERNEL_NAMES lists every kernel at runtime (the addon is checked against it).
 */
import type { PeerKernels } from './kernels/peer.js';
import { PEER_KERNEL_NAMES } from './kernels/peer.js';
import type { RoutingKernels } from './kernels/routing.js';
import { ROUTING_KERNEL_NAMES } from './kernels/routing.js';
import type { Bf16Kernels } from './kernels/bf16.js';
import { BF16_KERNEL_NAMES } from './kernels/bf16.js';

export type { PeerKernels, U16 } from './kernels/peer.js';
export type { RoutingKernels } from './kernels/routing.js';
export type { Bf16Kernels } from './kernels/bf16.js';
export type F32 = Float32Array;
export type I32 = Int32Array;
export type U8 = Uint8Array;

export { UnaryOp, BinaryOp, ReduceOp, PeerAct, type UnaryOpName, type BinaryOpName, type ReduceOpName, type PeerActName } from './op_codes.js';

export interface CpuInfo {
  isa: 'avx512' | 'avx2' | 'generic' | 'js';
  avx2: boolean;
  fma: boolean;
  avx512f: boolean;
  /** The bf16 kernels run here (native: AVX512_BF16 and the avx512 tier; the reference: always). */
  bf16: boolean;
}

export interface Kernels extends PeerKernels, RoutingKernels, Bf16Kernels {
  readonly name: 'native' | 'ref';
  cpuInfo(): CpuInfo;
  getThreads(): number;
  setThreads(n: number): void;

  // ---------------------------------------------------------------- GEMM family
  /**
   * C = alpha * op(A) @ op(B) + beta * C  (+ bias[j] added to every row when bias is given).
   * op(A) is [m,k]: A is stored [m,k] with row stride lda, or, if transA, stored [k,m] (stride lda).
   * op(B) is [k,n]: B is stored [k,n] with row stride ldb, or, if transB, stored [n,k] (stride ldb).
   * C is [m,n] with row stride ldc. beta = 0 means C's old contents are ignored (NaNs included).
   */
  gemm(transA: boolean, transB: boolean, m: number, n: number, k: number, alpha: number,
    a: F32, lda: number, b: F32, ldb: number, beta: number, c: F32, ldc: number, bias: F32 | null): void;

  /**
   * y = alpha * op(A) x + beta * y, A stored [m, n] with row stride lda: op(A) = A (x [n], y [m]) or,
   * if trans, A^T (x [m], y [n]). beta = 0 ignores y's old contents. gemm() with one row would pad it
   * to a micro-tile and pack all of A; this reads A once. Its sums run in another order than gemm's
   * rows, so it is for products that are vectors by nature, not for a batch that happens to have one row.
   */
  gemv(trans: boolean, m: number, n: number, alpha: number, a: F32, lda: number, x: F32, beta: number, y: F32): void;

  /**
   * gemm() with a unary epilogue (UnaryOp code `op`, f) applied to each finished output tile while it
   * is still in cache. With R = alpha * op(A) @ op(B) + beta * C (+ bias), aux [m,n] with row stride ldaux:
   *   backward false:  C = R (the pre-activation, kept for the backward) and aux = f(R)   (aux written)
   *   backward true:   C = R * f'(aux)   (aux read: the pre-activation saved by the forward)
   * The backward form needs f' from the input alone, so exp, tanh, sigmoid and sqrt are refused.
   * aux must not overlap C (nor, when written, A, B or bias).
   */
  gemmUnary(op: number, backward: boolean, transA: boolean, transB: boolean, m: number, n: number, k: number,
    alpha: number, a: F32, lda: number, b: F32, ldb: number, beta: number, c: F32, ldc: number, bias: F32 | null,
    aux: F32, ldaux: number): void;

  /** `batch` independent GEMMs as in gemm(); matrix i of A starts at a[i*strideA], same for B and C. */
  gemmBatched(batch: number, transA: boolean, transB: boolean, m: number, n: number, k: number, alpha: number,
    a: F32, strideA: number, lda: number, b: F32, strideB: number, ldb: number,
    beta: number, c: F32, strideC: number, ldc: number): void;

  /**
   * Grouped GEMM over row ranges (MoE expert forward and input-gradient). offsets has G+1 entries,
   * non-decreasing, offsets[G] <= rows of A and C. For group g with rows r in [offsets[g], offsets[g+1]):
   *   C[r, :] = alpha * A[r, :] @ op(B_g) + beta * C[r, :] (+ bias[g*n + j])
   * where B_g starts at b[g*strideB], is [k,n] (ldb) or, if transB, [n,k] (ldb).
   * A is [rows,k] with row stride lda, C is [rows,n] with stride ldc. bias is [G,n] or null.
   */
  gemmGroupedRows(G: number, offsets: I32, transB: boolean, n: number, k: number, alpha: number,
    a: F32, lda: number, b: F32, strideB: number, ldb: number, beta: number, c: F32, ldc: number,
    bias: F32 | null): void;

  /**
   * Grouped weight-gradient GEMM (reduction over each group's rows). For each group g:
   *   C_g = alpha * A[rows_g, :]^T @ B[rows_g, :] + beta * C_g
   * A is [rows,m] (lda), B is [rows,n] (ldb), C_g is [m,n] at c[g*strideC] with row stride ldc.
   * An empty group gives C_g = beta * C_g.
   */
  gemmGroupedK(G: number, offsets: I32, m: number, n: number, alpha: number,
    a: F32, lda: number, b: F32, ldb: number, beta: number, c: F32, strideC: number, ldc: number): void;

  // ---------------------------------------------------------------- layout and elementwise
  /**
   * Strided copy: for every multi-index i over `shape` (rank <= 8),
   *   dst[dstOffset + sum(i*dstStrides)] = src[srcOffset + sum(i*srcStrides)].
   * Used for contiguous(), transpose materialisation, concat and split.
   */
  copyStrided(shape: I32, src: F32, srcOffset: number, srcStrides: I32, dst: F32, dstOffset: number, dstStrides: I32): void;

  /**
   * Broadcasting binary op: out (contiguous over `shape`, rank <= 8) at multi-index i =
   *   a[aOffset + sum(i*aStrides)] OP b[bOffset + sum(i*bStrides)]; a stride of 0 broadcasts.
   */
  binary(op: number, shape: I32, a: F32, aOffset: number, aStrides: I32, b: F32, bOffset: number, bStrides: I32, out: F32): void;

  /** out[i] = x[i] OP s for i < out.length. In-place (out === x) allowed. */
  binaryScalar(op: number, x: F32, s: number, out: F32): void;

  /** out[i] = f(x[i]) for i < out.length. In-place allowed. */
  unary(op: number, x: F32, out: F32): void;

  /**
   * gx[i] = gy[i] * f'(x[i]) for i < gx.length; y = f(x) is passed for ops whose derivative is
   * cheaper from the output (exp, tanh, sigmoid, sqrt); other ops may ignore it.
   */
  unaryBackward(op: number, x: F32, y: F32, gy: F32, gx: F32): void;

  /** y[i] += alpha * x[i] for i < y.length. */
  axpy(alpha: number, x: F32, y: F32): void;

  /** x[i] = value for all i. */
  fill(x: F32, value: number): void;

  /** sum_i x[i]^2, accumulated in double precision. */
  sumSquares(x: F32): number;

  /** out[i] = mask[i] ? value : x[i]. In-place allowed. */
  maskedFill(x: F32, mask: U8, value: number, out: F32): void;

  /**
   * Inverted dropout with a counter-based RNG, so native and reference agree bit for bit:
   *   u_i = hash32(hash32(i) ^ seed) / 2^32 with hash32 = lowbias32
   *     (x ^= x>>>16; x = x*0x7feb352d; x ^= x>>>15; x = x*0x846ca68b; x ^= x>>>16; all mod 2^32),
   *   mask[i] = u_i >= p ? 1 : 0,  out[i] = x[i] * mask[i] / (1 - p).
   * seed is a uint32.
   */
  dropout(p: number, seed: number, x: F32, out: F32, mask: U8): void;

  // ---------------------------------------------------------------- reductions
  /**
   * x viewed as [outer, n, inner]; out[o, j] = REDUCE_i x[o, i, j] (out is [outer, inner]).
   * For max, argIdx (if given, [outer, inner]) receives the first index attaining the max.
   */
  reduce(op: number, outer: number, n: number, inner: number, x: F32, out: F32, argIdx: I32 | null): void;

  /**
   * Broadcast-gradient reduction: for every multi-index i over `shape` (rank <= 8),
   *   dst[dstOffset + sum(i*dstStrides)] += src[i]  (src contiguous over shape; accumulates).
   */
  sumInto(shape: I32, src: F32, dst: F32, dstOffset: number, dstStrides: I32): void;

  /** Row-wise softmax over the last axis of [rows, n]: y = softmax(x), or log_softmax when log. */
  softmax(rows: number, n: number, x: F32, y: F32, log: boolean): void;

  /**
   * Backward of softmax(): softmax: gx = y * (gy - sum_j gy_j y_j); log_softmax: gx = gy - exp(y) * sum_j gy_j.
   */
  softmaxBackward(rows: number, n: number, y: F32, gy: F32, gx: F32, log: boolean): void;

  // ---------------------------------------------------------------- fused layers
  /**
   * Cross-entropy over logits [rows, V] with integer targets [rows]:
   *   lse[r] = log sum_j exp(logits[r,j]);  losses[r] = lse[r] - logits[r, t_r];
   * rows with t_r < 0 are ignored: losses[r] = 0. Throws if t_r >= V.
   */
  crossEntropy(rows: number, V: number, logits: F32, targets: I32, losses: F32, lse: F32): void;

  /** glogits[r,j] = gLoss[r] * (exp(logits[r,j] - lse[r]) - [j == t_r]); ignored rows get 0. */
  crossEntropyBackward(rows: number, V: number, logits: F32, targets: I32, lse: F32, gLoss: F32, glogits: F32): void;

  /**
   * LayerNorm over the last axis of [rows, d]: mean_r, rstd_r = 1/sqrt(var_r + eps) (biased var),
   *   y = (x - mean) * rstd * w + b.  mean and rstd ([rows]) are saved for backward.
   */
  layerNorm(rows: number, d: number, eps: number, x: F32, w: F32, b: F32, y: F32, mean: F32, rstd: F32): void;

  /**
   * LayerNorm backward. xhat = (x-mean)*rstd, g = gy*w:
   *   gx = rstd * (g - mean_j(g) - xhat * mean_j(g*xhat))   (written)
   *   gw += sum_r gy*xhat,  gb += sum_r gy               (accumulate)
   */
  layerNormBackward(rows: number, d: number, x: F32, w: F32, mean: F32, rstd: F32, gy: F32, gx: F32, gw: F32, gb: F32): void;

  /**
   * Fused causal multi-head self-attention, reading q, k, v straight from the QKV projection.
   * qkv: [B, S, 3, H, hd] (q, k, v of head h at [b, s, 0|1|2, h, :]); out: [B, S, H, hd].
   *   out[b,s,h] = sum_{t<=s} softmax_t(scale * q[b,s,h].k[b,t,h]) v[b,t,h]
   * lse: [B, H, S] receives log sum_t exp(scale * q.k) per query, which backward reuses instead of
   * storing the S x S probabilities.
   */
  attention(B: number, S: number, H: number, hd: number, scale: number, qkv: F32, out: F32, lse: F32): void;

  /** Backward of attention(): writes gqkv [B, S, 3, H, hd] from gout [B, S, H, hd]. */
  attentionBackward(B: number, S: number, H: number, hd: number, scale: number,
    qkv: F32, out: F32, lse: F32, gout: F32, gqkv: F32): void;

  /**
   * Attention of new queries against a key/value cache (generation). q: [Sq, H, hd] for absolute
   * positions pos0 .. pos0+Sq-1; kCache, vCache: [Smax, H, hd] holding keys/values for positions
   * 0 .. pos0+Sq-1. Query i attends to positions t <= pos0 + i. out: [Sq, H, hd].
   */
  attentionKV(Sq: number, H: number, hd: number, pos0: number, scale: number,
    q: F32, kCache: F32, vCache: F32, out: F32): void;

  // ---------------------------------------------------------------- indexing
  /** Rows gather: out[i, :] = table[ids[i], :] for i < n; table is [rows, d]; ids must be in [0, rows). */
  indexSelect(n: number, d: number, table: F32, ids: I32, out: F32): void;

  /** Rows scatter-add: dst[ids[i], :] += src[i, :] for i < n (accumulates; repeated ids add up). */
  indexAdd(n: number, d: number, ids: I32, src: F32, dst: F32): void;

  /** Last-axis gather: x [rows, n], idx [rows, k] in [0, n): out[r, j] = x[r, idx[r, j]]. */
  gather(rows: number, n: number, k: number, x: F32, idx: I32, out: F32): void;

  /** Last-axis scatter-add: dst[r, idx[r, j]] += src[r, j] (dst [rows, n], accumulates). */
  scatterAdd(rows: number, n: number, k: number, idx: I32, src: F32, dst: F32): void;

  /**
   * Top-k over the last axis of x [rows, n] (k <= n): vals/idx [rows, k] in descending order of value;
   * equal values keep the lower index first. NaN counts as larger than every number.
   */
  topk(rows: number, n: number, k: number, x: F32, vals: F32, idx: I32): void;

  /**
   * Stable counting sort by integer key in [0, numKeys): order[j] lists the positions i of keys
   * grouped by key value, ascending, positions ascending within a key; counts[key] = occurrences.
   */
  argsortInt(n: number, keys: I32, numKeys: number, order: I32, counts: I32): void;

  /**
   * Embedding bag with per-sample weights (PEER's value reduction):
   *   out[b, :] = sum_{j < per} weights[b*per + j] * table[ids[b*per + j], :]   (out [bags, d]).
   */
  embeddingBag(bags: number, per: number, d: number, table: F32, ids: I32, weights: F32, out: F32): void;

  /**
   * Backward of embeddingBag(): gweights[b*per+j] = gout[b, :] . table[ids[b*per+j], :] (written);
   * gtable[ids[b*per+j], :] += weights[b*per+j] * gout[b, :] (accumulates; skipped when gtable is null).
   */
  embeddingBagBackward(bags: number, per: number, d: number, table: F32, ids: I32, weights: F32,
    gout: F32, gweights: F32, gtable: F32 | null): void;

  // ---------------------------------------------------------------- initialisation
  /**
   * Counter-based normal fill (weight init): out[i] = mean + std * sqrt(-2 ln u1) cos(2 pi u2) with
   * u1 = (h(2i) + 0.5) / 2^32, u2 = (h(2i+1) + 0.5) / 2^32, h(j) = lowbias32(lowbias32(j) ^ seed),
   * all uint32 (lowbias32 as in dropout). Element i depends only on (seed, i). At most 2^31 elements.
   */
  randn(out: F32, seed: number, mean: number, std: number): void;

  // ---------------------------------------------------------------- optimizer
  /**
   * One fused AdamW step over n = p.length elements (PyTorch semantics):
   *   m = beta1*m + (1-beta1)*g;  v = beta2*v + (1-beta2)*g^2;
   *   p = p*(1 - lr*wd) - (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps)
   * with bc1 = 1 - beta1^t, bc2 = 1 - beta2^t computed by the caller.
   */
  adamw(p: F32, g: F32, m: F32, v: F32, lr: number, beta1: number, beta2: number, eps: number, wd: number,
    bc1: number, bc2: number): void;
}

/** Every kernel name outside the PEER and routing families, checked by the compiler against Kernels (see KERNEL_NAMES). */
const CORE_KERNEL_NAMES: Record<Exclude<keyof Kernels, 'name' | keyof PeerKernels | keyof RoutingKernels | keyof Bf16Kernels>, true> = {
  cpuInfo: true, getThreads: true, setThreads: true,
  gemm: true, gemv: true, gemmUnary: true, gemmBatched: true, gemmGroupedRows: true, gemmGroupedK: true,
  copyStrided: true, binary: true, binaryScalar: true, unary: true, unaryBackward: true, axpy: true, fill: true,
  sumSquares: true, maskedFill: true, dropout: true,
  reduce: true, sumInto: true, softmax: true, softmaxBackward: true,
  crossEntropy: true, crossEntropyBackward: true, layerNorm: true, layerNormBackward: true,
  attention: true, attentionBackward: true, attentionKV: true,
  indexSelect: true, indexAdd: true, gather: true, scatterAdd: true, topk: true, argsortInt: true,
  embeddingBag: true, embeddingBagBackward: true,
  randn: true, adamw: true,
};

export type KernelName = Exclude<keyof Kernels, 'name'>;

/**
 * The name of every function in the contract, PEER included (every key of Kernels but `name`). Built
 * from per-family records typed against the interface, so adding a kernel without listing it (or
 * listing one that does not exist) does not compile. The native addon must export each of these.
 */
export const KERNEL_NAMES: readonly KernelName[] = Object.freeze(
  [...Object.keys(CORE_KERNEL_NAMES), ...Object.keys(PEER_KERNEL_NAMES), ...Object.keys(ROUTING_KERNEL_NAMES),
    ...Object.keys(BF16_KERNEL_NAMES)] as KernelName[]);
