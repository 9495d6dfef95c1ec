// GELU fused into the GEMMs: gemmUnary (native against the reference on odd shapes, every
// transpose, bias/beta, the direct, packed and split-k paths, every ISA tier in a child process, bad
// arguments) and mlpGelu (equal to the unfused linear/gelu/linear composition, forward and
// gradients, on both backends; finite-difference gradient check).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nativeKernels, ref, setBackend, UnaryOp, type Kernels } from '../src/backend/index.js';
import * as T from '../src/tensor/index.js';
import { Tensor, tensor } from '../src/tensor/index.js';
import { gradcheck } from './gradcheck.js';
import { assertClose, randn } from './util.js';

const CHILD = process.env.MOELAB_FUSED_TEST_CHILD === '1';
const nat: Kernels = nativeKernels();

interface Case { m: number; n: number; k: number; tA: boolean; tB: boolean; bias: boolean; beta: number; op: number }

function runCase(kern: Kernels, c: Case, backward: boolean, seed: number): [Float32Array, Float32Array] {
  const { m, n, k, tA, tB } = c;
  const lda = (tA ? m : k) + 1, ldb = (tB ? k : n) + 2, ldc = n + 3, ldx = n + 1;
  const a = randn((tA ? k : m) * lda, seed), b = randn((tB ? n : k) * ldb, seed + 1, 1 / Math.sqrt(k + 1));
  const bias = c.bias ? randn(n, seed + 2) : null;
  const C = randn(m * ldc, seed + 3);
  if (c.beta === 0) C.fill(NaN);
  const aux = backward ? randn(m * ldx, seed + 4, 2) : new Float32Array(m * ldx).fill(-7);
  kern.gemmUnary(c.op, backward, tA, tB, m, n, k, 0.75, a, lda, b, ldb, c.beta, C, ldc, bias, aux, ldx);
  return [C, aux];
}

test('gemmUnary matches the reference (forward and backward epilogues, odd shapes, all GEMM paths)', () => {
  let seed = 100;
  const shapes: Array<[number, number, number]> = [
    [1, 1, 1], [3, 2, 5], [13, 37, 29], [45, 67, 33], [100, 129, 70], [20, 40, 1600], [7, 300, 0], [250, 96, 64],
    [200, 600, 400], // several row blocks, column strips of the epilogue (the last one partial) and depth blocks
  ];
  for (const [m, n, k] of shapes)
    for (const tA of [false, true])
      for (const tB of [false, true])
        for (const op of [UnaryOp.gelu_erf, UnaryOp.relu, UnaryOp.silu])
          for (const backward of [false, true]) {
            const c: Case = { m, n, k, tA, tB, bias: (m + n + (tA ? 1 : 0)) % 2 === 0, beta: tB ? 0.5 : 0, op };
            const label = `${JSON.stringify(c)} backward=${backward}`;
            const [cr, xr] = runCase(ref, c, backward, seed);
            const [cn, xn] = runCase(nat, c, backward, seed);
            assertClose(cn, cr, 1e-4, 3e-5 * (k + 1), `C ${label}`);
            assertClose(xn, xr, 1e-4, 3e-5 * (k + 1), `aux ${label}`);
            seed += 10;
          }
});

test('gemmUnary with gelu forward equals gemm then unary; backward equals gemm then unaryBackward', () => {
  const m = 61, n = 77, k = 45;
  const a = randn(m * k, 1), b = randn(n * k, 2, 0.2), bias = randn(n, 3), pre = randn(m * n, 4, 2);
  const c1 = new Float32Array(m * n), act1 = new Float32Array(m * n);
  nat.gemmUnary(UnaryOp.gelu_erf, false, false, true, m, n, k, 1, a, k, b, k, 0, c1, n, bias, act1, n);
  const c2 = new Float32Array(m * n), act2 = new Float32Array(m * n);
  nat.gemm(false, true, m, n, k, 1, a, k, b, k, 0, c2, n, bias);
  nat.unary(UnaryOp.gelu_erf, c2, act2);
  assert.deepEqual(c1, c2, 'the pre-activation is the plain GEMM');
  assertClose(act1, act2, 1e-6, 1e-7, 'gelu of it');
  const g1 = new Float32Array(m * n), g2 = new Float32Array(m * n), d = new Float32Array(m * n);
  nat.gemmUnary(UnaryOp.gelu_erf, true, false, true, m, n, k, 1, a, k, b, k, 0, g1, n, null, pre, n);
  nat.gemm(false, true, m, n, k, 1, a, k, b, k, 0, d, n, null);
  nat.unaryBackward(UnaryOp.gelu_erf, pre, pre, d, g2);
  assertClose(g1, g2, 1e-6, 1e-7, 'gelu backward');
});

