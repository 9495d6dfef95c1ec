// Elementwise, reduction, norm, loss and optimizer kernels: the reference checked against
// independent formulas (finite differences in float64, known values), then native == ref on
// random inputs over odd sizes, broadcasting, strides, extreme values, in-place use and bad
// arguments. With MOELAB_TEST_ISA_CHILD unset, the native checks are also re-run in child processes
// under MOELAB_ISA=generic (the portable C++ path) and, on an AVX-512 CPU, MOELAB_ISA=avx2, so every
// tier this CPU can run is covered (the parent runs the best one).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nativeKernels, ref, UnaryOp, BinaryOp, ReduceOp } from '../src/backend/index.js';
import type { Kernels } from '../src/backend/index.js';
import { randn, randint, rng, assertClose } from './util.js';

const CHILD = process.env.MOELAB_TEST_ISA_CHILD === '1';
const I = (...a: number[]) => Int32Array.from(a);
/** float64 view of data, for running the reference in double precision (it only indexes arrays). */
const f64 = (a: ArrayLike<number>) => Float64Array.from(a) as unknown as Float32Array;
const zeros64 = (n: number) => new Float64Array(n) as unknown as Float32Array;
const UNARY = Object.entries(UnaryOp) as [string, number][];
const BINARY = Object.entries(BinaryOp) as [string, number][];

/** Inputs in each op's domain. */
function unaryInput(op: number, n: number, seed: number): Float32Array {
  const x = randn(n, seed, 2);
  if (op === UnaryOp.log || op === UnaryOp.sqrt) for (let i = 0; i < n; i++) x[i] = Math.abs(x[i]) + 0.05;
  return x;
}

