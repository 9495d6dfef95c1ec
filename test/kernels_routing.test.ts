// The expert-choice kernel: native and reference against a brute-force selection loop (repeatedly
// take the best remaining token), with ties, NaN, -0, C = 0 and C = T, the threaded path at several
// thread counts, and bad arguments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeKernels, ref, type Kernels } from '../src/backend/index.js';
import { randn } from './util.js';

const nat = nativeKernels();

/** Per expert, C times: the remaining token with the largest score (NaN largest, ties: lower token). */
function brute(T: number, E: number, C: number, s: Float32Array): { tok: number[]; vals: number[] } {
  const tok: number[] = [], vals: number[] = [];
  const better = (a: number, b: number) => (Number.isNaN(a) ? !Number.isNaN(b) : a > b); // strict: ties keep the earlier
  for (let e = 0; e < E; e++) {
    const taken = new Set<number>();
    for (let c = 0; c < C; c++) {
      let best = -1;
      for (let t = 0; t < T; t++) if (!taken.has(t) && (best < 0 || better(s[t * E + e], s[best * E + e]))) best = t;
      taken.add(best);
      tok.push(best);
      vals.push(s[best * E + e]);
    }
  }
  return { tok, vals };
}

function run(k: Kernels, T: number, E: number, C: number, s: Float32Array): { tok: number[]; vals: number[] } {
  const tok = new Int32Array(E * C).fill(-7), vals = new Float32Array(E * C).fill(-7);
  k.expertChoice(T, E, C, s, tok, vals);
  return { tok: [...tok], vals: [...vals] };
}

function check(label: string, T: number, E: number, C: number, s: Float32Array): void {
  const want = brute(T, E, C, s);
  for (const [name, k] of [['ref', ref], ['native', nat]] as const) {
    const got = run(k, T, E, C, s);
    assert.deepEqual(got.tok, want.tok, `${label} ${name}: tokens`);
    assert.deepEqual(got.vals.map(String), want.vals.map((v) => String(Math.fround(v))), `${label} ${name}: values`);
  }
}

test('expertChoice: native == ref == brute force, ties, NaN, -0, edge capacities', () => {
  check('random', 37, 5, 9, randn(37 * 5, 1));
  check('C = T', 11, 3, 11, randn(33, 2));
  check('C = 0', 11, 3, 0, randn(33, 3));
  check('one token', 1, 4, 1, randn(4, 4));
  // many ties: scores in {0, 0.25, 0.5, 0.75}; equal scores keep the lower token first
  const tied = Float32Array.from({ length: 40 * 6 }, (_, i) => ((i * 7919) % 4) / 4);
  check('ties', 40, 6, 13, tied);
  const odd = randn(20 * 3, 5);
  odd[4 * 3 + 1] = NaN;
  odd[9 * 3 + 1] = NaN;
  odd[2 * 3] = -0;
  odd[5 * 3] = 0;
  odd[7 * 3] = Infinity;
  odd[8 * 3 + 2] = -Infinity;
  check('NaN, +-0, inf', 20, 3, 20, odd);
  check('NaN, +-0, inf (C < T)', 20, 3, 6, odd);
});

test('expertChoice: the threaded path gives the same result at every thread count', () => {
  const T = 4096, E = 24, C = 700;
  const s = Float32Array.from(randn(T * E, 6), (v) => Math.round(v * 8) / 8); // coarse: many ties
  const want = run(ref, T, E, C, s);
  const before = nat.getThreads();
  try {
    for (const n of [1, 2, 3, 8]) {
      nat.setThreads(n);
      const got = run(nat, T, E, C, s);
      assert.deepEqual(got.tok, want.tok, `threads ${n}`);
    }
  } finally {
    nat.setThreads(before);
  }
});

test('expertChoice: bad arguments throw instead of touching memory', () => {
  for (const k of [ref, nat]) {
    const s = new Float32Array(12), tok = new Int32Array(8), vals = new Float32Array(8);
    assert.throws(() => k.expertChoice(3, 4, 4, s, new Int32Array(16), new Float32Array(16)), /C \(4\) > T \(3\)/, k.name);
    assert.throws(() => k.expertChoice(4, 4, 2, s, tok, vals), /'scores' has 12 elements, needs 16/, k.name);
    assert.throws(() => k.expertChoice(3, 4, 3, s, tok, vals), /'tok' has 8 elements, needs 12/, k.name);
    assert.throws(() => k.expertChoice(3, 4, 1.5, s, tok, vals), /'C' must be an integer/, k.name);
  }
  assert.throws(() => nat.expertChoice(3, 4, 2, new Float32Array(12), new Float32Array(8) as unknown as Int32Array, new Float32Array(8)),
    /'tok' must be a Int32Array/);
  const buf = new Float32Array(20);
  assert.throws(() => nat.expertChoice(3, 4, 2, buf.subarray(0, 12), new Int32Array(8), buf.subarray(8, 16)), /'vals' and 'scores' must not overlap/);
});
