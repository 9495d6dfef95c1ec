// bf16 kernels: conversions bit for bit against the reference (ties, NaN, Inf, subnormals, stochastic
// rounding and its mean), the bf16 GEMMs against the exact fp32-operand product within the bound
// derived from bf16 rounding (kernels/bf16.ts), on odd shapes, every transpose, alpha/beta/bias, the
// grouped forms, the dense-d256 shapes (sampled entries), both thread counts; bad arguments; and the
// no-bf16 path (MOELAB_ISA=avx2 in a child process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nativeKernels, ref, UnaryOp, type Kernels } from '../src/backend/index.js';
import { setMatmulPrecision, setAttentionPrecision, attentionPrecision, matmulPrecision } from '../src/tensor/index.js';
import { randn, rng } from './util.js';

const CHILD = process.env.MOELAB_BF16_TEST_CHILD === '1';
const nat: Kernels = nativeKernels();
const HAS_BF16 = nat.cpuInfo().bf16;

const EPS_OPERANDS = 2 ** -7 + 2 ** -16;  // |(1+e1)(1+e2) - 1| with |e| <= 2^-8
const U = 2 ** -24;                        // fp32 unit roundoff

function bitsOf(x: number): number {
  return new Uint32Array(Float32Array.of(x).buffer)[0];
}
function floatOf(bits: number): number {
  return new Float32Array(Uint32Array.of(bits >>> 0).buffer)[0];
}

interface Gemm { tA: boolean; tB: boolean; m: number; n: number; k: number; alpha: number; beta: number; pad: number; bias: boolean }

/**
 * Checks c (computed by a bf16 GEMM from c0) against the exact product of the fp32 operands:
 *   |c - (alpha*sum_p a_ip b_pj + beta*c0 + bias_j)| <= |alpha| (EPS_OPERANDS + (k+2) U) S_ij + 4U (|alpha*exact| + |beta*c0| + |bias|)
 * with S_ij = sum_p |a_ip||b_pj|; the last term covers the fp32 epilogue. Only the entries in `cells`
 * (all when null) are checked, so the model shapes stay cheap.
 */
function checkBound(g: Gemm, a: Float32Array, lda: number, b: Float32Array, ldb: number, c0: Float32Array, c: Float32Array,
  ldc: number, bias: Float32Array | null, label: string, cells: Array<[number, number]> | null = null): number {
  const at = (i: number, p: number) => (g.tA ? a[p * lda + i] : a[i * lda + p]);
  const bt = (p: number, j: number) => (g.tB ? b[j * ldb + p] : b[p * ldb + j]);
  let worst = 0;
  const list = cells ?? Array.from({ length: g.m * g.n }, (_, x) => [Math.floor(x / g.n), x % g.n] as [number, number]);
  for (const [i, j] of list) {
    let s = 0, sa = 0;
    for (let p = 0; p < g.k; p++) {
      const t = at(i, p) * bt(p, j);
      s += t;
      sa += Math.abs(t);
    }
    const old = g.beta === 0 ? 0 : g.beta * c0[i * ldc + j];
    const bj = bias ? bias[j] : 0;
    const want = g.alpha * s + old + bj;
    const tol = Math.abs(g.alpha) * (EPS_OPERANDS + (g.k + 2) * U) * sa + 4 * U * (Math.abs(g.alpha * s) + Math.abs(old) + Math.abs(bj)) + 1e-30;
    const err = Math.abs(c[i * ldc + j] - want);
    assert.ok(err <= tol, `${label}: C[${i},${j}] = ${c[i * ldc + j]}, exact ${want}, error ${err} > bound ${tol}`);
    worst = Math.max(worst, err / tol);
  }
  return worst;
}