// ------------------------------------------------------------------ the reference, independently
describe('reference oracle', { skip: CHILD }, () => {
  test('unaryBackward matches central differences of unary (float64)', () => {
    for (const [name, op] of UNARY) {
      const x = f64(unaryInput(op, 64, 3));
      const y = zeros64(64), gy = f64(randn(64, 4)), gx = zeros64(64);
      ref.unary(op, x, y);
      ref.unaryBackward(op, x, y, gy, gx);
      const h = 1e-6;
      for (let i = 0; i < 64; i++) {
        if (op === UnaryOp.relu && Math.abs(x[i]) < 1e-3) continue;
        const xp = f64([x[i] + h]), xm = f64([x[i] - h]), yp = zeros64(1), ym = zeros64(1);
        ref.unary(op, xp, yp);
        ref.unary(op, xm, ym);
        const fd = gy[i] * (yp[0] - ym[0]) / (2 * h);
        assert.ok(Math.abs(fd - gx[i]) <= 1e-6 * (1 + Math.abs(fd)), `${name}[${i}] x=${x[i]}: fd ${fd} vs ${gx[i]}`);
      }
    }
  });

  test('gelu_erf = x*Phi(x) at known normal cdf values; tails keep relative accuracy', () => {
    // Phi(1), Phi(2), Phi(-3), Phi(-5), Phi(-8)
    const xs = [1, 2, -3, -5, -8];
    const phi = [0.8413447460685429, 0.9772498680518208, 0.0013498980316300946, 2.866515718791939e-7, 6.22096057427178e-16];
    const y = zeros64(5);
    ref.unary(UnaryOp.gelu_erf, f64(xs), y);
    for (let i = 0; i < 5; i++) assert.ok(Math.abs(y[i] / (xs[i] * phi[i]) - 1) < 1e-12, `gelu_erf(${xs[i]}) = ${y[i]}`);
    // gelu_tanh is the usual tanh form
    const z = zeros64(3), xt = [-2, 0.5, 3];
    ref.unary(UnaryOp.gelu_tanh, f64(xt), z);
    for (let i = 0; i < 3; i++) {
      const v = xt[i], want = 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
      assert.ok(Math.abs(z[i] - want) < 1e-14, `gelu_tanh(${v})`);
    }
  });

  test('softmaxBackward is the vector-Jacobian product of softmax (float64 differences)', () => {
    for (const log of [false, true]) {
      const rows = 3, n = 7, x = f64(randn(rows * n, 5, 2)), gy = f64(randn(rows * n, 6));
      const y = zeros64(rows * n), gx = zeros64(rows * n);
      ref.softmax(rows, n, x, y, log);
      ref.softmaxBackward(rows, n, y, gy, gx, log);
      const L = (xx: Float32Array) => { const yy = zeros64(rows * n); ref.softmax(rows, n, xx, yy, log); let s = 0; for (let i = 0; i < rows * n; i++) s += gy[i] * yy[i]; return s; };
      for (let i = 0; i < rows * n; i++) {
        const h = 1e-6, xp = f64(x), xm = f64(x);
        xp[i] += h; xm[i] -= h;
        const fd = (L(xp) - L(xm)) / (2 * h);
        assert.ok(Math.abs(fd - gx[i]) < 1e-7, `log=${log} [${i}]: fd ${fd} vs ${gx[i]}`);
      }
    }
  });

  test('softmax rows sum to 1, log_softmax = log(softmax), huge logits stay finite', () => {
    const x = Float32Array.from([1000, 999, -1000, 3, 1e30, 1e30, -1e30, 0]);
    const y = new Float32Array(8), ly = new Float32Array(8);
    ref.softmax(2, 4, x, y, false);
    ref.softmax(2, 4, x, ly, true);
    assertClose(y, [1 / (1 + Math.exp(-1)), Math.exp(-1) / (1 + Math.exp(-1)), 0, 0, 0.5, 0.5, 0, 0], 1e-6, 1e-7);
    assert.ok(Math.abs(ly[1] - (-1 - Math.log1p(Math.exp(-1)))) < 1e-6);
    assert.ok(Math.abs(ly[6] / -2e30 - 1) < 1e-6 && Number.isFinite(ly[6]));
  });

  test('layerNormBackward matches float64 differences of layerNorm for x, w and b', () => {
    const rows = 3, d = 5, eps = 1e-5;
    const x = f64(randn(rows * d, 7)), w = f64(randn(d, 8)), b = f64(randn(d, 9)), gy = f64(randn(rows * d, 10));
    const L = (xx: Float32Array, ww: Float32Array, bb: Float32Array) => {
      const y = zeros64(rows * d);
      ref.layerNorm(rows, d, eps, xx, ww, bb, y, zeros64(rows), zeros64(rows));
      let s = 0; for (let i = 0; i < rows * d; i++) s += gy[i] * y[i];
      return s;
    };
    const mean = zeros64(rows), rstd = zeros64(rows), y = zeros64(rows * d);
    ref.layerNorm(rows, d, eps, x, w, b, y, mean, rstd);
    const gx = zeros64(rows * d), gw = f64(new Array(d).fill(0.5)), gb = f64(new Array(d).fill(-0.25));
    ref.layerNormBackward(rows, d, x, w, mean, rstd, gy, gx, gw, gb);
    const h = 1e-6;
    const fdOf = (arr: Float32Array, i: number, f: (a: Float32Array) => number) => {
      const p = f64(arr), m = f64(arr); p[i] += h; m[i] -= h; return (f(p) - f(m)) / (2 * h);
    };
    for (let i = 0; i < rows * d; i++) assert.ok(Math.abs(fdOf(x, i, (a) => L(a, w, b)) - gx[i]) < 1e-6, `gx[${i}]`);
    for (let j = 0; j < d; j++) {
      assert.ok(Math.abs(fdOf(w, j, (a) => L(x, a, b)) + 0.5 - gw[j]) < 1e-6, `gw[${j}] accumulates`);
      assert.ok(Math.abs(fdOf(b, j, (a) => L(x, w, a)) - 0.25 - gb[j]) < 1e-6, `gb[${j}] accumulates`);
    }
    // forward: each row has mean 0 and variance var/(var+eps) before the affine map
    const y1 = zeros64(rows * d);
    ref.layerNorm(rows, d, 0, x, f64(new Array(d).fill(1)), zeros64(d), y1, mean, rstd);
    for (let r = 0; r < rows; r++) {
      let s = 0, q = 0;
      for (let j = 0; j < d; j++) { s += y1[r * d + j]; q += y1[r * d + j] ** 2; }
      assert.ok(Math.abs(s) < 1e-12 && Math.abs(q / d - 1) < 1e-12);
    }
  });

  test('crossEntropy = -log softmax[target]; backward matches float64 differences; ignored rows', () => {
    const rows = 4, V = 6, logits = f64(randn(rows * V, 11, 3)), t = I(2, -1, 5, 0), gL = f64([0.5, 2, -1, 1.5]);
    const losses = zeros64(rows), lse = zeros64(rows);
    ref.crossEntropy(rows, V, logits, t, losses, lse);
    const sm = zeros64(rows * V);
    ref.softmax(rows, V, logits, sm, true);
    for (let r = 0; r < rows; r++) assert.ok(Math.abs(losses[r] - (t[r] < 0 ? 0 : -sm[r * V + t[r]])) < 1e-12);
    const g = zeros64(rows * V);
    ref.crossEntropyBackward(rows, V, logits, t, lse, gL, g);
    const L = (lg: Float32Array) => { const l = zeros64(rows); ref.crossEntropy(rows, V, lg, t, l, zeros64(rows)); let s = 0; for (let r = 0; r < rows; r++) s += gL[r] * l[r]; return s; };
    for (let i = 0; i < rows * V; i++) {
      const p = f64(logits), m = f64(logits), h = 1e-6; p[i] += h; m[i] -= h;
      assert.ok(Math.abs((L(p) - L(m)) / (2 * h) - g[i]) < 1e-7, `glogits[${i}]`);
    }
    assert.throws(() => ref.crossEntropy(1, 3, new Float32Array(3), I(3), new Float32Array(1), new Float32Array(1)), RangeError);
    // huge logits: no overflow
    const big = Float32Array.from([1e4, 0, -1e4]), l1 = new Float32Array(1), s1 = new Float32Array(1);
    ref.crossEntropy(1, 3, big, I(1), l1, s1);
    assert.equal(l1[0], 1e4);
    assert.equal(s1[0], 1e4);
  });

  test('adamw first step is lr*g/(|g|+eps) after decoupled decay', () => {
    const p = f64([1, -2, 0.5]), g = f64([0.3, -0.01, 2]), m = zeros64(3), v = zeros64(3);
    const lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
    ref.adamw(p, g, m, v, lr, b1, b2, eps, wd, 1 - b1, 1 - b2);
    const p0 = [1, -2, 0.5], g0 = [0.3, -0.01, 2];
    for (let i = 0; i < 3; i++) {
      const want = p0[i] * (1 - lr * wd) - lr * g0[i] / (Math.abs(g0[i]) + eps);
      assert.ok(Math.abs(p[i] - want) < 1e-12, `p[${i}] ${p[i]} vs ${want}`);
      assert.ok(Math.abs(m[i] - 0.1 * g0[i]) < 1e-15 && Math.abs(v[i] - 0.001 * g0[i] ** 2) < 1e-15);
    }
  });

  test('binary broadcasting, copyStrided transpose, reduce and sumInto by hand', () => {
    const a = Float32Array.from([1, 2, 3]), b = Float32Array.from([10, 20, 30, 40]), out = new Float32Array(12);
    ref.binary(BinaryOp.sub, I(3, 4), a, 0, I(1, 0), b, 0, I(0, 1), out);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) assert.equal(out[i * 4 + j], a[i] - b[j]);
    const mx = new Float32Array(2);
    ref.binary(BinaryOp.max, I(2), Float32Array.from([NaN, 1]), 0, I(1), Float32Array.from([0, NaN]), 0, I(1), mx);
    assert.ok(Number.isNaN(mx[0]) && Number.isNaN(mx[1]), 'max propagates NaN');
    const src = Float32Array.from({ length: 6 }, (_, i) => i), t = new Float32Array(6);
    ref.copyStrided(I(3, 2), src, 0, I(1, 3), t, 0, I(2, 1)); // transpose of [2,3]
    assert.deepEqual([...t], [0, 3, 1, 4, 2, 5]);
    const x = Float32Array.from([1, 5, 5, 2, NaN, 0]), o = new Float32Array(2), arg = new Int32Array(2);
    ref.reduce(ReduceOp.max, 1, 3, 2, x, o, arg); // columns [1,5,NaN] and [5,2,0]
    assert.ok(Number.isNaN(o[0]) && arg[0] === 2 && o[1] === 5 && arg[1] === 0);
    ref.reduce(ReduceOp.sum, 2, 3, 1, Float32Array.from([1, 2, 3, 4, 5, 6]), o, null);
    assert.deepEqual([...o], [6, 15]);
    const dst = Float32Array.from([100, 200]);
    ref.sumInto(I(3, 2), Float32Array.from([1, 2, 3, 4, 5, 6]), dst, 0, I(0, 1));
    assert.deepEqual([...dst], [109, 212]);
  });

  test('dropout keeps ~1-p, scales kept values, and p=0 / p=1 are exact', () => {
    const n = 20000, x = randn(n, 12), out = new Float32Array(n), mask = new Uint8Array(n);
    ref.dropout(0.3, 1234, x, out, mask);
    let kept = 0;
    for (let i = 0; i < n; i++) {
      kept += mask[i];
      assert.equal(out[i], mask[i] ? Math.fround(x[i] * Math.fround(1 / 0.7)) : 0);
    }
    assert.ok(Math.abs(kept / n - 0.7) < 0.015, `kept ${kept / n}`);
    ref.dropout(0, 5, x, out, mask);
    assert.ok(mask.every((m) => m === 1));
    assert.deepEqual(out, x);
    ref.dropout(1, 5, x, out, mask);
    assert.ok(mask.every((m) => m === 0) && out.every((v) => v === 0));
    // a different seed gives a different mask
    const m2 = new Uint8Array(n);
    ref.dropout(0.5, 1, x, out, mask);
    ref.dropout(0.5, 2, x, out, m2);
    assert.notDeepEqual(mask, m2);
  });
});

