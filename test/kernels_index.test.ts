// Native indexing kernels against the reference: row gather/scatter (repeated ids, threaded paths),
// last-axis gather/scatter, top-k ordering rules (ties, NaN, -0), counting-sort stability, the
// embedding bag and its backward (also against finite differences), bad arguments, and the portable
// path in a child process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nativeKernels, ref, type F32, type I32 } from '../src/backend/index.js';
import { assertClose, randint, randn, rng } from './util.js';

const nat = nativeKernels();
const isChild = process.env.MOELAB_TEST_CHILD === '1';

function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, what);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) {
    if (ua[i] !== ub[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i])))
      assert.fail(`${what}: element ${i}: ${a[i]} vs ${b[i]}`);
  }
}

test('indexSelect / indexAdd: native == ref, repeated ids, small and wide rows', () => {
  for (const [n, d, rows] of [[1, 1, 1], [7, 3, 5], [300, 1, 4], [5000, 17, 40], [2000, 96, 64], [64, 257, 3], [3, 0, 0]]) {
    const table = randn(rows * d, n + d);
    const ids = randint(n, rows, 3 + n);
    const o1 = new Float32Array(n * d), o2 = new Float32Array(n * d).fill(NaN);
    ref.indexSelect(n, d, table, ids, o1);
    nat.indexSelect(n, d, table, ids, o2);
    sameBits(o2, o1, `indexSelect n=${n} d=${d}`);
    const src = randn(n * d, 5 + d);
    const d1 = randn(rows * d, 9), d2 = d1.slice();
    ref.indexAdd(n, d, ids, src, d1);
    nat.indexAdd(n, d, ids, src, d2);
    sameBits(d2, d1, `indexAdd n=${n} d=${d}`);  // same summation order per element
  }
  // all ids the same: every row lands on one destination row
  const n = 1000, d = 70;
  const src = randn(n * d, 1), ids = new Int32Array(n).fill(2);
  const a = new Float32Array(3 * d), b = new Float32Array(3 * d);
  ref.indexAdd(n, d, ids, src, a);
  nat.indexAdd(n, d, ids, src, b);
  sameBits(b, a, 'indexAdd single target');
});

test('gather / scatterAdd: native == ref', () => {
  for (const [rows, n, k] of [[1, 1, 1], [5, 8, 2], [1000, 64, 16], [3, 7, 0], [33, 5, 9]]) {
    const x = randn(rows * n, rows + n);
    const idx = randint(rows * k, n, 4);
    const o1 = new Float32Array(rows * k), o2 = new Float32Array(rows * k).fill(NaN);
    ref.gather(rows, n, k, x, idx, o1);
    nat.gather(rows, n, k, x, idx, o2);
    sameBits(o2, o1, `gather ${rows}x${n} k=${k}`);
    const src = randn(rows * k, 8);
    const d1 = randn(rows * n, 2), d2 = d1.slice();
    ref.scatterAdd(rows, n, k, idx, src, d1);
    nat.scatterAdd(rows, n, k, idx, src, d2);
    sameBits(d2, d1, `scatterAdd ${rows}x${n} k=${k}`);
  }
});

function checkTopk(rows: number, n: number, k: number, x: Float32Array, what: string): void {
  const v1 = new Float32Array(rows * k), i1 = new Int32Array(rows * k);
  const v2 = new Float32Array(rows * k).fill(-1), i2 = new Int32Array(rows * k).fill(-1);
  ref.topk(rows, n, k, x, v1, i1);
  nat.topk(rows, n, k, x, v2, i2);
  assert.deepEqual(Array.from(i2), Array.from(i1), `topk idx ${what}`);
  sameBits(v2, v1, `topk vals ${what}`);
}

