// branchAttention (several branches against one cached prefix, in one call) equals cachedAttention
// run branch by branch after the prefix, on the reference and the native backend; bad input throws.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, noGrad, branchAttention, cachedAttention } from '../src/tensor/index.js';
import { ref, nativeKernels, setBackend, type Kernels } from '../src/backend/index.js';
import { Rng } from '../src/util/random.js';

const rand = (n: number, rng: Rng): Float32Array => Float32Array.from({ length: n }, () => rng.normal());

for (const [bname, kern] of [['ref', ref], ['native', nativeKernels()]] as [string, Kernels][]) {
  describe(`branchAttention (${bname})`, () => {
    test('equals cachedAttention per branch; branches never see each other', () => {
      setBackend(kern);
      const rng = new Rng(5, 0);
      for (const [heads, hd, P, lens] of [[2, 8, 5, [3, 1, 0, 4]], [3, 5, 0, [2, 2]], [4, 16, 40, [7]], [1, 3, 1, [1, 1, 1]]] as [number, number, number, number[]][]) {
        const d = heads * hd, N = lens.reduce((a, b) => a + b, 0), maxLen = P + Math.max(...lens) + 2;
        const prefix = rand(P * 3 * d, rng), qkv = rand(N * 3 * d, rng);
        const kc = new Float32Array(maxLen * d), vc = new Float32Array(maxLen * d);
        noGrad(() => { if (P) cachedAttention(new Tensor(prefix, [P, 3 * d]), heads, kc, vc, 0); });
        const starts = Int32Array.from([0, ...lens.map((_, r) => lens.slice(0, r + 1).reduce((a, b) => a + b, 0))]);
        const kBefore = kc.slice(), vBefore = vc.slice();
        const got = noGrad(() => branchAttention(new Tensor(qkv, [N, 3 * d]), heads, kc, vc, P, starts)).f32;
        assert.deepEqual([kc, vc], [kBefore, vBefore], 'the cache is read only');
        lens.forEach((n, r) => {
          if (!n) return;
          const k2 = kc.slice(), v2 = vc.slice();
          const want = noGrad(() => cachedAttention(new Tensor(qkv.slice(starts[r] * 3 * d, starts[r + 1] * 3 * d), [n, 3 * d]), heads, k2, v2, P)).f32;
          for (let i = 0; i < n * d; i++) assert.ok(Math.abs(got[starts[r] * d + i] - want[i]) <= 1e-5, `heads ${heads} P ${P} branch ${r} element ${i}: ${got[starts[r] * d + i]} vs ${want[i]}`);
        });
      }
    });

    test('bad input: a clear error', () => {
      setBackend(kern);
      const d = 4, kc = new Float32Array(8 * d), vc = new Float32Array(8 * d), qkv = new Tensor(new Float32Array(3 * 3 * d), [3, 3 * d]);
      assert.throws(() => branchAttention(qkv, 3, kc, vc, 2, Int32Array.of(0, 3)), /bad qkv shape \[3, 12\] for 3 heads/);
      assert.throws(() => branchAttention(qkv, 2, kc, vc, 9, Int32Array.of(0, 3)), /prefix length 9 outside the cache's 8 positions/);
      assert.throws(() => branchAttention(qkv, 2, kc, vc.subarray(4), 2, Int32Array.of(0, 3)), /caches must both be/);
      assert.throws(() => branchAttention(qkv, 2, kc, vc, 2, Int32Array.of(0, 2)), /starts must run from 0 to 3/);
      assert.throws(() => branchAttention(qkv, 2, kc, vc, 2, Int32Array.of(0, 2, 1, 3)), /starts must not decrease/);
    });
  });
}