// ------------------------------------------------------------------ native == reference
let native: Kernels | null = null;
try { native = nativeKernels(); } catch { native = null; }

const SIZES = [1, 7, 23, 33, 257, 70001]; // 70001 crosses the threading grain; 23 leaves a 7-lane AVX-512 tail
const EXTREMES = [0, -0, 1, -1, 1e-40, -1e-40, 1e-8, -1e-8, 0.624, 0.626, -0.7518, 9, -9, 20, -20, 50, -50,
  87, -87, 88.7, 89, -103, -110, 1e30, -1e30, Infinity, -Infinity, NaN];

/** rtol, atol of native vs reference per unary op (exact ops first). */
function unaryTol(op: number): [number, number] {
  return [UnaryOp.neg, UnaryOp.relu, UnaryOp.sqrt, UnaryOp.square].includes(op as 0) ? [0, 0] : [2e-6, 1e-30];
}

function permuteStrides(dims: number[], perm: number[]): Int32Array {
  const st: number[] = []; let s = 1;
  for (let k = dims.length - 1; k >= 0; k--) { st[k] = s; s *= dims[k]; }
  return Int32Array.from(perm.map((p) => st[p]));
}

function nativeSuite(N: Kernels, label: string): void {
  describe(`native (${label}) == reference`, () => {
    test('isa', () => {
      if (CHILD) assert.equal(N.cpuInfo().isa, process.env.MOELAB_ISA);
    });

    test('binary: every op, broadcasting (stride 0), transposed operands, offsets, rank 0 and empty', () => {
      type Case = { shape: number[]; aLen: number; aOff: number; aSt: number[]; bLen: number; bOff: number; bSt: number[] };
      const cases: Case[] = [
        { shape: [7, 33], aLen: 231, aOff: 0, aSt: [33, 1], bLen: 231, bOff: 0, bSt: [33, 1] },
        { shape: [257, 33], aLen: 257 * 33, aOff: 0, aSt: [33, 1], bLen: 33, bOff: 0, bSt: [0, 1] },
        { shape: [33, 7], aLen: 231, aOff: 0, aSt: [7, 1], bLen: 33, bOff: 0, bSt: [1, 0] },
        { shape: [5, 7, 9], aLen: 45, aOff: 0, aSt: [9, 0, 1], bLen: 63, bOff: 0, bSt: [0, 9, 1] },
        { shape: [257], aLen: 257, aOff: 0, aSt: [1], bLen: 1, bOff: 0, bSt: [0] },
        { shape: [257], aLen: 1, aOff: 0, aSt: [0], bLen: 257, bOff: 0, bSt: [1] },
        { shape: [33, 7], aLen: 240, aOff: 5, aSt: [1, 33], bLen: 300, bOff: 11, bSt: [8, 1] },
        { shape: [300, 257], aLen: 300 * 257, aOff: 0, aSt: [257, 1], bLen: 257, bOff: 0, bSt: [0, 1] },
        { shape: [257, 1], aLen: 257, aOff: 0, aSt: [1, 0], bLen: 257, bOff: 0, bSt: [1, 5] },
        { shape: [2, 3, 5], aLen: 40, aOff: 30, aSt: [-15, -5, -1], bLen: 5, bOff: 0, bSt: [0, 0, 1] },
        { shape: [], aLen: 3, aOff: 2, aSt: [], bLen: 2, bOff: 1, bSt: [] },
        { shape: [0, 5], aLen: 0, aOff: 0, aSt: [5, 1], bLen: 0, bOff: 0, bSt: [5, 1] },
      ];
      for (const c of cases) {
        const total = c.shape.reduce((p, d) => p * d, 1);
        const a = randn(c.aLen, 21), b = randn(c.bLen, 22);
        for (let i = 0; i < b.length; i += 5) b[i] = a[i % Math.max(a.length, 1)] ?? 0; // some ties for max/min
        if (b.length > 3) b[3] = 0; // division by zero
        for (const [name, op] of BINARY) {
          const o1 = new Float32Array(total + 2).fill(7), o2 = new Float32Array(total + 2).fill(7);
          ref.binary(op, Int32Array.from(c.shape), a, c.aOff, Int32Array.from(c.aSt), b, c.bOff, Int32Array.from(c.bSt), o1);
          N.binary(op, Int32Array.from(c.shape), a, c.aOff, Int32Array.from(c.aSt), b, c.bOff, Int32Array.from(c.bSt), o2);
          assertClose(o2, o1, 0, 0, `binary ${name} shape [${c.shape}]`);
        }
      }
      // NaN propagation through max/min
      const a = Float32Array.from([NaN, 1, NaN, -0, 2, 3, 4, 5, 6]), b = Float32Array.from([1, NaN, NaN, 0, 1, 9, 4, 5, NaN]);
      for (const op of [BinaryOp.max, BinaryOp.min]) {
        const o1 = new Float32Array(9), o2 = new Float32Array(9);
        ref.binary(op, I(9), a, 0, I(1), b, 0, I(1), o1);
        N.binary(op, I(9), a, 0, I(1), b, 0, I(1), o2);
        assertClose(o2, o1, 0, 0, `max/min NaN op ${op}`);
      }
    });

    test('binaryScalar: every op and size; in-place', () => {
      for (const n of SIZES) {
        const x = randn(n, 23);
        for (const [name, op] of BINARY) {
          for (const s of [0.1, -3, 0]) {
            const o1 = new Float32Array(n), o2 = new Float32Array(n);
            ref.binaryScalar(op, x, s, o1);
            N.binaryScalar(op, x, s, o2);
            assertClose(o2, o1, 0, 0, `binaryScalar ${name} ${s} n=${n}`);
            const xi = x.slice();
            N.binaryScalar(op, xi, s, xi);
            assertClose(xi, o1, 0, 0, `binaryScalar in-place ${name}`);
          }
        }
      }
    });

    test('copyStrided: transposes (tiled and not), permutes, flips, broadcast source, offsets, rank 8', () => {
      const check = (shape: number[], srcLen: number, so: number, ss: Int32Array, dstLen: number, dOff: number, ds: Int32Array, what: string) => {
        const src = randn(srcLen, 24), d1 = new Float32Array(dstLen).fill(-5), d2 = new Float32Array(dstLen).fill(-5);
        ref.copyStrided(Int32Array.from(shape), src, so, ss, d1, dOff, ds);
        N.copyStrided(Int32Array.from(shape), src, so, ss, d2, dOff, ds);
        assertClose(d2, d1, 0, 0, what);
      };
      check([33, 257], 257 * 33, 0, I(1, 33), 257 * 33, 0, I(257, 1), 'transpose 257x33 (tiled)');
      check([300, 200], 60000, 0, I(1, 300), 60000, 0, I(200, 1), 'transpose 200x300 (tiled, threaded)');
      check([7, 3], 21, 0, I(1, 7), 21, 0, I(3, 1), 'transpose 3x7');
      check([2, 3, 5, 7], 210, 0, permuteStrides([2, 5, 3, 7], [0, 2, 1, 3]), 210, 0, permuteStrides([2, 3, 5, 7], [0, 1, 2, 3]), 'permute 0213');
      check([2, 17, 19, 3], 1938, 0, permuteStrides([3, 17, 2, 19], [2, 1, 3, 0]), 1938, 0, permuteStrides([2, 17, 19, 3], [0, 1, 2, 3]), 'permute 2130');
      check([33], 40, 32, I(-1), 33, 0, I(1), 'flip');
      check([7, 33], 33, 0, I(0, 1), 7 * 33 + 9, 9, I(33, 1), 'broadcast source, dst offset');
      check([257], 600, 3, I(2), 800, 1, I(3), 'strided both');
      check([70001], 70001, 0, I(1), 70001, 0, I(1), 'contiguous large');
      check([2, 1, 2, 1, 3, 1, 2, 2], 48, 0, permuteStrides([2, 1, 2, 1, 3, 1, 2, 2], [0, 1, 2, 3, 4, 5, 7, 6]), 48, 0, permuteStrides([2, 1, 2, 1, 3, 1, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7]), 'rank 8');
      check([4, 5], 20, 0, I(5, 1), 1, 0, I(0, 0), 'all-zero dst strides (last write wins)');
    });

    test('unary: every op over sizes, extreme values, in-place', () => {
      for (const [name, op] of UNARY) {
        const [rtol, atol] = unaryTol(op);
        for (const n of SIZES) {
          const x = unaryInput(op, n, 25 + n);
          const o1 = new Float32Array(n), o2 = new Float32Array(n);
          ref.unary(op, x, o1);
          N.unary(op, x, o2);
          assertClose(o2, o1, rtol, atol, `unary ${name} n=${n}`);
          const xi = x.slice();
          N.unary(op, xi, xi);
          assertClose(xi, o2, 0, 0, `unary ${name} in-place`);
        }
        const x = Float32Array.from(EXTREMES), o1 = new Float32Array(x.length), o2 = new Float32Array(x.length);
        ref.unary(op, x, o1);
        N.unary(op, x, o2);
        assertClose(o2, o1, rtol, 1e-37, `unary ${name} extremes`);
      }
      // a dense sweep where the approximations switch branches or lose accuracy
      const sweep = Float32Array.from({ length: 40001 }, (_, i) => -16 + i * 0.0008);
      for (const op of [UnaryOp.exp, UnaryOp.tanh, UnaryOp.gelu_tanh, UnaryOp.gelu_erf, UnaryOp.silu, UnaryOp.sigmoid]) {
        const o1 = new Float32Array(sweep.length), o2 = new Float32Array(sweep.length);
        ref.unary(op, sweep, o1);
        N.unary(op, sweep, o2);
        assertClose(o2, o1, 2e-6, 1e-37, `unary op ${op} sweep`);
      }
      const pos = Float32Array.from({ length: 20001 }, (_, i) => Math.exp(-80 + i * 0.008));
      const l1 = new Float32Array(pos.length), l2 = new Float32Array(pos.length);
      ref.unary(UnaryOp.log, pos, l1);
      N.unary(UnaryOp.log, pos, l2);
      assertClose(l2, l1, 2e-6, 1e-7, 'log sweep');
    });

    test('unaryBackward: every op over sizes and finite extremes', () => {
      for (const [name, op] of UNARY) {
        for (const n of [...SIZES, EXTREMES.length]) {
          const ext = n === EXTREMES.length;
          const x = ext ? Float32Array.from(EXTREMES.filter((v) => Number.isFinite(v)).concat([0.5, 2, -3, 4])) : unaryInput(op, n, 26);
          const y = new Float32Array(x.length), gy = randn(x.length, 27), g1 = new Float32Array(x.length), g2 = new Float32Array(x.length);
          ref.unary(op, x, y);
          ref.unaryBackward(op, x, y, gy, g1);
          N.unaryBackward(op, x, y, gy, g2);
          assertClose(g2, g1, 2e-6, op === UnaryOp.neg || op === UnaryOp.square ? 0 : 1e-7, `unaryBackward ${name} n=${x.length}`);
        }
      }
      // ops that read only y (or x) accept an empty array for the other
      const x = randn(9, 28), y = new Float32Array(9), gy = randn(9, 29), g1 = new Float32Array(9), g2 = new Float32Array(9);
      N.unary(UnaryOp.tanh, x, y);
      N.unaryBackward(UnaryOp.tanh, new Float32Array(0), y, gy, g1);
      ref.unaryBackward(UnaryOp.tanh, new Float32Array(0), y, gy, g2);
      assertClose(g1, g2, 2e-6, 1e-7, 'tanh backward from y only');
    });

    test('axpy, fill, sumSquares, maskedFill', () => {
      for (const n of SIZES) {
        const x = randn(n, 30), y = randn(n, 31), y1 = y.slice(), y2 = y.slice();
        ref.axpy(-0.37, x, y1);
        N.axpy(-0.37, x, y2);
        assertClose(y2, y1, 1e-6, 1e-7, `axpy n=${n}`);
        const f = new Float32Array(n);
        N.fill(f, 0.1);
        assert.ok(f.every((v) => v === Math.fround(0.1)));
        const ss1 = ref.sumSquares(x), ss2 = N.sumSquares(x);
        assert.ok(Math.abs(ss1 - ss2) <= 1e-12 * ss1, `sumSquares n=${n}: ${ss2} vs ${ss1}`);
        const mask = Uint8Array.from(randint(n, 2, 32)), o1 = new Float32Array(n), o2 = new Float32Array(n);
        ref.maskedFill(x, mask, -Infinity, o1);
        N.maskedFill(x, mask, -Infinity, o2);
        assertClose(o2, o1, 0, 0, `maskedFill n=${n}`);
        const xi = x.slice();
        N.maskedFill(xi, mask, -Infinity, xi);
        assertClose(xi, o1, 0, 0, 'maskedFill in-place');
      }
      // deterministic regardless of thread count
      const big = randn(300000, 33), t0 = N.getThreads();
      const s1 = N.sumSquares(big);
      N.setThreads(1);
      const s2 = N.sumSquares(big);
      N.setThreads(t0);
      assert.equal(s1, s2);
    });

    test('dropout: masks and outputs bit-identical to the reference', () => {
      for (const n of SIZES) {
        for (const [p, seed] of [[0.1, 0], [0.5, 12345], [0.9, 0xffffffff], [0, 7], [1, 7], [1e-10, 3]] as const) {
          const x = randn(n, 34), o1 = new Float32Array(n), o2 = new Float32Array(n);
          const m1 = new Uint8Array(n), m2 = new Uint8Array(n);
          ref.dropout(p, seed, x, o1, m1);
          N.dropout(p, seed, x, o2, m2);
          assert.deepEqual(m2, m1, `dropout mask p=${p} seed=${seed} n=${n}`);
          assertClose(o2, o1, 0, 0, `dropout out p=${p}`);
        }
      }
    });

    test('reduce: sum and max (with argmax, NaN, ties) over [outer, n, inner]', () => {
      const shapes = [[1, 1, 1], [1, 7, 1], [3, 33, 1], [1, 257, 33], [7, 33, 1], [2, 5, 257], [257, 1, 1], [1, 300, 600], [40, 2000, 1], [2, 3, 1100]];
      for (const [o, n, inner] of shapes) {
        const x = randn(o * n * inner, 35);
        for (let i = 0; i < x.length; i += 13) x[i] = 1.5; // ties
        if (x.length > 40) x[40] = NaN;
        for (const op of [ReduceOp.sum, ReduceOp.max]) {
          const r1 = new Float32Array(o * inner), r2 = new Float32Array(o * inner);
          const a1 = new Int32Array(o * inner), a2 = new Int32Array(o * inner);
          ref.reduce(op, o, n, inner, x, r1, a1);
          N.reduce(op, o, n, inner, x, r2, op === ReduceOp.max ? a2 : null);
          // sums: float partials over 16 rows, then double; error ~ sqrt(16 n) ulps of the terms' scale
          assertClose(r2, r1, op === ReduceOp.sum ? 1e-6 : 0, op === ReduceOp.sum ? 1e-6 * Math.sqrt(n) : 0, `reduce op ${op} [${o},${n},${inner}]`);
          if (op === ReduceOp.max) assert.deepEqual(a2, a1, `argmax [${o},${n},${inner}]`);
        }
      }
      const r = new Float32Array(4);
      N.reduce(ReduceOp.sum, 2, 0, 2, new Float32Array(0), r, null);
      assert.deepEqual([...r], [0, 0, 0, 0]);
    });

    test('sumInto: bias rows, broadcast columns, scalars, transposed and repeated destinations', () => {
      type Case = { shape: number[]; dstLen: number; off: number; st: number[] };
      const cases: Case[] = [
        { shape: [257, 33], dstLen: 33, off: 0, st: [0, 1] },
        { shape: [7, 33], dstLen: 7, off: 0, st: [1, 0] },
        { shape: [8, 64, 33], dstLen: 64 * 33, off: 0, st: [0, 33, 1] },
        { shape: [5, 7, 9], dstLen: 9 * 5 + 4, off: 4, st: [9, 0, 1] },
        { shape: [33, 7], dstLen: 231, off: 0, st: [1, 33] },
        { shape: [257], dstLen: 1, off: 0, st: [0] },
        { shape: [3, 4, 5], dstLen: 1, off: 0, st: [0, 0, 0] },
        { shape: [4, 4], dstLen: 7, off: 0, st: [1, 1] }, // repeated destinations
        { shape: [600, 700], dstLen: 700, off: 0, st: [0, 1] },
        { shape: [2000, 30], dstLen: 2000, off: 0, st: [1, 0] },
        { shape: [1, 1], dstLen: 2, off: 1, st: [0, 0] },
        { shape: [0, 3], dstLen: 3, off: 0, st: [0, 1] },
      ];
      for (const c of cases) {
        const total = c.shape.reduce((p, d) => p * d, 1), src = randn(total, 36), dst = randn(c.dstLen, 37);
        const d1 = dst.slice(), d2 = dst.slice();
        ref.sumInto(Int32Array.from(c.shape), src, d1, c.off, Int32Array.from(c.st));
        N.sumInto(Int32Array.from(c.shape), src, d2, c.off, Int32Array.from(c.st));
        assertClose(d2, d1, 1e-6, 4e-5, `sumInto [${c.shape}] strides [${c.st}]`);
      }
    });

    test('softmax / log_softmax and backward over row shapes, huge logits, -inf masks', () => {
      for (const [rows, n] of [[1, 1], [1, 7], [3, 23], [7, 33], [33, 257], [257, 1], [64, 256], [2048, 64]]) {
        const x = randn(rows * n, 38, 3);
        if (rows * n > 10) { x[3] = -Infinity; x[5] = 1e4; x[9] = -1e4; }
        const gy = randn(rows * n, 39);
        for (const log of [false, true]) {
          const y1 = new Float32Array(rows * n), y2 = new Float32Array(rows * n);
          ref.softmax(rows, n, x, y1, log);
          N.softmax(rows, n, x, y2, log);
          assertClose(y2, y1, 2e-6, log ? 1e-6 : 1e-9, `softmax log=${log} [${rows},${n}]`);
          const g1 = new Float32Array(rows * n), g2 = new Float32Array(rows * n);
          ref.softmaxBackward(rows, n, y1, gy, g1, log);
          N.softmaxBackward(rows, n, y1, gy, g2, log);
          assertClose(g2, g1, 2e-6, 1e-6, `softmaxBackward log=${log} [${rows},${n}]`);
        }
      }
      // a fully masked row gives NaN in both
      const x = Float32Array.from([-Infinity, -Infinity, -Infinity, 0, 1, 2]), y1 = new Float32Array(6), y2 = new Float32Array(6);
      ref.softmax(2, 3, x, y1, false);
      N.softmax(2, 3, x, y2, false);
      assertClose(y2, y1, 2e-6, 1e-9, 'masked row');
    });

    test('crossEntropy and backward: shapes, ignored rows, large logits, masked vocab', () => {
      for (const [rows, V] of [[1, 1], [3, 23], [7, 33], [257, 7], [33, 257], [2048, 256], [3, 5000]]) {
        const logits = randn(rows * V, 40, rows === 3 ? 100 : 3);
        const t = randint(rows, V, 41);
        for (let r = 0; r < rows; r += 3) t[r] = -1;
        if (V > 3) for (let r = 1; r < rows; r += 4) { logits[r * V + ((t[r] + 1) % V)] = -Infinity; logits[r * V + t[r]] = 80; }
        const l1 = new Float32Array(rows), l2 = new Float32Array(rows), s1 = new Float32Array(rows), s2 = new Float32Array(rows);
        ref.crossEntropy(rows, V, logits, t, l1, s1);
        N.crossEntropy(rows, V, logits, t, l2, s2);
        assertClose(s2, s1, 1e-6, 1e-6, `lse [${rows},${V}]`);
        assertClose(l2, l1, 2e-6, 1e-6, `losses [${rows},${V}]`);
        const gL = randn(rows, 42), g1 = new Float32Array(rows * V), g2 = new Float32Array(rows * V).fill(9);
        ref.crossEntropyBackward(rows, V, logits, t, s1, gL, g1);
        N.crossEntropyBackward(rows, V, logits, t, s1, gL, g2);
        assertClose(g2, g1, 2e-6, 1e-7, `glogits [${rows},${V}]`);
      }
    });

    test('layerNorm and backward (gw, gb accumulate)', () => {
      for (const [rows, d] of [[1, 1], [1, 7], [3, 23], [7, 33], [257, 1], [33, 257], [2048, 256], [5, 1029]]) {
        const x = randn(rows * d, 43, 2), w = randn(d, 44), b = randn(d, 45), gy = randn(rows * d, 46);
        for (let i = 0; i < d; i++) x[i] += 100; // a row with a large mean
        const out = () => [new Float32Array(rows * d), new Float32Array(rows), new Float32Array(rows)];
        const [y1, m1, r1] = out(), [y2, m2, r2] = out();
        ref.layerNorm(rows, d, 1e-5, x, w, b, y1, m1, r1);
        N.layerNorm(rows, d, 1e-5, x, w, b, y2, m2, r2);
        assertClose(m2, m1, 1e-6, 1e-7, `mean [${rows},${d}]`);
        assertClose(r2, r1, 1e-6, 0, `rstd [${rows},${d}]`);
        assertClose(y2, y1, 2e-6, 2e-6, `y [${rows},${d}]`);
        const gx1 = new Float32Array(rows * d), gx2 = new Float32Array(rows * d);
        const gw1 = randn(d, 47), gb1 = randn(d, 48), gw2 = gw1.slice(), gb2 = gb1.slice();
        ref.layerNormBackward(rows, d, x, w, m1, r1, gy, gx1, gw1, gb1);
        N.layerNormBackward(rows, d, x, w, m1, r1, gy, gx2, gw2, gb2);
        assertClose(gx2, gx1, 2e-6, 2e-6, `gx [${rows},${d}]`);
        assertClose(gw2, gw1, 1e-6, 1e-5, `gw [${rows},${d}]`);
        assertClose(gb2, gb1, 1e-6, 1e-5, `gb [${rows},${d}]`);
      }
    });

    test('adamw over sizes, several steps', () => {
      for (const n of SIZES) {
        const p1 = randn(n, 49), g = randn(n, 50, 0.1), m1 = randn(n, 51, 0.01), v1 = randn(n, 52, 0.01).map((q) => q * q);
        const p2 = p1.slice(), m2 = m1.slice(), v2 = v1.slice();
        for (let t = 1; t <= 3; t++) {
          const bc1 = 1 - 0.9 ** t, bc2 = 1 - 0.999 ** t;
          ref.adamw(p1, g, m1, v1, 1e-3, 0.9, 0.999, 1e-8, 0.1, bc1, bc2);
          N.adamw(p2, g, m2, v2, 1e-3, 0.9, 0.999, 1e-8, 0.1, bc1, bc2);
        }
        assertClose(m2, m1, 2e-6, 1e-8, `adamw m n=${n}`); // b1*m + (1-b1)*g can cancel
        assertClose(v2, v1, 2e-6, 1e-12, `adamw v n=${n}`);
        assertClose(p2, p1, 2e-6, 1e-7, `adamw p n=${n}`);
      }
    });
  });
}