function runGemm(k: Kernels, g: Gemm, seed: number, threads: number[]): void {
  const lda = (g.tA ? g.m : g.k) + g.pad, ldb = (g.tB ? g.k : g.n) + g.pad, ldc = g.n + g.pad;
  const a = randn((g.tA ? g.k : g.m) * lda, seed), b = randn((g.tB ? g.n : g.k) * ldb, seed + 1);
  const c0 = randn(g.m * ldc, seed + 2);
  if (g.beta === 0) c0.fill(NaN);
  const bias = g.bias ? randn(g.n, seed + 3) : null;
  const old = k.getThreads();
  try {
    for (const t of threads) {
      k.setThreads(t);
      const c = c0.slice();
      k.gemmBf16(g.tA, g.tB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, c, ldc, bias);
      checkBound(g, a, lda, b, ldb, c0, c, ldc, bias, `${k.name} gemmBf16 ${JSON.stringify(g)} threads=${t}`);
    }
  } finally {
    k.setThreads(old);
  }
}

const SHAPES: Array<[number, number, number]> = [[1, 1, 1], [1, 7, 33], [7, 1, 257], [33, 257, 7], [257, 33, 129], [13, 40, 2],
  [64, 64, 64], [100, 65, 1001], [12, 32, 3], [25, 97, 768], [1, 300, 17]];

test('f32ToBf16 rounds to nearest even, keeps NaN a NaN and Inf an Inf, native bit for bit with the reference', () => {
  const specials = [0, -0, 1, -1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, 1 - 2 ** -24, 3.0e38, 3.4028234663852886e38,
    -3.4028234663852886e38, Infinity, -Infinity, NaN, floatOf(0x7f800001), floatOf(0xffffffff), floatOf(0x7fffffff), 1e-40, -1e-45, 2 ** -126, 65504];
  const x = Float32Array.from([...specials, ...randn(5000, 3, 10)]);
  const rOut = new Uint16Array(x.length), nOut = new Uint16Array(x.length);
  ref.f32ToBf16(x, rOut);
  nat.f32ToBf16(x, nOut);
  assert.deepEqual(nOut, rOut);
  const expect: Array<[number, number]> = [[1, 0x3f80], [1 + 2 ** -8, 0x3f80], [1 + 3 * 2 ** -8, 0x3f82], [1 + 2 ** -8 + 2 ** -20, 0x3f81],
    [1 - 2 ** -24, 0x3f80], [3.4028234663852886e38, 0x7f80], [Infinity, 0x7f80], [-Infinity, 0xff80], [-0, 0x8000]];
  for (const [v, bits] of expect) assert.equal(rOut[specials.findIndex((t) => Object.is(t, v))], bits, `round(${v})`);
  for (const i of [13, 14, 15, 16]) {
    const w = new Float32Array(1);
    ref.bf16ToF32(Uint16Array.of(rOut[i]), w);
    assert.ok(Number.isNaN(w[0]), `NaN input ${i} must stay NaN, got bits ${rOut[i].toString(16)}`);
  }
  // relative error <= 2^-8 for normal values, and widening is exact and native == reference
  const wr = new Float32Array(x.length), wn = new Float32Array(x.length);
  ref.bf16ToF32(rOut, wr);
  nat.bf16ToF32(rOut, wn);
  assert.deepEqual(wn, wr);
  for (let i = specials.length; i < x.length; i++) assert.ok(Math.abs(wr[i] - x[i]) <= 2 ** -8 * Math.abs(x[i]), `x=${x[i]}`);
  for (let i = 0; i < x.length; i++) if (!Number.isNaN(x[i])) assert.equal(bitsOf(wr[i]) >>> 16, rOut[i]);
});