if (!CHILD) {
  test('gemmUnary refuses bad arguments with JS errors', () => {
    const a = new Float32Array(12), b = new Float32Array(12), c = new Float32Array(9), x = new Float32Array(9);
    const call = (over: Record<number, unknown>): void => {
      const args: unknown[] = [UnaryOp.gelu_erf, false, false, false, 3, 3, 4, 1, a, 4, b, 3, 0, c, 3, null, x, 3];
      for (const [i, v] of Object.entries(over)) args[Number(i)] = v;
      (nat.gemmUnary as (...z: unknown[]) => void)(...args);
    };
    call({});
    assert.throws(() => call({ 0: 99 }), /unknown unary op/);
    assert.throws(() => call({ 0: UnaryOp.tanh, 1: true }), /from its output/);
    assert.throws(() => ref.gemmUnary(UnaryOp.tanh, true, false, false, 3, 3, 4, 1, a, 4, b, 3, 0, c, 3, null, x, 3), /from its output/);
    assert.throws(() => call({ 16: new Float32Array(8) }), /aux/);
    assert.throws(() => call({ 17: 2 }), /aux/);
    assert.throws(() => call({ 16: c }), /overlap/);
    assert.throws(() => call({ 16: a.subarray(0, 9) }), /overlap/);
    call({ 1: true, 16: a.subarray(0, 9) }); // backward only reads aux: may share memory with A
  });

  test('every ISA tier this CPU supports passes the same checks (child processes)', () => {
    const info = nat.cpuInfo();
    const tiers = ['generic', ...(info.isa === 'avx512' ? ['avx2'] : [])];
    for (const isa of tiers) {
      const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
        env: { ...process.env, MOELAB_ISA: isa, MOELAB_FUSED_TEST_CHILD: '1' }, encoding: 'utf8', timeout: 120_000,
      });
      assert.equal(r.status, 0, `tier ${isa} failed:\n${r.stdout}\n${r.stderr}`);
    }
  });
}

const r = (shape: number[], seed: number, scale = 1): Tensor => tensor(randn(shape.reduce((x, y) => x * y, 1), seed, scale), shape);

for (const [bname, kern] of [['ref', ref], ['native', nat]] as const) {
  describe(`mlpGelu on ${bname}`, () => {
    test.beforeEach(() => setBackend(kern));
    test.after(() => setBackend(nat));

    test('equals linear -> gelu -> linear, forward and every gradient', () => {
      for (const [shape, d, hidden, out, bias] of [
        [[5, 7], 7, 13, 6, true], [[2, 9, 11], 11, 37, 11, true], [[33, 19], 19, 70, 5, false], [[130, 64], 64, 256, 64, true],
      ] as Array<[number[], number, number, number, boolean]>) {
        const mk = () => [r(shape, 1), r([hidden, d], 2, 0.3), bias ? r([hidden], 3) : null, r([out, hidden], 4, 0.2), bias ? r([out], 5) : null] as const;
        const p = mk(), q = mk();
        for (const t of [...p, ...q]) if (t) t.requiresGrad = true;
        const yf = T.mlpGelu(p[0], p[1], p[2], p[3], p[4]);
        const yu = T.linear(T.gelu(T.linear(q[0], q[1], q[2])), q[3], q[4]);
        assertClose(yf.f32, yu.f32, 1e-5, 1e-5, `forward ${shape}`);
        const R = randn(yf.size, 9);
        yf.backward(R.slice());
        yu.backward(R.slice());
        p.forEach((t, i) => { if (t) assertClose(t.grad!.f32, q[i]!.grad!.f32, 1e-4, 1e-5, `grad ${i} ${shape}`); });
      }
    });

    test('finite-difference gradient check', () => {
      gradcheck('mlpGelu', (x, w1, b1, w2, b2) => T.mlpGelu(x, w1, b1, w2, b2),
        [r([6, 9], 11), r([21, 9], 12, 0.4), r([21], 13), r([5, 21], 14, 0.3), r([5], 15)]);
      gradcheck('mlpGelu no bias, 3-d x', (x, w1, w2) => T.mlpGelu(x, w1, null, w2, null),
        [r([2, 3, 7], 16), r([10, 7], 17, 0.4), r([7, 10], 18, 0.3)]);
    });

    test('shape errors name the operands', () => {
      assert.throws(() => T.mlpGelu(r([3, 5], 1), r([4, 6], 2), null, r([5, 4], 3), null), /mlpGelu.*last axis/);
      assert.throws(() => T.mlpGelu(r([3, 5], 1), r([4, 5], 2), null, r([5, 3], 3), null), /w2's columns/);
      assert.throws(() => T.mlpGelu(r([3, 5], 1), r([4, 5], 2), r([3], 4), r([5, 4], 3), null), /b1/);
    });
  });
}
