// randn: native == reference bit for bit (up to float rounding of the same double formula),
// independent of thread count, normal in distribution, and validated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ref, nativeKernels } from '../src/backend/index.js';
import { assertClose } from './util.js';

const nat = nativeKernels();

test('randn: native equals the reference and does not depend on the thread count', () => {
  for (const n of [1, 7, 33, 257, 100_003]) {
    const a = new Float32Array(n), b = new Float32Array(n);
    ref.randn(a, 12345, 0.5, 2);
    nat.randn(b, 12345, 0.5, 2);
    assertClose(b, a, 1e-6, 1e-6, `randn n=${n}`);
  }
  const t = nat.getThreads();
  const one = new Float32Array(300_000), two = new Float32Array(300_000);
  nat.setThreads(1);
  nat.randn(one, 7, 0, 1);
  nat.setThreads(Math.max(2, t));
  nat.randn(two, 7, 0, 1);
  nat.setThreads(t);
  assert.deepEqual(one, two);
});

test('randn: mean, std and tails of a standard normal; seeds give different streams', () => {
  const x = new Float32Array(1_000_000);
  nat.randn(x, 99, 0, 1);
  let s = 0, s2 = 0, tail = 0;
  for (const v of x) { s += v; s2 += v * v; if (Math.abs(v) > 3) tail++; }
  const mean = s / x.length, std = Math.sqrt(s2 / x.length - mean * mean);
  assert.ok(Math.abs(mean) < 0.005, `mean ${mean}`);
  assert.ok(Math.abs(std - 1) < 0.005, `std ${std}`);
  assert.ok(Math.abs(tail / x.length - 0.0027) < 0.0005, `P(|z|>3) ${tail / x.length}`);
  const y = new Float32Array(1000);
  nat.randn(y, 100, 0, 1);
  assert.notDeepEqual(x.subarray(0, 1000), y);
});

test('randn: bad arguments throw', () => {
  assert.throws(() => nat.randn(new Float64Array(4) as unknown as Float32Array, 1, 0, 1), /Float32Array/);
  assert.throws(() => nat.randn(new Float32Array(4), -1, 0, 1), /uint32/);
  assert.throws(() => nat.randn(new Float32Array(4), 1.5, 0, 1), /uint32/);
  assert.throws(() => nat.randn(new Float32Array(4), 1, 'a' as unknown as number, 1), /number/);
});
