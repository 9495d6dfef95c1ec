// Elementwise, reduction, norm, loss and optimizer kernels: the reference checked against
// independent formulas (finite differences in float64, known values), then native == ref on
// random inputs over odd sizes, broadcasting, strides, extreme values, in-place use and bad
// arguments. With MOELAB_TEST_ISA_CHILD unset, the native checks are also re-run once in a child
// process under MOELAB_ISA=generic so the portable C++ path is covered.
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