test('topk: random rows (MoE and PEER sizes), small and large k', () => {
  for (const [rows, n, k] of [[300, 8, 2], [100, 64, 2], [50, 256, 16], [20, 1024, 16], [7, 100, 100], [9, 200, 50], [4, 5, 0], [1, 1, 1]]) {
    checkTopk(rows, n, k, randn(rows * n, n + k), `${rows}x${n} k=${k}`);
  }
});

test('topk: ties keep the lower index, NaN ranks above everything, -0 equals +0', () => {
  const x = new Float32Array([
    1, NaN, 3, 3, -Infinity, NaN, 2, 3,
    0, -0, 0, -0, -1, -1, -0, 0,
    Infinity, NaN, -NaN, Infinity, 5, 5, 5, 5,
    -3, -2, -1, -Infinity, -Infinity, -2, -3, -1,
  ]);
  for (const k of [1, 2, 3, 4, 8]) checkTopk(4, 8, k, x, `special k=${k}`);
  const rows = 40, n = 300, r = rng(5);
  const y = new Float32Array(rows * n);
  for (let i = 0; i < y.length; i++) y[i] = [0, -0, 1, NaN, -1, Infinity][Math.floor(r() * 6)];
  for (const k of [2, 16, 40, 300]) checkTopk(rows, n, k, y, `many ties k=${k}`);
  // ascending input: every element displaces the current k-th (worst case of the insertion buffer)
  const asc = Float32Array.from({ length: 512 }, (_, i) => i);
  checkTopk(1, 512, 16, asc, 'ascending');
});

test('argsortInt: stable counting sort, counts', () => {
  for (const [n, numKeys] of [[0, 3], [1, 1], [100, 7], [4096, 64], [1000, 1000]]) {
    const keys = randint(n, numKeys, n + 1);
    const o1 = new Int32Array(n), c1 = new Int32Array(numKeys), o2 = new Int32Array(n).fill(-1), c2 = new Int32Array(numKeys).fill(-1);
    ref.argsortInt(n, keys, numKeys, o1, c1);
    nat.argsortInt(n, keys, numKeys, o2, c2);
    assert.deepEqual(Array.from(o2), Array.from(o1), `order n=${n}`);
    assert.deepEqual(Array.from(c2), Array.from(c1), `counts n=${n}`);
    for (let j = 1; j < n; j++) {
      const a = keys[o2[j - 1]], b = keys[o2[j]];
      assert.ok(a < b || (a === b && o2[j - 1] < o2[j]), 'sorted and stable');
    }
  }
});

test('embeddingBag / embeddingBagBackward: native == ref', () => {
  for (const [bags, per, d, rows] of [[1, 1, 1, 1], [5, 3, 7, 4], [300, 16, 64, 50], [64, 8, 130, 1000], [2000, 2, 17, 9], [4, 0, 8, 3]]) {
    const table = randn(rows * d, d), ids = randint(bags * per, rows, per + 2), w = randn(bags * per, 3);
    const o1 = new Float32Array(bags * d), o2 = new Float32Array(bags * d).fill(NaN);
    ref.embeddingBag(bags, per, d, table, ids, w, o1);
    nat.embeddingBag(bags, per, d, table, ids, w, o2);
    assertClose(o2, o1, 1e-5, 1e-5, `embeddingBag ${bags}x${per} d=${d}`);
    const gout = randn(bags * d, 4);
    const gw1 = new Float32Array(bags * per), gw2 = new Float32Array(bags * per).fill(NaN);
    const gt1 = randn(rows * d, 6), gt2 = gt1.slice();
    ref.embeddingBagBackward(bags, per, d, table, ids, w, gout, gw1, gt1);
    nat.embeddingBagBackward(bags, per, d, table, ids, w, gout, gw2, gt2);
    assertClose(gw2, gw1, 1e-4, 1e-5, `gweights ${bags}x${per} d=${d}`);
    assertClose(gt2, gt1, 1e-5, 1e-5, `gtable ${bags}x${per} d=${d}`);
    const gw3 = new Float32Array(bags * per);
    nat.embeddingBagBackward(bags, per, d, table, ids, w, gout, gw3, null);
    assertClose(gw3, gw1, 1e-4, 1e-5, 'gweights without gtable');
  }
});

