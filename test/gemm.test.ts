// GEMM family: native kernels against the TypeScript reference on odd shapes, every transpose,
// padded strides, alpha/beta/bias variants, NaN in C with beta 0, batched and grouped forms, every
// ISA tier this CPU can run (lower tiers in a child process with MOELAB_ISA), and bad arguments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nativeKernels, ref, type Kernels } from '../src/backend/index.js';
import { assertClose, randn } from './util.js';

const CHILD = process.env.MOELAB_GEMM_TEST_CHILD === '1';
const nat: Kernels = nativeKernels();
let seed = 1000;

function tol(k: number): [number, number] {
  return [1e-4, 2e-5 * (k + 1)];
}

interface GemmCase {
  tA: boolean; tB: boolean; m: number; n: number; k: number;
  alpha: number; beta: number; pad: number; bias: boolean; nanC?: boolean;
}

// Native results are checked against a reference computed once, at 1 and then 2 threads. Cases
// queue up and run in one batch per thread count, so the pool is resized only twice per test.
interface Check { c0: Float32Array; expect: Float32Array; k: number; label: string; run: (c: Float32Array) => void }
const queued: Check[] = [];

/** Reference now; native later, in runChecks(). */
function compare(c0: Float32Array, k: number, label: string, runRef: (c: Float32Array) => void,
  runNat: (c: Float32Array) => void): void {
  const expect = c0.slice();
  runRef(expect);
  queued.push({ c0, expect, k, label, run: runNat });
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function setThreads(t: number): void {
  if (nat.getThreads() === t) return;
  nat.setThreads(t);
  // Let new pool workers start before the first parallel job (threadpool.cc: a worker that starts
  // after a job is posted can miss it).
  sleepMs(50);
}

function runChecks(threadCounts = [1, 2]): void {
  const old = nat.getThreads();
  try {
    for (const t of threadCounts) {
      if (t) setThreads(t);
      for (const q of queued) {
        const got = q.c0.slice();
        q.run(got);
        assertClose(got, q.expect, ...tol(q.k), `${q.label} threads=${t}`);
      }
    }
  } finally {
    queued.length = 0;
    setThreads(old);
  }
}

function checkGemm(c: GemmCase): void {
  const { tA, tB, m, n, k, alpha, beta, pad } = c;
  const lda = (tA ? m : k) + pad, ldb = (tB ? k : n) + pad, ldc = n + pad;
  const a = randn(Math.max(1, (tA ? k : m) * lda), seed++);
  const b = randn(Math.max(1, (tB ? n : k) * ldb), seed++);
  const c0 = randn(Math.max(1, m * ldc), seed++);
  if (c.nanC) c0.fill(NaN);
  const bias = c.bias ? randn(n, seed++) : null;
  compare(c0, k, `gemm ${JSON.stringify(c)}`,
    (cc) => ref.gemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc, bias),
    (cc) => nat.gemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc, bias));
}

const TRANS: Array<[boolean, boolean]> = [[false, false], [false, true], [true, false], [true, true]];

test('gemm matches reference on odd shapes, all transposes, padded strides', () => {
  const dims = [1, 7, 33, 130];
  const ab: Array<[number, number]> = [[1, 0], [0.5, 1], [-1.5, 0.25]];
  let i = 0;
  for (const [tA, tB] of TRANS)
    for (const m of dims)
      for (const n of dims)
        for (const k of dims) {
          const [alpha, beta] = ab[i % ab.length];
          checkGemm({ tA, tB, m, n, k, alpha, beta, pad: i % 3 === 0 ? 0 : 3, bias: i % 2 === 0 });
          i++;
        }
  runChecks();
});

test('gemm larger shapes on 1 and 2 threads (packed, threaded, split-k and streamed-B paths)', () => {
  const shapes: Array<[number, number, number]> = [[200, 190, 210], [257, 40, 300], [300, 40, 700], [13, 530, 1600], [24, 520, 300], [16, 16, 5000], [5, 3, 4000], [2, 4, 3000], [97, 33, 1500]];
  for (const [m, n, k] of shapes)
    for (const [tA, tB] of TRANS) checkGemm({ tA, tB, m, n, k, alpha: 0.75, beta: 0.5, pad: 5, bias: true });
  runChecks();
});