test('f32ToBf16Stochastic: native bit for bit with the reference, unbiased, between the two neighbours', () => {
  const x = Float32Array.from([...randn(4000, 5, 3), NaN, Infinity, -Infinity, 0, 1 + 2 ** -10]);
  for (const seed of [0, 1, 0xffffffff]) {
    const r = new Uint16Array(x.length), n = new Uint16Array(x.length);
    ref.f32ToBf16Stochastic(x, seed, r);
    nat.f32ToBf16Stochastic(x, seed, n);
    assert.deepEqual(n, r, `seed ${seed}`);
    for (let i = 0; i < x.length - 5; i++) {
      const lo = bitsOf(x[i]) >>> 16;
      assert.ok(r[i] === lo || r[i] === lo + 1, `x=${x[i]}: ${r[i]} is not ${lo} or ${lo + 1}`);
    }
    const w = new Float32Array(5);
    ref.bf16ToF32(r.subarray(x.length - 5), w);
    assert.ok(Number.isNaN(w[0]));
    assert.deepEqual([...w.subarray(1)], [Infinity, -Infinity, 0, r[x.length - 1] === 0x3f80 ? 1 : 1 + 2 ** -7]);
  }
  // E[round(x)] = x: 1 + 2^-10 lies 1/8 of an ulp (2^-7) above 1, so it rounds up with probability 1/8
  const v = new Float32Array(40000).fill(1 + 2 ** -10), out = new Uint16Array(v.length), w = new Float32Array(v.length);
  nat.f32ToBf16Stochastic(v, 7, out);
  nat.bf16ToF32(out, w);
  const mean = w.reduce((s, t) => s + t, 0) / w.length;
  const sd = Math.sqrt((1 / 8) * (7 / 8) / w.length) * 2 ** -7;
  assert.ok(Math.abs(mean - (1 + 2 ** -10)) < 5 * sd, `mean ${mean} vs ${1 + 2 ** -10} (sd ${sd})`);
});

test('the reference gemmBf16 is within the derived bound of the exact fp32 product', () => {
  let s = 1;
  for (const [m, n, k] of [[1, 7, 33], [7, 5, 129], [13, 9, 257]])
    for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]])
      runGemm(ref, { tA, tB, m, n, k, alpha: 1, beta: 0, pad: 0, bias: false }, s += 10, [1]);
});

test('conversions reject bad arguments', () => {
  for (const k of [nat, ref]) {
    assert.throws(() => k.f32ToBf16(new Float32Array(3), new Uint16Array(4)), RangeError, k.name);
    assert.throws(() => k.bf16ToF32(new Uint16Array(3), new Float32Array(4)), RangeError, k.name);
    assert.throws(() => k.f32ToBf16Stochastic(new Float32Array(4), -1, new Uint16Array(4)), RangeError, k.name);
    assert.throws(() => k.f32ToBf16Stochastic(new Float32Array(4), 1.5, new Uint16Array(4)), RangeError, k.name);
  }
  assert.throws(() => (nat.f32ToBf16 as (...x: unknown[]) => void)(new Float32Array(4), new Int16Array(4)), TypeError);
  const buf = new ArrayBuffer(16);
  assert.throws(() => nat.f32ToBf16(new Float32Array(buf, 0, 4), new Uint16Array(buf, 4, 4)), /overlap/);
});

