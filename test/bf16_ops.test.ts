// The ops that switch on matmulPrecision(): linear() and expertMix() run their forward and both
// backward GEMMs in bf16 under 'bf16' (results differ from fp32 by about the bf16 rounding, no more),
// and fp32 again once the precision is restored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeKernels, ref, UnaryOp } from '../src/backend/index.js';
import * as T from '../src/tensor/index.js';
import { tensor, type Tensor } from '../src/tensor/index.js';
import { randn } from './util.js';
import { centerOf } from '../src/tensor/ops/bf16_center.js';

const HAS_BF16 = nativeKernels().cpuInfo().bf16;

const leaf = (shape: number[], seed: number, scale = 1): Tensor => {
  const t = tensor(randn(shape.reduce((a, b) => a * b, 1), seed, scale), shape);
  t.requiresGrad = true;
  return t;
};

/** Output and input gradients of fn at `inputs`, with d loss / d out = R. */
function run(precision: 'fp32' | 'bf16', inputs: Tensor[], fn: (...x: Tensor[]) => Tensor, seed: number): Float32Array[] {
  const prev = T.setMatmulPrecision(precision);
  try {
    for (const x of inputs) x.grad = null;
    const out = fn(...inputs);
    out.backward(randn(out.size, seed));
    return [Float32Array.from(out.f32), ...inputs.map((x) => Float32Array.from(x.grad!.f32))];
  } finally {
    T.setMatmulPrecision(prev);
  }
}

/** ||a - b|| / ||b||. */
function relErr(a: Float32Array, b: Float32Array): number {
  let d = 0, n = 0;
  for (let i = 0; i < a.length; i++) { d += (a[i] - b[i]) ** 2; n += b[i] ** 2; }
  return Math.sqrt(d / n);
}

/**
 * Every result of the bf16 run differs from fp32 (the GEMMs really ran in bf16), by a relative norm
 * below 2^-6: one or two roundings of relative size <= 2^-8 per product, summed with random signs.
 * `same` lists results that no bf16 GEMM touches (must be equal bit for bit).
 */
function compare(names: string[], f: Float32Array[], b: Float32Array[], same: string[] = []): void {
  names.forEach((name, i) => {
    if (same.includes(name)) return assert.deepEqual(b[i], f[i], `${name} must stay fp32`);
    const e = relErr(b[i], f[i]);
    assert.ok(e > 0, `${name}: bf16 gave exactly the fp32 result: its GEMM did not run in bf16`);
    assert.ok(e < 2 ** -6, `${name}: relative error ${e} of bf16 against fp32`);
  });
}

test('linear: forward, input and weight gradients in bf16; bias gradient stays an fp32 sum', { skip: !HAS_BF16 }, () => {
  const inputs = [leaf([3, 25, 48], 1), leaf([40, 48], 2, 0.2), leaf([40], 3)];
  const fn = (x: Tensor, w: Tensor, b: Tensor) => T.linear(x, w, b);
  const f = run('fp32', inputs, fn, 9), b = run('bf16', inputs, fn, 9);
  compare(['y', 'gx', 'gw', 'gb'], f, b, ['gb']);
  assert.deepEqual(run('fp32', inputs, fn, 9), f, 'fp32 again after bf16');
});

test('expertMix: both expert layers forward and backward in bf16', { skip: !HAS_BF16 }, () => {
  const Tn = 40, d = 24, E = 3, h = 36, k = 2;
  const idx = Int32Array.from({ length: Tn * k }, (_, i) => (i * 7 + (i >> 1)) % E);
  const route = T.planRoute(idx, Tn, k, E, Infinity);
  const gates = tensor(Float32Array.from({ length: Tn * k }, (_, i) => 0.3 + (i % 5) * 0.1), [Tn, k]);
  gates.requiresGrad = true;
  const inputs = [leaf([Tn, d], 1), gates, leaf([E, d, h], 2, 0.3), leaf([E, h], 3, 0.1), leaf([E, h, d], 4, 0.3), leaf([E, d], 5, 0.1)];
  const fn = (x: Tensor, g: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) => T.expertMix(x, g, w1, b1, w2, b2, route);
  const f = run('fp32', inputs, fn, 8), b = run('bf16', inputs, fn, 8);
  // gb2 = column sums of the output gradient, which no bf16 GEMM touches
  compare(['y', 'gx', 'ggates', 'gw1', 'gb1', 'gw2', 'gb2'], f, b, ['gb2']);
});

