/**
 * Centring of the activation operand of bf16 GEMMs (linear, mlpGelu, expertMix).
 *
 * Why: early in LM training the inputs of almost every linear layer are one vector c shared by all
 * tokens plus a small per-token part d_t (measured on dense-d256 at step 100, the 2.5 plateau:
 * |mean_t x|^2 / mean_t |x|^2 = 0.95-1.000 for every GEMM input). Rounding x_t = c + d_t to bf16 costs
 * 2^-9 |c| per element, more than d_t carries (~0.03 |c|), and the model learned more slowly than in
 * fp32. Centred, only d_t is rounded (error 2^-9 |d_t|) and c enters in fp32:
 *   forward   y = x W^T + b       = (x - 1 c^T) W^T + (b + W c)          (the kernel's shiftA, an fp32 gemv)
 *   weight    dW = g^T x           = g^T (x - 1 c^T) + colsum(g) c^T    (the kernel's shiftB, a fp32 rank-1 update)
 *   input     dx = g W             unchanged (gradients have no common part: 0.001 measured).
 * Exact in real arithmetic for any c; c is the mean over all rows, computed in fp32 once per forward
 * and reused by the weight gradient. Costs one read of each activation (about 3 ms of a 180 ms
 * dense-d256 bf16 step) and two products of weight size (a gemv and a rank-1 update, about 1 ms).
 * Cheaper centres were worse: measured by the step where bf16 leaves dense-d256's loss plateau
 * against fp32 on the same seed (an fp32 run with another rounding order: within 30 steps), the mean
 * of all rows gave 0, +30, 0, +400, +20 steps on seeds 0-4; the mean of the first 256 rows (one
 * sequence) +110 and +290 on seeds 0-1; the mean of every 8th row +110, -70, +130 and over +360 on
 * seeds 0-3. On moe64-d256 (5 seeds)
 * centring made the exit later instead (+30 to +330 steps against fp32, later than uncentred bf16
 * on every seed where both left), with or without the expert layers centred: train.bf16Centering
 * turns it off per run, and that preset does.
 */
import { backend, BinaryOp, ReduceOp, type Kernels } from '../../backend/index.js';
import { bf16Centering, matmulPrecision } from '../precision.js';

type F32 = Float32Array;

/**
 * The centre of x [rows, cols]: its mean over rows (fp32), or null when the matmuls are not bf16,
 * centring is off or there are no rows.
 */
export function centerOf(x: F32, rows: number, cols: number): F32 | null {
  if (matmulPrecision() !== 'bf16' || !bf16Centering() || rows === 0) return null;
  const kern = backend();
  const c = new Float32Array(cols);
  kern.reduce(ReduceOp.sum, 1, rows, cols, x, c, null);
  kern.binaryScalar(BinaryOp.mul, c, 1 / rows, c);
  return c;
}

/** b + W c in fp32 (W [n, k], c [k], b [n] or null): the bias that adds back the forward's shift. */
export function foldedBias(w: F32, n: number, k: number, c: F32, b: F32 | null): F32 {
  const out = b ? b.slice() : new Float32Array(n);
  backend().gemv(false, n, k, 1, w, k, c, b ? 1 : 0, out);
  return out;
}

/**
 * gw [n, k] += colsum(g) c^T, the part of g^T x the weight gradient's shift removed; colSum = colsum
 * of g [rows, n] when the caller has it (the bias gradient), else it is computed here.
 */
function addBackShift(g: F32, rows: number, n: number, colSum: F32 | null, c: F32, k: number, gw: F32): void {
  const kern = backend();
  let s = colSum;
  if (!s) {
    s = new Float32Array(n);
    kern.reduce(ReduceOp.sum, 1, rows, n, g, s, null);
  }
  kern.gemm(false, false, n, k, 1, 1, s, 1, c, k, 1, gw, k, null);
}

/**
 * The grouped form for expert weights w [G, k, n] (used as x w[g]): out[g] = b[g] + c^T w[g] in fp32
 * (c [k], b [G, n]): the biases that add back the forward's shift, one per expert.
 */