if (HAS_BF16 && !CHILD) {
  test('native gemmBf16: odd shapes, every transpose, strides, alpha/beta/bias, 1 and 2 threads, within the bound', () => {
    let s = 100;
    for (const [m, n, k] of SHAPES)
      for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]]) {
        runGemm(nat, { tA, tB, m, n, k, alpha: 1, beta: 0, pad: 0, bias: false }, s += 10, [1, 2]);
        if ((m * n * k) % 3 === 0) runGemm(nat, { tA, tB, m, n, k, alpha: -0.5, beta: 1, pad: 3, bias: true }, s += 10, [2]);
        if ((m * n * k) % 3 === 1) runGemm(nat, { tA, tB, m, n, k, alpha: 2, beta: 0.25, pad: 1, bias: false }, s += 10, [1]);
      }
  });

  test('native gemmBf16 really multiplies bf16 operands (1 + 2^-9 rounds to 1) and a huge k stays within the bound', () => {
    const m = 16, n = 16, k = 16;
    const a = new Float32Array(m * k).fill(1 + 2 ** -9), b = new Float32Array(k * n).fill(1), c = new Float32Array(m * n);
    nat.gemmBf16(false, false, m, n, k, 1, a, k, b, n, 0, c, n, null);
    assert.deepEqual([...new Set(c)], [16], 'fp32 operands would give 16.03125');
    nat.gemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n, null);
    assert.deepEqual([...new Set(c)], [16.03125]);
    runGemm(nat, { tA: true, tB: false, m: 5, n: 40, k: 20000, alpha: 1, beta: 0, pad: 0, bias: false }, 77, [1, 2]);
  });

  test('native gemmBf16 on bf16-exact operands equals the exact product bit for bit (every packing path and edge)', () => {
    // Small integers are exact in bf16 and every partial sum (< 2^24) is exact in fp32, so any packing
    // slip (a swapped pair, a lane of the wrong row, a missing zero pad) shows as a wrong integer.
    // Shapes cross the 12-row / 32-column sliver edges, odd depths, the 16-pair chunks of the
    // transposing packers (depth tails 1..31 past a chunk) and several depth blocks (kc = 768).
    const r = rng(9);
    const ints = (n: number) => Float32Array.from({ length: n }, () => Math.floor(r() * 17) - 8);
    const shapes: Array<[number, number, number]> = [[13, 33, 17], [12, 32, 32], [25, 65, 31], [11, 31, 33], [37, 70, 63],
      [100, 97, 65], [24, 64, 47], [49, 40, 1001], [12, 33, 1537], [2, 300, 95], [300, 2, 49]];
    const old = nat.getThreads();
    for (const [m, n, k] of shapes)
      for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]])
        for (const pad of [0, 5]) {
          const lda = (tA ? m : k) + pad, ldb = (tB ? k : n) + pad;
          const a = ints((tA ? k : m) * lda), b = ints((tB ? n : k) * ldb);
          const want = new Float32Array(m * n), got = new Float32Array(m * n).fill(NaN);
          nat.gemm(tA, tB, m, n, k, 1, a, lda, b, ldb, 0, want, n, null);
          for (const t of [1, 2]) {
            nat.setThreads(t);
            nat.gemmBf16(tA, tB, m, n, k, 1, a, lda, b, ldb, 0, got, n, null);
            assert.deepEqual(got, want, `${m}x${n}x${k} tA=${tA} tB=${tB} pad=${pad} threads=${t}`);
          }
        }
    nat.setThreads(old);
  });

  test('operand shifts: gemmBf16 / gemmUnaryBf16 multiply op(A) - shiftA and op(B) - shiftB, exactly (every packing path, direct path)', () => {
    // A = A' + shiftA with A' and shiftA small integers (so A, A' and the products are exact), and the
    // same for B: the shifted product must equal A' B' bit for bit, while the unshifted one differs.
    const r = rng(19);
    const ints = (n: number, span = 17) => Float32Array.from({ length: n }, () => Math.floor(r() * span) - (span >> 1));
    const shapes: Array<[number, number, number]> = [[13, 33, 17], [25, 65, 31], [37, 70, 63], [12, 33, 1537], [300, 2, 49],
      [3, 3, 5], [1, 4, 2]];
    const old = nat.getThreads();
    const at = (x: Float32Array, t: boolean, ld: number, r0: number, c0: number) => (t ? c0 * ld + r0 : r0 * ld + c0);
    for (const [m, n, k] of shapes)
      for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]])
        for (const which of ['A', 'B', 'AB']) {
          const pad = (m + n + k) % 3;
          const lda = (tA ? m : k) + pad, ldb = (tB ? k : n) + pad;
          const a0 = ints((tA ? k : m) * lda), b0 = ints((tB ? n : k) * ldb);
          const sA = which.includes('A') ? ints(k, 9) : null, sB = which.includes('B') ? ints(n, 9) : null;
          const a = a0.slice(), b = b0.slice();
          for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) if (sA) a[at(a, tA, lda, i, p)] += sA[p];
          for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) if (sB) b[at(b, tB, ldb, p, j)] += sB[j];
          const want = new Float32Array(m * n), got = new Float32Array(m * n).fill(NaN);
          nat.gemm(tA, tB, m, n, k, 1, a0, lda, b0, ldb, 0, want, n, null);
          const label = `${m}x${n}x${k} tA=${tA} tB=${tB} shift ${which}`;
          for (const t of [1, 2]) {
            nat.setThreads(t);
            nat.gemmBf16(tA, tB, m, n, k, 1, a, lda, b, ldb, 0, got, n, null, sA, sB);
            assert.deepEqual(got, want, `${label} threads=${t}`);
          }
          const viaRef = new Float32Array(m * n);
          ref.gemmBf16(tA, tB, m, n, k, 1, a, lda, b, ldb, 0, viaRef, n, null, sA, sB);
          assert.deepEqual(viaRef, want, `reference ${label}`);
          if (which === 'A') {  // the epilogue applies to the shifted product plus bias
            const bias = ints(n), h = new Float32Array(m * n), act = new Float32Array(m * n), hw = new Float32Array(m * n), aw = new Float32Array(m * n);
            nat.gemmUnaryBf16(UnaryOp.relu, false, tA, tB, m, n, k, 1, a, lda, b, ldb, 0, h, n, bias, act, n, sA, null);
            nat.gemmUnary(UnaryOp.relu, false, tA, tB, m, n, k, 1, a0, lda, b0, ldb, 0, hw, n, bias, aw, n);
            assert.deepEqual(h, hw, `gemmUnaryBf16 ${label}`);
            assert.deepEqual(act, aw, `gemmUnaryBf16 activation ${label}`);
          }
        }
    nat.setThreads(old);
    // Unshifted, the same operands are not the shifted product (the test above can fail).
    const a = Float32Array.from({ length: 12 }, (_, i) => i), b = new Float32Array(12).fill(1), c = new Float32Array(9);
    nat.gemmBf16(false, false, 3, 3, 4, 1, a, 4, b, 3, 0, c, 3, null, Float32Array.of(0, 1, 2, 3), null);
    assert.deepEqual([...c], [0, 0, 0, 16, 16, 16, 32, 32, 32]);
  });

  test('operand shifts of the grouped bf16 GEMMs: every row of a minus shift, exactly (groups of 0 to 70 rows)', () => {
    const r = rng(23);
    const ints = (n: number, span = 17) => Float32Array.from({ length: n }, () => Math.floor(r() * span) - (span >> 1));
    const G = 4, offs = Int32Array.from([0, 3, 3, 70, 101]), rows = 101, old = nat.getThreads();
    for (const [n, k] of [[37, 70], [5, 3], [64, 200]]) {
      const lda = k + 2, a0 = ints(rows * lda), sh = ints(k, 9), a = a0.slice();
      for (let i = 0; i < rows; i++) for (let p = 0; p < k; p++) a[i * lda + p] += sh[p];
      for (const tB of [false, true]) {
        const b = ints(G * k * n), bias = ints(G * n), want = new Float32Array(rows * n), got = new Float32Array(rows * n);
        nat.gemmGroupedRows(G, offs, tB, n, k, 1, a0, lda, b, k * n, tB ? k : n, 0, want, n, bias);
        for (const t of [1, 2]) {
          nat.setThreads(t);
          nat.gemmGroupedRowsBf16(G, offs, tB, n, k, 1, a, lda, b, k * n, tB ? k : n, 0, got, n, bias, sh);
          assert.deepEqual(got, want, `gemmGroupedRowsBf16 n=${n} k=${k} tB=${tB} threads=${t}`);
        }
        ref.gemmGroupedRowsBf16(G, offs, tB, n, k, 1, a, lda, b, k * n, tB ? k : n, 0, got, n, bias, sh);
        assert.deepEqual(got, want, `reference gemmGroupedRowsBf16 n=${n} k=${k} tB=${tB}`);
      }
      // gemmGroupedK: C_g = a_g^T b_g with a [rows, m = k here]
      const m = k, b = ints(rows * n), want = new Float32Array(G * m * n), got = new Float32Array(G * m * n).fill(NaN);
      nat.gemmGroupedK(G, offs, m, n, 1, a0, lda, b, n, 0, want, m * n, n);
      for (const t of [1, 2]) {
        nat.setThreads(t);
        nat.gemmGroupedKBf16(G, offs, m, n, 1, a, lda, b, n, 0, got, m * n, n, sh);
        assert.deepEqual(got, want, `gemmGroupedKBf16 m=${m} n=${n} threads=${t}`);
      }
      ref.gemmGroupedKBf16(G, offs, m, n, 1, a, lda, b, n, 0, got, m * n, n, sh);
      assert.deepEqual(got, want, `reference gemmGroupedKBf16 m=${m} n=${n}`);
    }
    nat.setThreads(old);
    assert.throws(() => nat.gemmGroupedKBf16(1, Int32Array.of(0, 2), 3, 2, 1, new Float32Array(6), 3, new Float32Array(4), 2, 0,
      new Float32Array(6), 6, 2, new Float32Array(2)), /gemmGroupedKBf16: 'shift' has 2/);
  });

  test('operand shifts keep a common-mode product accurate where plain bf16 rounding loses it', () => {
    // x_t = c + d_t with |d| ~ 1e-2 |c| (early LM activations): y = x W^T. Rounding x costs 2^-9 |c| per
    // element, more than the per-row signal; shifted by the row mean (added back as the bias W c in
    // fp32) the error is 2^-9 |d|. Compared on the row-centred outputs y_t - mean_t y, the signal.
    const T = 64, d = 256, n = 32;
    const c = randn(d, 3), x = new Float32Array(T * d), w = randn(n * d, 4, 0.06), noise = randn(T * d, 5, 0.01);
    for (let t = 0; t < T; t++) for (let e = 0; e < d; e++) x[t * d + e] = c[e] + noise[t * d + e];
    const mean = new Float32Array(d);
    for (let t = 0; t < T; t++) for (let e = 0; e < d; e++) mean[e] += x[t * d + e] / T;
    const exact = new Float64Array(T * n);
    for (let t = 0; t < T; t++) for (let j = 0; j < n; j++) { let s = 0; for (let e = 0; e < d; e++) s += x[t * d + e] * w[j * d + e]; exact[t * n + j] = s; }
    const fold = new Float32Array(n);
    nat.gemm(false, true, 1, n, d, 1, mean, d, w, d, 0, fold, n, null);
    const plain = new Float32Array(T * n), shifted = new Float32Array(T * n);
    nat.gemmBf16(false, true, T, n, d, 1, x, d, w, d, 0, plain, n, null);
    nat.gemmBf16(false, true, T, n, d, 1, x, d, w, d, 0, shifted, n, fold, mean, null);
    const relSignalError = (y: Float32Array): number => {
      let num = 0, den = 0;
      for (let j = 0; j < n; j++) {
        let my = 0, me = 0;
        for (let t = 0; t < T; t++) my += y[t * n + j] / T, me += exact[t * n + j] / T;
        for (let t = 0; t < T; t++) num += ((y[t * n + j] - my) - (exact[t * n + j] - me)) ** 2, den += (exact[t * n + j] - me) ** 2;
      }
      return Math.sqrt(num / den);
    };
    const ePlain = relSignalError(plain), eShift = relSignalError(shifted);
    assert.ok(ePlain > 0.1, `plain bf16 should lose the signal here (${ePlain})`);
    assert.ok(eShift < 0.01, `shifted bf16 keeps it (${eShift})`);
  });

  test('operand shifts: bad lengths and overlaps are JS errors', () => {
    const a = new Float32Array(12), b = new Float32Array(12), c = new Float32Array(9);
    assert.throws(() => nat.gemmBf16(false, false, 3, 3, 4, 1, a, 4, b, 3, 0, c, 3, null, new Float32Array(3), null), /gemmBf16: 'shiftA' has 3/);
    assert.throws(() => nat.gemmBf16(false, false, 3, 3, 4, 1, a, 4, b, 3, 0, c, 3, null, null, new Float32Array(2)), /gemmBf16: 'shiftB' has 2/);
    assert.throws(() => nat.gemmBf16(false, false, 3, 3, 4, 1, a, 4, b, 3, 0, c, 3, null, c.subarray(0, 4), null), /gemmBf16: .*overlap/);
    assert.throws(() => nat.gemmUnaryBf16(UnaryOp.relu, false, false, false, 3, 3, 4, 1, a, 4, b, 3, 0, c, 3, null,
      new Float32Array(9), 3, new Int32Array(4) as unknown as Float32Array, null), /gemmUnaryBf16: /);
    assert.throws(() => ref.gemmBf16(false, false, 3, 3, 4, 1, a, 4, b, 3, 0, c, 3, null, new Float32Array(3), null), /gemmBf16: 'shiftA' has 3/);
  });

  test('native gemmBf16 on the dense-d256 shapes (T = 2048: forward, input and weight gradients), sampled entries', () => {
    const T = 2048, d = 256, h = 1024;
    const cases: Gemm[] = [
      { tA: false, tB: true, m: T, n: h, k: d, alpha: 1, beta: 0, pad: 0, bias: true },
      { tA: false, tB: true, m: T, n: d, k: h, alpha: 1, beta: 0, pad: 0, bias: true },
      { tA: false, tB: false, m: T, n: d, k: h, alpha: 1, beta: 0, pad: 0, bias: false },
      { tA: false, tB: false, m: T, n: h, k: d, alpha: 1, beta: 0, pad: 0, bias: false },
      { tA: true, tB: false, m: h, n: d, k: T, alpha: 1, beta: 0, pad: 0, bias: false },
      { tA: true, tB: false, m: d, n: h, k: T, alpha: 1, beta: 1, pad: 0, bias: false },
    ];
    const r = rng(5);
    let seed = 500;
    for (const g of cases) {
      const lda = g.tA ? g.m : g.k, ldb = g.tB ? g.k : g.n;
      const a = randn(g.m * g.k, seed++, 0.5), b = randn(g.k * g.n, seed++, 0.05), c0 = randn(g.m * g.n, seed++);
      const bias = g.bias ? randn(g.n, seed++) : null;
      const c = c0.slice();
      nat.gemmBf16(g.tA, g.tB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, c, g.n, bias);
      const cells: Array<[number, number]> = [[0, 0], [g.m - 1, g.n - 1], [g.m - 1, 0], [0, g.n - 1]];
      for (let i = 0; i < 300; i++) cells.push([Math.floor(r() * g.m), Math.floor(r() * g.n)]);
      checkBound(g, a, lda, b, ldb, c0, c, g.n, bias, `dense shape ${JSON.stringify(g)}`, cells);
    }
  });

  test('native grouped bf16 GEMMs (MoE forms) within the bound of the fp32 reference', () => {
    const G = 3, n = 37, k = 70, offs = Int32Array.from([0, 17, 17, 60]);
    const a = randn(60 * k, 1), b = randn(G * k * n, 2), c = new Float32Array(60 * n), bias = randn(G * n, 3);
    nat.gemmGroupedRowsBf16(G, offs, false, n, k, 1, a, k, b, k * n, n, 0, c, n, bias);
    for (let g = 0; g < G; g++) {
      const rows = offs[g + 1] - offs[g];
      if (!rows) continue;
      checkBound({ tA: false, tB: false, m: rows, n, k, alpha: 1, beta: 0, pad: 0, bias: true }, a.subarray(offs[g] * k), k,
        b.subarray(g * k * n), n, c, c.subarray(offs[g] * n), n, bias.subarray(g * n), `gemmGroupedRowsBf16 group ${g}`);
    }
    const m = 24, gk = new Float32Array(G * m * n), x = randn(60 * m, 4), y = randn(60 * n, 5);
    nat.gemmGroupedKBf16(G, offs, m, n, 1, x, m, y, n, 0, gk, m * n, n);
    for (let g = 0; g < G; g++) {
      const rows = offs[g + 1] - offs[g];
      checkBound({ tA: true, tB: false, m, n, k: rows, alpha: 1, beta: 0, pad: 0, bias: false }, x.subarray(offs[g] * m), m,
        y.subarray(offs[g] * n), n, gk, gk.subarray(g * m * n), n, null, `gemmGroupedKBf16 group ${g}`);
    }
  });

  test('native gemmBf16 rejects bad arguments with JS errors (shared checks of gemm)', () => {
    const a = new Float32Array(12), b = new Float32Array(12), c = new Float32Array(9);
    const call = (args: unknown[]): void => { (nat.gemmBf16 as (...x: unknown[]) => void)(...args); };
    const good = (): unknown[] => [false, false, 3, 3, 4, 1, a, 4, b, 3, 0, c, 3, null];
    call(good());
    for (const [i, v] of [[6, new Float32Array(11)], [2, -1], [3, 2.5], [8, new Int32Array(12)], [7, 3], [13, new Float32Array(2)]] as Array<[number, unknown]>) {
      const args = good();
      args[i] = v;
      assert.throws(() => call(args), (e: Error) => e instanceof Error && /^gemmBf16: /.test(e.message), `arg ${i}`);
    }
    { const args = good(); args[11] = a; args[12] = 3; assert.throws(() => call(args), /gemmBf16: .*overlap/); }
    assert.throws(() => nat.gemmGroupedRowsBf16(2, Int32Array.from([0, 5, 4]), false, 3, 4, 1, new Float32Array(40), 4,
      new Float32Array(24), 12, 3, 0, new Float32Array(30), 3, null), /gemmGroupedRowsBf16: .*non-decreasing/);
    assert.throws(() => nat.gemmGroupedKBf16(2, Int32Array.from([0, 6, 11]), 3, 4, 1, new Float32Array(30), 3,
      new Float32Array(40), 4, 0, new Float32Array(24), 12, 4), /gemmGroupedKBf16: /);
  });

  test('without AVX512_BF16 (MOELAB_ISA=avx2, child process) the bf16 GEMMs and precision throw clear errors', () => {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
      env: { ...process.env, MOELAB_ISA: 'avx2', MOELAB_BF16_TEST_CHILD: '1' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, `child failed:\n${r.stdout}\n${r.stderr}`);
  });
}