test('mlpGelu (GELU fused into the GEMMs): all five GEMMs in bf16, bias gradient of fc2 stays fp32', { skip: !HAS_BF16 }, () => {
  const inputs = [leaf([2, 19, 24], 1), leaf([56, 24], 2, 0.3), leaf([56], 3, 0.1), leaf([24, 56], 4, 0.3), leaf([24], 5, 0.1)];
  const fn = (x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) => T.mlpGelu(x, w1, b1, w2, b2);
  const f = run('fp32', inputs, fn, 7), b = run('bf16', inputs, fn, 7);
  compare(['y', 'gx', 'gw1', 'gb1', 'gw2', 'gb2'], f, b, ['gb2']);
});

test('gemmUnaryBf16: native equals the reference (round operands, fp32 GEMM, fp32 epilogue) within the bf16 GEMM bound', { skip: !HAS_BF16 }, () => {
  const nat = nativeKernels();
  const m = 37, n = 45, k = 70;
  const a = randn(m * k, 11), w = randn(n * k, 12, 0.2), bias = randn(n, 13, 0.1), r = randn(m * n, 14);
  for (const backward of [false, true]) {
    const c1 = new Float32Array(m * n), c2 = new Float32Array(m * n);
    const x1 = backward ? randn(m * n, 15) : new Float32Array(m * n), x2 = Float32Array.from(x1);
    const A = backward ? r : a, B = backward ? randn(n * n, 16, 0.2) : w, kk = backward ? n : k;
    nat.gemmUnaryBf16(UnaryOp.gelu_erf, backward, false, !backward, m, n, kk, 1, A, kk, B, kk, 0, c1, n, backward ? null : bias, x1, n);
    ref.gemmUnaryBf16(UnaryOp.gelu_erf, backward, false, !backward, m, n, kk, 1, A, kk, B, kk, 0, c2, n, backward ? null : bias, x2, n);
    assert.ok(relErr(c1, c2) < 1e-5, `backward=${backward}: c differs by ${relErr(c1, c2)}`);
    if (!backward) assert.ok(relErr(x1, x2) < 1e-5, `aux differs by ${relErr(x1, x2)}`);
  }
});

test('centring: on common-mode inputs (x = c + small d) bf16 linear, mlpGelu and expertMix stay near fp32; uncentred they do not', { skip: !HAS_BF16 }, () => {
  // The early-training regime (bf16_center.ts): every row of x is one vector c plus 1% per-row signal.
  // Outputs are compared after removing their mean over rows (the part rounding c would drown).
  const Tn = 96, d = 64, h = 128;
  const c = randn(d, 11), noise = randn(Tn * d, 12, 0.01), xs = new Float32Array(Tn * d);
  for (let t = 0; t < Tn; t++) for (let e = 0; e < d; e++) xs[t * d + e] = c[e] + noise[t * d + e];
  const x = tensor(xs, [Tn, d]);
  x.requiresGrad = true;
  const centred = (y: Float32Array, cols: number): Float32Array => {
    const out = y.slice();
    for (let j = 0; j < cols; j++) {
      let m = 0;
      for (let t = 0; t < Tn; t++) m += y[t * cols + j] / Tn;
      for (let t = 0; t < Tn; t++) out[t * cols + j] -= m;
    }
    return out;
  };
  const E = 3, k = 2;
  const route = T.planRoute(Int32Array.from({ length: Tn * k }, (_, i) => (i * 7 + (i >> 1)) % E), Tn, k, E, Infinity);
  const gates = tensor(Float32Array.from({ length: Tn * k }, (_, i) => 0.3 + (i % 5) * 0.1), [Tn, k]);
  gates.requiresGrad = true;
  // [name, inputs, fn, output columns, index of the first layer's weight gradient among the results,
  //  how much smaller the centred error must be on the output and on that gradient]. Measured gains:
  // linear 73x and 98x; mlpGelu 76x and 1.6x (gw1 = gh^T x keeps gh's own bf16 error); expertMix 2.2x
  // and 1.6x (its output varies with the gates, not only with the 1% signal).
  const cases: Array<[string, Tensor[], (...a: Tensor[]) => Tensor, number, number, number, number]> = [
    ['linear', [x, leaf([h, d], 13, 0.1), leaf([h], 14, 0.1)], (a, w, b) => T.linear(a, w, b), h, 2, 10, 10],
    ['mlpGelu', [x, leaf([h, d], 15, 0.1), leaf([h], 16, 0.1), leaf([d, h], 17, 0.1), leaf([d], 18, 0.1)],
      (a, w1, b1, w2, b2) => T.mlpGelu(a, w1, b1, w2, b2), d, 2, 10, 1.2],
    ['expertMix', [x, gates, leaf([E, d, h], 20, 0.1), leaf([E, h], 21, 0.1), leaf([E, h, d], 22, 0.1), leaf([E, d], 23, 0.1)],
      (a, g, w1, b1, w2, b2) => T.expertMix(a, g, w1, b1, w2, b2, route), d, 3, 1.5, 1.2],
  ];
  for (const [name, inputs, fn, cols, gwAt, outGain, gwGain] of cases) {
    const f = run('fp32', inputs, fn, 19), on = run('bf16', inputs, fn, 19);
    const prev = T.setBf16Centering(false);
    let off: Float32Array[];
    try { off = run('bf16', inputs, fn, 19); } finally { T.setBf16Centering(prev); }
    const errs = (r: Float32Array[]) => [relErr(centred(r[0], cols), centred(f[0], cols)), ...r.slice(1).map((g, i) => relErr(g, f[i + 1]))];
    const eOn = errs(on), eOff = errs(off);
    eOn.forEach((e, i) => assert.ok(e < 2 ** -6, `${name} result ${i}: centred bf16 error ${e} (uncentred ${eOff[i]})`));
    // the output signal and the first weight gradient are where the common part hurt
    assert.ok(eOff[0] > outGain * eOn[0], `${name} output: uncentred ${eOff[0]} vs centred ${eOn[0]}`);
    assert.ok(eOff[gwAt] > gwGain * eOn[gwAt], `${name} weight gradient: uncentred ${eOff[gwAt]} vs centred ${eOn[gwAt]}`);
  }
});