test('gemm beta=0 ignores NaN in C; k=0 gives beta*C + bias; empty m/n', () => {
  for (const [m, n, k] of [[7, 9, 13], [64, 80, 96], [33, 257, 1]] as Array<[number, number, number]>)
    for (const [tA, tB] of TRANS) checkGemm({ tA, tB, m, n, k, alpha: 1.25, beta: 0, pad: 2, bias: true, nanC: true });
  checkGemm({ tA: false, tB: false, m: 5, n: 6, k: 0, alpha: 2, beta: 0.5, pad: 1, bias: true });
  checkGemm({ tA: false, tB: true, m: 50, n: 60, k: 0, alpha: 2, beta: 0, pad: 1, bias: true, nanC: true });
  checkGemm({ tA: true, tB: false, m: 0, n: 6, k: 5, alpha: 1, beta: 0, pad: 0, bias: false });
  checkGemm({ tA: true, tB: false, m: 6, n: 0, k: 5, alpha: 1, beta: 0, pad: 0, bias: false });
  runChecks();
});

test('gemmBatched matches reference (separate, shared-B and interleaved-C layouts)', () => {
  for (const [batch, m, n, k] of [[3, 7, 33, 20], [5, 64, 48, 130], [2, 150, 70, 90], [1, 33, 7, 1], [0, 3, 3, 3]])
    for (const [tA, tB] of TRANS) {
      const lda = (tA ? m : k) + 1, ldb = (tB ? k : n) + 2;
      const extA = (tA ? k : m) * lda, extB = (tB ? n : k) * ldb;
      const shareB = batch % 2 === 1;
      const sA = extA + 3, sB = shareB ? 0 : extB + 1;
      const interleave = m % 2 === 0;  // C_i at columns [i*n, (i+1)*n) of a [m, batch*n] matrix
      const ldc = interleave ? batch * n + 1 : n + 1, sC = interleave ? n : m * ldc + 2;
      const a = randn(Math.max(1, batch * sA), seed++), b = randn(Math.max(1, batch * extB + batch), seed++);
      const c0 = randn(Math.max(1, batch * sC + m * ldc), seed++);
      compare(c0, k, `gemmBatched ${[batch, m, n, k, tA, tB]}`,
        (c) => ref.gemmBatched(batch, tA, tB, m, n, k, 0.5, a, sA, lda, b, sB, ldb, -1, c, sC, ldc),
        (c) => nat.gemmBatched(batch, tA, tB, m, n, k, 0.5, a, sA, lda, b, sB, ldb, -1, c, sC, ldc));
    }
  runChecks();
});

test('gemmGroupedRows matches reference, with empty groups, bias and both B layouts', () => {
  const cases: Array<{ offsets: number[]; n: number; k: number }> = [
    { offsets: [0, 5, 5, 40, 301], n: 33, k: 70 },
    { offsets: [3, 3, 3], n: 16, k: 16 },
    { offsets: [2, 9, 200, 201, 230, 230, 500], n: 130, k: 257 },
    { offsets: [0, 1], n: 7, k: 1 },
    { offsets: [0], n: 8, k: 8 },
  ];
  for (const { offsets, n, k } of cases)
    for (const tB of [false, true])
      for (const [alpha, beta, useBias] of [[1, 0, true], [0.5, 0.25, false]] as Array<[number, number, boolean]>) {
        const G = offsets.length - 1, rows = offsets[G];
        const lda = k + 2, ldb = (tB ? k : n) + 1, ldc = n + 3;
        const extB = (tB ? n : k) * ldb, sB = extB + 5;
        const a = randn(Math.max(1, rows * lda), seed++), b = randn(Math.max(1, G * sB), seed++);
        const c0 = randn(Math.max(1, rows * ldc), seed++);
        if (beta === 0) c0.fill(NaN);
        const bias = useBias ? randn(Math.max(1, G * n), seed++) : null;
        const off = Int32Array.from(offsets);
        // rows outside [offsets[0], offsets[G]) are untouched: both keep c0 there (NaN included)
        compare(c0, k, `gemmGroupedRows ${JSON.stringify({ offsets, n, k, tB, alpha, beta })}`,
          (c) => ref.gemmGroupedRows(G, off, tB, n, k, alpha, a, lda, b, sB, ldb, beta, c, ldc, bias),
          (c) => nat.gemmGroupedRows(G, off, tB, n, k, alpha, a, lda, b, sB, ldb, beta, c, ldc, bias));
      }
  runChecks();
});