if (CHILD || !HAS_BF16) {
  test('no bf16 here: gemmBf16 throws an Error naming the cause, conversions still work, bf16 precision is refused', () => {
    assert.equal(nat.cpuInfo().bf16, false);
    const a = new Float32Array(16), c = new Float32Array(16);
    assert.throws(() => nat.gemmBf16(false, false, 4, 4, 4, 1, a, 4, a, 4, 0, c, 4, null),
      /gemmBf16: bf16 kernels need a CPU with AVX512_BF16 .*Use fp32/);
    assert.throws(() => nat.gemmGroupedRowsBf16(1, Int32Array.from([0, 4]), false, 4, 4, 1, a, 4, a, 16, 4, 0, c, 4, null),
      /gemmGroupedRowsBf16: bf16 kernels need/);
    const qkv = new Float32Array(2 * 3 * 4), o = new Float32Array(2 * 4), lse = new Float32Array(2);
    assert.throws(() => nat.attentionBf16(1, 2, 1, 4, 0.5, qkv, o, lse), /attentionBf16: bf16 kernels need/);
    assert.throws(() => nat.attentionBackwardBf16(1, 2, 1, 4, 0.5, qkv, o, lse, o, new Float32Array(qkv.length)),
      /attentionBackwardBf16: bf16 kernels need/);
    const out = new Uint16Array(2);
    nat.f32ToBf16(Float32Array.of(1, -2), out);
    assert.deepEqual([...out], [0x3f80, 0xc000]);
    assert.throws(() => setMatmulPrecision('bf16'), /train\.precision "bf16" needs a CPU with AVX512_BF16.*"fp32"/);
    assert.equal(matmulPrecision(), 'fp32');
    assert.throws(() => setAttentionPrecision('bf16'), /bf16 attention needs a CPU with AVX512_BF16/);
    assert.equal(attentionPrecision(), 'fp32');
  });
}