test('the bf16 centre is the mean over all rows (700 rows whose common part shifts after row 256)', { skip: !HAS_BF16 }, () => {
  // Any centre is exact; the centre has to catch the common part of every row, here with an offset
  // that differs between the first and the last rows (as sequences differ).
  const Tn = 700, d = 48, h = 40;
  const c = randn(d, 31), noise = randn(Tn * d, 32, 0.01), xs = new Float32Array(Tn * d);
  for (let t = 0; t < Tn; t++) for (let e = 0; e < d; e++) xs[t * d + e] = c[e] + noise[t * d + e] + (t >= 256 ? 0.003 : 0);
  const prevP = T.setMatmulPrecision('bf16');
  let centre: Float32Array;
  try { centre = centerOf(xs, Tn, d)!; } finally { T.setMatmulPrecision(prevP); }
  assert.equal(centerOf(xs, Tn, d), null, 'fp32 matmuls: no centre');
  for (let e = 0; e < d; e++) {
    let m = 0;
    for (let t = 0; t < Tn; t++) m += xs[t * d + e];
    assert.ok(Math.abs(centre[e] - m / Tn) < 1e-6 * (1 + Math.abs(m / Tn)), `centre[${e}] = ${centre[e]}, mean ${m / Tn}`);
  }
  const prevOff = T.setBf16Centering(false), prevP2 = T.setMatmulPrecision('bf16');
  try { assert.equal(centerOf(xs, Tn, d), null, 'off: no centre'); } finally { T.setBf16Centering(prevOff); T.setMatmulPrecision(prevP2); }
  const x = tensor(xs, [Tn, d]);
  x.requiresGrad = true;
  const inputs = [x, leaf([h, d], 33, 0.1), leaf([h], 34, 0.1)];
  const fn = (a: Tensor, w: Tensor, b: Tensor) => T.linear(a, w, b);
  const f = run('fp32', inputs, fn, 35), on = run('bf16', inputs, fn, 35);
  const prev = T.setBf16Centering(false);
  let off: Float32Array[];
  try { off = run('bf16', inputs, fn, 35); } finally { T.setBf16Centering(prev); }
  // weight gradient: the common part dominates it, so relative errors show the difference directly
  assert.ok(relErr(on[2], f[2]) < relErr(off[2], f[2]) / 10, `gw: centred ${relErr(on[2], f[2])}, uncentred ${relErr(off[2], f[2])}`);
  assert.ok(relErr(on[0], f[0]) < relErr(off[0], f[0]) / 10, `y: centred ${relErr(on[0], f[0])}, uncentred ${relErr(off[0], f[0])}`);
});