function foldedBiasGrouped(w: F32, G: number, k: number, n: number, c: F32, b: F32): F32 {
  const kern = backend();
  const out = b.slice();
  for (let g = 0; g < G; g++) kern.gemv(true, k, n, 1, w.subarray(g * k * n, (g + 1) * k * n), n, c, 1, out.subarray(g * n, (g + 1) * n));
  return out;
}

/** gw[g] [k, n] += c colSums[g]^T for every expert g (c [k], colSums [G, n]: each expert's column sums of g). */
function addBackShiftGrouped(G: number, k: number, n: number, c: F32, colSums: F32, gw: F32): void {
  backend().gemmBatched(G, false, false, k, n, 1, 1, c, 0, 1, colSums, n, n, 1, gw, k * n, n);
}

type Gemm = Kernels['gemm'];
type GemmRows = Kernels['gemmGroupedRows'];
type GemmK = Kernels['gemmGroupedK'];

/**
 * y [rows, n] = x W^T + b (x [rows, k], W [n, k], b [n] or null) by `gemm`, or with a centre c as
 * the bf16 GEMM of x - 1 c^T with the bias b + W c.
 */
export function affine(gemm: Gemm, x: F32, rows: number, k: number, w: F32, n: number, b: F32 | null, c: F32 | null, y: F32): void {
  if (c) backend().gemmBf16(false, true, rows, n, k, 1, x, k, w, k, 0, y, n, foldedBias(w, n, k, c, b), c, null);
  else gemm(false, true, rows, n, k, 1, x, k, w, k, 0, y, n, b);
}

/**
 * gw [n, k] = g^T x (g [rows, n], x [rows, k]) by `gemm`, or with a centre c as the bf16 GEMM of
 * g^T (x - 1 c^T) plus colsum(g) c^T in fp32 (colSum: g's column sums if the caller has them).
 */
export function weightGradient(gemm: Gemm, g: F32, rows: number, n: number, x: F32, k: number, c: F32 | null,
  colSum: F32 | null, gw: F32): void {
  if (!c) return gemm(true, false, n, k, rows, 1, g, n, x, k, 0, gw, k, null);
  backend().gemmBf16(true, false, n, k, rows, 1, g, n, x, k, 0, gw, k, null, null, c);
  addBackShift(g, rows, n, colSum, c, k, gw);
}

/**
 * The grouped affine of the expert layers: y [N, n] = x w[g] + b[g] on each group's rows (x [N, k],
 * w [G, k, n], b [G, n], groups by `offsets`) by `gemmRows`, or with a centre c as the bf16 grouped
 * GEMM of x - 1 c^T with the biases b[g] + c^T w[g].
 */
export function affineGrouped(gemmRows: GemmRows, G: number, offsets: Int32Array, x: F32, k: number, w: F32, n: number,
  b: F32, c: F32 | null, y: F32): void {
  if (c) backend().gemmGroupedRowsBf16(G, offsets, false, n, k, 1, x, k, w, k * n, n, 0, y, n, foldedBiasGrouped(w, G, k, n, c, b), c);
  else gemmRows(G, offsets, false, n, k, 1, x, k, w, k * n, n, 0, y, n, b);
}

/**
 * gw[g] [k, n] = x_g^T g_g over each group's rows (x [N, k], g [N, n]) by `gemmK`, or with a centre c
 * as the bf16 grouped GEMM of (x - 1 c^T)^T g plus c colsum(g_g)^T in fp32; colSums gives the
 * groups' column sums of g [G, n] (called only when centred: the bias gradient if there is one).
 */
export function weightGradientGrouped(gemmK: GemmK, G: number, offsets: Int32Array, x: F32, k: number, g: F32, n: number,
  c: F32 | null, colSums: () => F32, gw: F32): void {
  if (!c) return gemmK(G, offsets, k, n, 1, x, k, g, n, 0, gw, k * n, n);
  backend().gemmGroupedKBf16(G, offsets, k, n, 1, x, k, g, n, 0, gw, k * n, n, c);
  addBackShiftGrouped(G, k, n, c, colSums(), gw);
}