test('embeddingBagBackward matches finite differences of embeddingBag', () => {
  const [bags, per, d, rows] = [3, 4, 5, 3];  // rows < bags*per: repeated ids
  const table = randn(rows * d, 1), ids = randint(bags * per, rows, 2), w = randn(bags * per, 3), gout = randn(bags * d, 4);
  const T = Float64Array.from(table), W = Float64Array.from(w), G = Float64Array.from(gout);
  const out = new Float64Array(bags * d);
  const loss = (): number => {
    ref.embeddingBag(bags, per, d, T as unknown as F32, ids, W as unknown as F32, out as unknown as F32);
    let s = 0;
    for (let i = 0; i < out.length; i++) s += out[i] * G[i];
    return s;
  };
  const fd = (arr: Float64Array, i: number): number => {
    const x0 = arr[i], eps = 1e-6;
    arr[i] = x0 + eps; const a = loss();
    arr[i] = x0 - eps; const b = loss();
    arr[i] = x0;
    return (a - b) / (2 * eps);
  };
  const gw = new Float32Array(bags * per), gt = new Float32Array(rows * d);
  nat.embeddingBagBackward(bags, per, d, table, ids, w, gout, gw, gt);
  assertClose(gw, Array.from(W, (_, i) => fd(W, i)), 1e-4, 1e-5, 'gweights vs FD');
  assertClose(gt, Array.from(T, (_, i) => fd(T, i)), 1e-4, 1e-5, 'gtable vs FD');
});