test('gemmGroupedK matches reference, with empty groups (C_g = beta*C_g)', () => {
  const cases: Array<{ offsets: number[]; m: number; n: number }> = [
    { offsets: [0, 5, 5, 40, 301], m: 33, n: 20 },
    { offsets: [1, 1, 600, 601, 2100], m: 64, n: 96 },
    { offsets: [0, 0], m: 7, n: 7 },
    { offsets: [0, 3000], m: 9, n: 17 },
  ];
  for (const { offsets, m, n } of cases)
    for (const [alpha, beta] of [[1, 0], [-0.5, 1], [2, 0.5]]) {
      const G = offsets.length - 1, rows = offsets[G];
      const lda = m + 1, ldb = n + 2, ldc = n + 1, sC = m * ldc + 3;
      const a = randn(Math.max(1, rows * lda), seed++), b = randn(Math.max(1, rows * ldb), seed++);
      const c0 = randn(G * sC, seed++);
      if (beta === 0) c0.fill(NaN);
      const off = Int32Array.from(offsets);
      const maxK = Math.max(0, ...offsets.slice(1).map((o, g) => o - offsets[g]));
      compare(c0, maxK, `gemmGroupedK ${JSON.stringify({ offsets, m, n, alpha, beta })}`,
        (c) => ref.gemmGroupedK(G, off, m, n, alpha, a, lda, b, ldb, beta, c, sC, ldc),
        (c) => nat.gemmGroupedK(G, off, m, n, alpha, a, lda, b, ldb, beta, c, sC, ldc));
    }
  runChecks();
});

test('gemv: A x and A^T x against the reference, strided A, alpha/beta, NaN in y ignored at beta 0, threaded sizes', () => {
  for (const trans of [false, true])
    for (const [m, n] of [[1, 1], [3, 5], [17, 33], [64, 256], [257, 100], [1024, 300], [5, 5000], [0, 7], [7, 0]])
      for (const [alpha, beta, pad] of [[1, 0, 0], [-0.5, 1, 3], [2, -0.25, 0]]) {
        const lda = n + pad;
        const a = randn(Math.max(0, m * lda), seed++), x = randn(trans ? m : n, seed++);
        const y0 = randn(trans ? n : m, seed++);
        if (beta === 0 && y0.length) y0[0] = NaN;
        compare(y0, trans ? m : n, `gemv trans=${trans} ${m}x${n} alpha=${alpha} beta=${beta} lda=${lda}`,
          (y) => ref.gemv(trans, m, n, alpha, a, lda, x, beta, y),
          (y) => nat.gemv(trans, m, n, alpha, a, lda, x, beta, y));
      }
  runChecks();
});