if (native) nativeSuite(native, CHILD ? 'generic' : native.cpuInfo().isa);

describe('native argument validation', { skip: !native || CHILD }, () => {
  const N = native as Kernels;
  const f = (n: number) => new Float32Array(n);
  const bad = (what: string, fn: () => void, type: typeof Error = Error) => assert.throws(fn, type, what);

  test('wrong types, too few arguments, bad op codes', () => {
    const call = N as unknown as Record<string, (...a: unknown[]) => unknown>;
    bad('plain array', () => call.unary(0, [1, 2], f(2)), TypeError);
    bad('Float64Array', () => call.binaryScalar(0, new Float64Array(2), 1, f(2)), TypeError);
    bad('string number', () => call.axpy('2', f(2), f(2)), TypeError);
    bad('too few args', () => call.softmax(1, 2, f(2)), TypeError);
    bad('fractional op', () => N.unary(1.5, f(2), f(2)), RangeError);
    bad('unknown unary op', () => N.unary(11, f(2), f(2)), RangeError);
    bad('unknown binary op', () => N.binaryScalar(6, f(2), 1, f(2)), RangeError);
    bad('unknown reduce op', () => N.reduce(2, 1, 1, 1, f(1), f(1), null), RangeError);
    bad('log not boolean', () => call.softmax(1, 2, f(2), f(2), 1), TypeError);
    bad('argIdx type', () => call.reduce(1, 1, 2, 1, f(2), f(1), f(1)), TypeError);
    bad('targets type', () => call.crossEntropy(1, 2, f(2), f(1), f(1), f(1)), TypeError);
    bad('mask type', () => call.maskedFill(f(2), new Int8Array(2), 0, f(2)), TypeError);
  });

  test('short arrays and negative or fractional dims', () => {
    bad('short x', () => N.unary(0, f(3), f(5)), RangeError);
    bad('short gy', () => N.unaryBackward(UnaryOp.relu, f(5), f(0), f(4), f(5)), RangeError);
    bad('short y for tanh', () => N.unaryBackward(UnaryOp.tanh, f(5), f(4), f(5), f(5)), RangeError);
    bad('short mask', () => N.maskedFill(f(5), new Uint8Array(4), 0, f(5)), RangeError);
    bad('short dropout mask', () => N.dropout(0.5, 1, f(5), f(5), new Uint8Array(4)), RangeError);
    bad('negative rows', () => N.softmax(-1, 2, f(2), f(2), false), RangeError);
    bad('fractional n', () => N.softmax(1, 2.5, f(3), f(3), false), RangeError);
    bad('NaN dim', () => N.layerNorm(NaN, 2, 1e-5, f(2), f(2), f(2), f(2), f(1), f(1)), RangeError);
    bad('short logits', () => N.crossEntropy(2, 3, f(5), I(0, 1), f(2), f(2)), RangeError);
    bad('short lse', () => N.crossEntropyBackward(2, 3, f(6), I(0, 1), f(1), f(2), f(6)), RangeError);
    bad('short w', () => N.layerNorm(2, 3, 1e-5, f(6), f(2), f(3), f(6), f(2), f(2)), RangeError);
    bad('short gb', () => N.layerNormBackward(2, 3, f(6), f(3), f(2), f(2), f(6), f(6), f(3), f(2)), RangeError);
    bad('short rstd', () => N.layerNormBackward(2, 3, f(6), f(3), f(2), f(1), f(6), f(6), f(3), f(3)), RangeError);
    bad('short reduce x', () => N.reduce(0, 2, 3, 4, f(23), f(8), null), RangeError);
    bad('short argIdx', () => N.reduce(1, 2, 3, 1, f(6), f(2), new Int32Array(1)), RangeError);
    bad('short adam v', () => N.adamw(f(4), f(4), f(4), f(3), 1e-3, 0.9, 0.999, 1e-8, 0, 0.1, 0.001), RangeError);
    bad('short axpy x', () => N.axpy(1, f(3), f(4)), RangeError);
    bad('short binary out', () => N.binary(0, I(2, 3), f(6), 0, I(3, 1), f(6), 0, I(3, 1), f(5)), RangeError);
    bad('short sumInto src', () => N.sumInto(I(2, 3), f(5), f(3), 0, I(0, 1)), RangeError);
    bad('huge dims', () => N.reduce(0, 2 ** 40, 2 ** 40, 1, f(1), f(1), null), RangeError);
  });

  test('targets out of range leave outputs untouched', () => {
    const losses = f(2).fill(5), lse = f(2).fill(5);
    bad('target = V', () => N.crossEntropy(2, 3, f(6), I(0, 3), losses, lse), RangeError);
    assert.deepEqual([...losses, ...lse], [5, 5, 5, 5]);
    const g = f(6).fill(5);
    bad('backward target > V', () => N.crossEntropyBackward(2, 3, f(6), I(7, 0), f(2), f(2), g), RangeError);
    assert.ok(g.every((v) => v === 5));
    const l = f(2);
    N.crossEntropy(2, 3, f(6), I(-1, -100), l, f(2)); // negative targets are ignored rows
    assert.deepEqual([...l], [0, 0]);
  });

  test('shapes and strides that reach outside their arrays', () => {
    bad('src too short for shape', () => N.copyStrided(I(3, 3), f(8), 0, I(3, 1), f(9), 0, I(3, 1)), RangeError);
    bad('negative stride below 0', () => N.copyStrided(I(2), f(4), 0, I(-1), f(2), 0, I(1)), RangeError);
    bad('offset past the end', () => N.copyStrided(I(2), f(4), 3, I(1), f(2), 0, I(1)), RangeError);
    bad('dst stride overflow', () => N.copyStrided(I(2, 2), f(4), 0, I(2, 1), f(4), 0, I(2147483647, 1)), RangeError);
    bad('rank 9', () => N.copyStrided(I(1, 1, 1, 1, 1, 1, 1, 1, 1), f(1), 0, I(1, 1, 1, 1, 1, 1, 1, 1, 1), f(1), 0, I(1, 1, 1, 1, 1, 1, 1, 1, 1)), RangeError);
    bad('strides length != rank', () => N.binary(0, I(2, 3), f(6), 0, I(3), f(6), 0, I(3, 1), f(6)), RangeError);
    bad('negative dim', () => N.binary(0, I(-2, 3), f(6), 0, I(3, 1), f(6), 0, I(3, 1), f(6)), RangeError);
    bad('broadcast b too short', () => N.binary(0, I(2, 3), f(6), 0, I(3, 1), f(2), 0, I(0, 1), f(6)), RangeError);
    bad('negative offset', () => N.binary(0, I(2), f(6), -1, I(1), f(6), 0, I(1), f(2)), RangeError);
    bad('sumInto dst reach', () => N.sumInto(I(2, 3), f(6), f(3), 1, I(0, 1)), RangeError);
    // zero-size shapes touch nothing, whatever the strides
    N.copyStrided(I(0, 3), f(0), 0, I(99, 99), f(0), 0, I(99, 99));
  });

  test('aliasing outputs and inputs throws; documented in-place use works', () => {
    const buf = f(32);
    bad('unary partial overlap', () => N.unary(UnaryOp.exp, buf.subarray(0, 10), buf.subarray(1, 11)), RangeError);
    bad('binary out overlaps a', () => N.binary(0, I(8), buf, 0, I(1), f(8), 0, I(1), buf.subarray(4, 12)), RangeError);
    bad('binary out === b', () => N.binary(0, I(8), f(8), 0, I(1), buf, 0, I(1), buf), RangeError);
    bad('copy src/dst overlap', () => N.copyStrided(I(4), buf, 0, I(2), buf, 1, I(2)), RangeError);
    bad('softmax in place', () => N.softmax(2, 4, buf, buf, false), RangeError);
    bad('softmaxBackward gx === gy', () => N.softmaxBackward(2, 4, f(8), buf, buf, false), RangeError);
    bad('unaryBackward gx === gy', () => N.unaryBackward(UnaryOp.relu, f(8), f(8), buf.subarray(0, 8), buf.subarray(0, 8)), RangeError);
    bad('axpy x === y', () => N.axpy(1, buf, buf), RangeError);
    bad('adamw p === m', () => N.adamw(buf, f(32), buf, f(32), 1e-3, 0.9, 0.999, 1e-8, 0, 0.1, 0.001), RangeError);
    bad('layerNorm y === x', () => N.layerNorm(2, 4, 1e-5, buf.subarray(0, 8), f(4), f(4), buf.subarray(0, 8), f(2), f(2)), RangeError);
    bad('layerNorm mean inside y', () => N.layerNorm(2, 4, 1e-5, f(8), f(4), f(4), buf.subarray(0, 8), buf.subarray(6, 8), f(2)), RangeError);
    bad('layerNormBackward gw === gb', () => N.layerNormBackward(2, 4, f(8), f(4), f(2), f(2), f(8), f(8), buf.subarray(0, 4), buf.subarray(0, 4)), RangeError);
    bad('crossEntropy losses === lse', () => N.crossEntropy(2, 3, f(6), I(0, 1), buf.subarray(0, 2), buf.subarray(0, 2)), RangeError);
    bad('glogits over logits', () => N.crossEntropyBackward(2, 3, buf.subarray(0, 6), I(0, 1), f(2), f(2), buf.subarray(2, 8)), RangeError);
    bad('dropout out === x', () => N.dropout(0.5, 1, buf, buf, new Uint8Array(32)), RangeError);
    bad('dropout mask over out', () => N.dropout(0.5, 1, f(4), buf.subarray(0, 4), new Uint8Array(buf.buffer, 0, 4)), RangeError);
    bad('sumInto src/dst overlap', () => N.sumInto(I(4), buf.subarray(0, 4), buf, 2, I(1)), RangeError);
    bad('reduce out inside x', () => N.reduce(0, 2, 4, 1, buf.subarray(0, 8), buf.subarray(7, 9), null), RangeError);
    // the same buffer used for disjoint views is fine
    const x = buf.subarray(0, 8), y = buf.subarray(8, 16);
    x.set(randn(8, 60));
    N.softmax(2, 4, x, y, false);
    assert.ok(Math.abs(y[0] + y[1] + y[2] + y[3] - 1) < 1e-6);
    N.copyStrided(I(4), buf, 0, I(2), buf, 16, I(1));
    assert.deepEqual([...buf.subarray(16, 20)], [buf[0], buf[2], buf[4], buf[6]]);
  });

  test('dropout p and seed ranges; reduce max over an empty axis; adamw bias corrections', () => {
    bad('p > 1', () => N.dropout(1.5, 1, f(2), f(2), new Uint8Array(2)), RangeError);
    bad('p NaN', () => N.dropout(NaN, 1, f(2), f(2), new Uint8Array(2)), RangeError);
    bad('seed < 0', () => N.dropout(0.5, -1, f(2), f(2), new Uint8Array(2)), RangeError);
    bad('seed >= 2^32', () => N.dropout(0.5, 2 ** 32, f(2), f(2), new Uint8Array(2)), RangeError);
    bad('max over n=0', () => N.reduce(ReduceOp.max, 1, 0, 1, f(0), f(1), null), RangeError);
    bad('bc1 = 0', () => N.adamw(f(2), f(2), f(2), f(2), 1e-3, 0.9, 0.999, 1e-8, 0, 0, 0.5), RangeError);
    bad('lr NaN', () => N.adamw(f(2), f(2), f(2), f(2), NaN, 0.9, 0.999, 1e-8, 0, 0.5, 0.5), RangeError);
    bad('eps inf', () => N.layerNorm(1, 2, Infinity, f(2), f(2), f(2), f(2), f(1), f(1)), RangeError);
  });
});

for (const isa of ['generic', 'avx2']) {
  const skip = !native || CHILD || (isa === 'avx2' && native.cpuInfo().isa !== 'avx512');
  test(`native checks pass on a lower ISA tier (MOELAB_ISA=${isa} child)`, { skip }, () => {
    const file = fileURLToPath(import.meta.url);
    const env: NodeJS.ProcessEnv = { ...process.env, MOELAB_ISA: isa, MOELAB_TEST_ISA_CHILD: '1' };
    delete env.NODE_TEST_CONTEXT; // else the child reports to this runner's private channel, not stdout
    const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', file], {
      env,
      encoding: 'utf8',
      timeout: 60000,
    });
    assert.equal(r.status, 0, `${isa}-ISA child failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /# pass [1-9]/);
  });
}