test('indexing: bad arguments throw and the process survives', { skip: isChild }, () => {
  const f = (n: number) => new Float32Array(n), i32 = (...v: number[]) => new Int32Array(v);
  const tbl = randn(12, 1);  // [4, 3]
  const bad: Array<[string, () => void]> = [
    ['indexSelect id >= rows', () => nat.indexSelect(2, 3, tbl, i32(0, 4), f(6))],
    ['indexSelect negative id', () => nat.indexSelect(2, 3, tbl, i32(-1, 0), f(6))],
    ['indexSelect short ids', () => nat.indexSelect(3, 3, tbl, i32(0, 1), f(9))],
    ['indexSelect short out', () => nat.indexSelect(2, 3, tbl, i32(0, 1), f(5))],
    ['indexSelect ids Float32', () => nat.indexSelect(2, 3, tbl, new Float32Array(2) as unknown as I32, f(6))],
    ['indexSelect table Float64', () => nat.indexSelect(2, 3, new Float64Array(12) as unknown as F32, i32(0, 1), f(6))],
    ['indexSelect out aliases table', () => nat.indexSelect(2, 3, tbl, i32(0, 1), tbl.subarray(3, 9))],
    ['indexSelect negative n', () => nat.indexSelect(-1, 3, tbl, i32(0), f(6))],
    ['indexSelect fractional d', () => nat.indexSelect(1, 2.5, tbl, i32(0), f(6))],
    ['indexAdd id out of range', () => nat.indexAdd(2, 3, i32(0, 4), f(6), f(12))],
    ['indexAdd short src', () => nat.indexAdd(2, 3, i32(0, 1), f(5), f(12))],
    ['indexAdd dst aliases src', () => { const b = f(12); nat.indexAdd(2, 3, i32(0, 1), b.subarray(0, 6), b); }],
    ['gather idx >= n', () => nat.gather(2, 3, 1, f(6), i32(0, 3), f(2))],
    ['gather short x', () => nat.gather(2, 3, 1, f(5), i32(0, 1), f(2))],
    ['gather out aliases x', () => { const x = f(6); nat.gather(2, 3, 1, x, i32(0, 1), x.subarray(4)); }],
    ['scatterAdd idx negative', () => nat.scatterAdd(2, 3, 1, i32(0, -2), f(2), f(6))],
    ['scatterAdd short dst', () => nat.scatterAdd(2, 3, 1, i32(0, 1), f(2), f(5))],
    ['topk k > n', () => nat.topk(1, 3, 4, f(3), f(4), new Int32Array(4))],
    ['topk short vals', () => nat.topk(2, 3, 2, f(6), f(3), new Int32Array(4))],
    ['topk idx Float32', () => nat.topk(1, 3, 2, f(3), f(2), new Float32Array(2) as unknown as I32)],
    ['topk vals aliases x', () => { const x = f(6); nat.topk(2, 3, 1, x, x.subarray(4), new Int32Array(2)); }],
    ['argsortInt key >= numKeys', () => nat.argsortInt(3, i32(0, 1, 2), 2, new Int32Array(3), new Int32Array(2))],
    ['argsortInt negative key', () => nat.argsortInt(2, i32(0, -1), 2, new Int32Array(2), new Int32Array(2))],
    ['argsortInt short counts', () => nat.argsortInt(2, i32(0, 1), 3, new Int32Array(2), new Int32Array(2))],
    ['argsortInt order aliases keys', () => { const k = i32(0, 1); nat.argsortInt(2, k, 2, k, new Int32Array(2)); }],
    ['embeddingBag id out of range', () => nat.embeddingBag(1, 2, 3, tbl, i32(0, 9), f(2), f(3))],
    ['embeddingBag short weights', () => nat.embeddingBag(1, 2, 3, tbl, i32(0, 1), f(1), f(3))],
    ['embeddingBag out aliases table', () => nat.embeddingBag(1, 2, 3, tbl, i32(0, 1), f(2), tbl.subarray(0, 3))],
    ['embeddingBagBackward short gout', () => nat.embeddingBagBackward(1, 2, 3, tbl, i32(0, 1), f(2), f(2), f(2), f(12))],
    ['embeddingBagBackward short gtable', () => nat.embeddingBagBackward(1, 2, 3, tbl, i32(0, 3), f(2), f(3), f(2), f(9))],
    ['embeddingBagBackward gtable aliases table', () => nat.embeddingBagBackward(1, 2, 3, tbl, i32(0, 1), f(2), f(3), f(2), tbl)],
    ['embeddingBagBackward gweights aliases gout', () => { const g = f(3); nat.embeddingBagBackward(1, 2, 3, tbl, i32(0, 1), f(2), g, g.subarray(1), null); }],
    ['embeddingBagBackward id out of range', () => nat.embeddingBagBackward(1, 2, 3, tbl, i32(0, 4), f(2), f(3), f(2), null)],
    ['missing args', () => (nat.topk as unknown as (...a: unknown[]) => void)(1, 3, 1)],
  ];
  for (const [name, fn] of bad) assert.throws(fn, (e: unknown) => e instanceof Error, name);
  const out = f(6);
  nat.indexSelect(2, 3, tbl, i32(3, 0), out);
  assert.deepEqual(Array.from(out), [...tbl.subarray(9, 12), ...tbl.subarray(0, 3)]);
});

test('portable path (MOELAB_ISA=generic) passes the native checks', { skip: isChild }, () => {
  const file = fileURLToPath(import.meta.url);
  // A plain run of this file with TAP output (NODE_TEST_CONTEXT would switch the child to the
  // parent runner's binary protocol).
  const env: NodeJS.ProcessEnv = { ...process.env, MOELAB_ISA: 'generic', MOELAB_TEST_CHILD: '1' };
  delete env.NODE_TEST_CONTEXT;
  const r = spawnSync(process.execPath, ['--test-reporter=tap', file], {
    env,
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(r.status, 0, `child failed:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /# pass [1-9]/, 'child ran no tests');
  assert.match(r.stdout, /# fail 0/);
});