if (!CHILD) {
  test('every ISA tier this CPU supports passes the same tests (child processes)', () => {
    const info = nat.cpuInfo();
    const tiers = ['generic'];
    if (info.isa === 'avx512') tiers.push('avx2');
    for (const isa of tiers) {
      const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
        env: { ...process.env, MOELAB_ISA: isa, MOELAB_GEMM_TEST_CHILD: '1', MOELAB_EXPECT_ISA: isa },
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(r.status, 0, `tier ${isa} failed:\n${r.stdout}\n${r.stderr}`);
    }
  });

  test('bad arguments throw JS errors and the process survives', () => {
    const a = new Float32Array(12), b = new Float32Array(12), c = new Float32Array(9);
    const good = (): unknown[] => [false, false, 3, 3, 4, 1, a, 4, b, 3, 0, c, 3, null];
    const call = (args: unknown[]): void => { (nat.gemm as (...x: unknown[]) => void)(...args); };
    call(good());  // baseline is valid
    const bad: Array<[number, unknown]> = [
      [6, new Float64Array(12)], [6, [1, 2, 3]], [8, new Int32Array(12)], [11, new Float32Array(8)],
      [6, new Float32Array(11)], [2, -1], [3, 2.5], [4, NaN], [2, Infinity], [7, 3], [9, 2], [12, 2],
      [0, 1], [1, 'yes'], [5, 'x'], [13, new Float32Array(2)], [13, new Float64Array(3)],
    ];
    for (const [i, v] of bad) {
      const args = good();
      args[i] = v;
      assert.throws(() => call(args), Error, `gemm arg ${i} = ${String(v)}`);
    }
    assert.throws(() => call(good().slice(0, 10)), Error, 'too few arguments');
    // aliasing: C is A, C overlaps B through a view of the same buffer, bias inside C
    { const args = good(); args[11] = a; args[12] = 3; assert.throws(() => call(args), /overlap/); }
    { const buf = new Float32Array(30); const args = good(); args[8] = buf.subarray(0, 12); args[11] = buf.subarray(10, 19);
      assert.throws(() => call(args), /overlap/); }
    { const args = good(); args[13] = c.subarray(0, 3); assert.throws(() => call(args), /overlap/); }
    // disjoint views of one buffer are fine
    { const buf = new Float32Array(40); const args = good(); args[6] = buf.subarray(0, 12); args[11] = buf.subarray(20, 29); call(args); }

    // batched: overlapping C matrices, short arrays
    const bA = new Float32Array(24), bB = new Float32Array(24), bC = new Float32Array(18);
    nat.gemmBatched(2, false, false, 3, 3, 4, 1, bA, 12, 4, bB, 12, 3, 0, bC, 9, 3);
    assert.throws(() => nat.gemmBatched(2, false, false, 3, 3, 4, 1, bA, 12, 4, bB, 12, 3, 0, bC, 4, 3), /overlap/);
    assert.throws(() => nat.gemmBatched(3, false, false, 3, 3, 4, 1, bA, 12, 4, bB, 12, 3, 0, bC, 9, 3), RangeError);
    assert.throws(() => nat.gemmBatched(2, false, false, 3, 3, 4, 1, bA, 12, 4, bB, 12, 3, 0, bA, 9, 3), /overlap/);

    // grouped rows: bad offsets
    const gA = new Float32Array(10 * 4), gB = new Float32Array(2 * 12), gC = new Float32Array(10 * 3);
    const rowsCall = (off: Int32Array | Float32Array, G = 2): void =>
      (nat.gemmGroupedRows as (...x: unknown[]) => void)(G, off, false, 3, 4, 1, gA, 4, gB, 12, 3, 0, gC, 3, null);
    rowsCall(Int32Array.from([0, 4, 10]));
    for (const off of [[0, 5, 4], [-1, 2, 3], [0, 4, 11], [0, 4]])
      assert.throws(() => rowsCall(Int32Array.from(off)), RangeError, `offsets ${off}`);
    assert.throws(() => rowsCall(Float32Array.from([0, 4, 10])), TypeError);
    assert.throws(() => rowsCall(Int32Array.from([0, 4, 10]), 3), RangeError);
    assert.throws(() => (nat.gemmGroupedRows as (...x: unknown[]) => void)(2, Int32Array.from([0, 4, 10]), false, 3, 4, 1,
      gA, 4, gB, 12, 3, 0, gC, 3, new Float32Array(5)), RangeError, 'short bias');

    // grouped K: bad offsets, overlapping C groups, C aliasing B
    const kA = new Float32Array(10 * 3), kB = new Float32Array(10 * 4), kC = new Float32Array(2 * 12);
    const kCall = (off: Int32Array, sC = 12, cc: Float32Array = kC): void =>
      nat.gemmGroupedK(2, off, 3, 4, 1, kA, 3, kB, 4, 0, cc, sC, 4);
    kCall(Int32Array.from([0, 6, 10]));
    assert.throws(() => kCall(Int32Array.from([0, 6, 11])), RangeError);
    assert.throws(() => kCall(Int32Array.from([6, 0, 10])), RangeError);
    assert.throws(() => kCall(Int32Array.from([0, 6, 10]), 5), /overlap/);
    assert.throws(() => kCall(Int32Array.from([0, 6, 10]), 12, kB.subarray(0, 24)), /overlap/);

    // gemv: short operands, lda < n, y overlapping A or x, wrong types
    const vA = new Float32Array(12), vx = new Float32Array(4), vy = new Float32Array(3);
    const vgood = (): unknown[] => [false, 3, 4, 1, vA, 4, vx, 0, vy];
    const vcall = (args: unknown[]): void => { (nat.gemv as (...x: unknown[]) => void)(...args); };
    vcall(vgood());
    for (const [i, v] of [[4, new Float32Array(11)], [6, new Float32Array(3)], [8, new Float32Array(2)], [5, 3], [1, -1],
      [2, 1.5], [0, 1], [4, new Float64Array(12)], [3, 'x']] as Array<[number, unknown]>) {
      const args = vgood();
      args[i] = v;
      assert.throws(() => vcall(args), Error, `gemv arg ${i} = ${String(v)}`);
    }
    { const args = vgood(); args[0] = true; args[8] = new Float32Array(3); assert.throws(() => vcall(args), RangeError, 'A^T x needs y [n]'); }
    { const args = vgood(); args[8] = vA.subarray(0, 3); assert.throws(() => vcall(args), /overlap/); }
    { const buf = new Float32Array(8); const args = vgood(); args[6] = buf.subarray(0, 4); args[8] = buf.subarray(3, 6);
      assert.throws(() => vcall(args), /overlap/); }
    assert.throws(() => vcall(vgood().slice(0, 8)), Error, 'too few arguments');

    // still alive and correct afterwards
    checkGemm({ tA: false, tB: false, m: 7, n: 7, k: 7, alpha: 1, beta: 0, pad: 0, bias: false });
    runChecks([0]);
  });
} else {
  test('child runs the requested ISA tier', () => {
    assert.equal(nat.cpuInfo().isa, process.env.MOELAB_EXPECT_ISA);
  });
}
