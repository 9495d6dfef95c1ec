// Native attention kernels against the reference: forward/backward on odd shapes, backward against
// finite differences of the reference forward (run in float64), KV-cache decoding against full
// attention, thread-count independence, bad arguments, and the lower ISA tiers (MOELAB_ISA=generic,
// and avx2 on an AVX-512 CPU) in child processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nativeKernels, ref, type F32 } from '../src/backend/index.js';
import { assertClose, randn } from './util.js';

const nat = nativeKernels();
const isChild = process.env.MOELAB_TEST_CHILD === '1';

type Shape = [B: number, S: number, H: number, hd: number];
const SHAPES: Shape[] = [
  [1, 1, 1, 1], [2, 1, 4, 64], [1, 7, 1, 64], [2, 7, 3, 7], [1, 7, 2, 1],
  [2, 33, 4, 1], [1, 33, 2, 64], [2, 33, 3, 7], [1, 65, 2, 17],
  [1, 257, 1, 64], [2, 257, 3, 7], [1, 257, 4, 1], [2, 257, 4, 64], [1, 130, 1, 40],
];

function forwardBoth(B: number, S: number, H: number, hd: number, scale: number, qkv: F32) {
  const n = B * S * H * hd;
  const r = { out: new Float32Array(n), lse: new Float32Array(B * H * S) };
  const c = { out: new Float32Array(n).fill(NaN), lse: new Float32Array(B * H * S).fill(NaN) };
  ref.attention(B, S, H, hd, scale, qkv, r.out, r.lse);
  nat.attention(B, S, H, hd, scale, qkv, c.out, c.lse);
  return { r, c };
}

function checkShape([B, S, H, hd]: Shape, seed: number, scale = 1 / Math.sqrt(hd)): void {
  const what = `B=${B} S=${S} H=${H} hd=${hd}`;
  const qkv = randn(B * S * 3 * H * hd, seed, 1.5);
  const gout = randn(B * S * H * hd, seed + 1);
  const { r, c } = forwardBoth(B, S, H, hd, scale, qkv);
  assertClose(c.out, r.out, 1e-4, 2e-5, `attention out ${what}`);
  assertClose(c.lse, r.lse, 1e-5, 2e-5, `attention lse ${what}`);
  const gr = new Float32Array(qkv.length), gc = new Float32Array(qkv.length).fill(NaN);
  ref.attentionBackward(B, S, H, hd, scale, qkv, r.out, r.lse, gout, gr);
  nat.attentionBackward(B, S, H, hd, scale, qkv, r.out, r.lse, gout, gc);
  assertClose(gc, gr, 1e-3, 1e-4, `attentionBackward ${what}`);
}

test('attention forward/backward: native == ref on odd shapes', () => {
  SHAPES.forEach((s, i) => checkShape(s, 100 + i));
});

test('attention: results independent of thread count', { skip: isChild }, () => {
  const before = nat.getThreads();
  try {
    for (const t of [1, 3]) {
      nat.setThreads(t);
      for (const s of [[1, 33, 1, 64], [3, 70, 1, 8], [2, 129, 2, 32]] as Shape[]) checkShape(s, 7 + t);
    }
  } finally {
    nat.setThreads(before);
  }
});

test('attention: zero and negative scale', () => {
  checkShape([1, 70, 2, 16], 31, 0);
  checkShape([2, 33, 1, 8], 32, -0.4);
});

test('attention: large-magnitude scores stay finite and match', () => {
  const [B, S, H, hd] = [1, 40, 2, 16];
  const qkv = randn(B * S * 3 * H * hd, 5, 6);  // scores of order +-100s
  const { r, c } = forwardBoth(B, S, H, hd, 1, qkv);
  assert.ok(c.out.every(Number.isFinite));
  assertClose(c.out, r.out, 1e-3, 1e-4, 'out (large scores)');
  assertClose(c.lse, r.lse, 1e-5, 1e-3, 'lse (large scores)');
});

test('attentionBackward matches finite differences of the reference forward (float64)', () => {
  for (const [B, S, H, hd] of [[1, 7, 2, 5], [2, 9, 1, 3], [1, 1, 1, 4]] as Shape[]) {
    const scale = 0.7 / Math.sqrt(hd);
    const n = B * S * 3 * H * hd;
    const qkv32 = randn(n, 11 + S);
    const gout32 = randn(B * S * H * hd, 12 + S);
    const x = Float64Array.from(qkv32), gout = Float64Array.from(gout32);
    const out = new Float64Array(B * S * H * hd), lse = new Float64Array(B * H * S);
    // The reference is plain JS indexing, so it runs unchanged on float64 arrays.
    const loss = (v: Float64Array): number => {
      ref.attention(B, S, H, hd, scale, v as unknown as F32, out as unknown as F32, lse as unknown as F32);
      let s = 0;
      for (let i = 0; i < out.length; i++) s += out[i] * gout[i];
      return s;
    };
    const fd = new Float64Array(n);
    const eps = 1e-5;
    for (let i = 0; i < n; i++) {
      const x0 = x[i];
      x[i] = x0 + eps; const lp = loss(x);
      x[i] = x0 - eps; const lm = loss(x);
      x[i] = x0;
      fd[i] = (lp - lm) / (2 * eps);
    }
    const o32 = new Float32Array(B * S * H * hd), l32 = new Float32Array(B * H * S);
    nat.attention(B, S, H, hd, scale, qkv32, o32, l32);
    const gn = new Float32Array(n), gr = new Float32Array(n);
    nat.attentionBackward(B, S, H, hd, scale, qkv32, o32, l32, gout32, gn);
    ref.attentionBackward(B, S, H, hd, scale, qkv32, o32, l32, gout32, gr);
    assertClose(gn, fd, 1e-3, 1e-4, `native backward vs FD S=${S}`);
    assertClose(gr, fd, 1e-3, 1e-4, `ref backward vs FD S=${S}`);
  }
});

test('attentionKV: prefill then one-token steps equal rows of full attention', () => {
  for (const [S, H, hd, P] of [[33, 2, 64, 20], [70, 3, 7, 1], [257, 1, 16, 130], [9, 4, 1, 0]]) {
    const scale = 1 / Math.sqrt(hd);
    const qkv = randn(S * 3 * H * hd, 21 + S);
    const full = new Float32Array(S * H * hd), lse = new Float32Array(H * S);
    nat.attention(1, S, H, hd, scale, qkv, full, lse);
    const rowLen = H * hd;
    const part = (s: number, p: number) => qkv.subarray((s * 3 + p) * rowLen, (s * 3 + p + 1) * rowLen);
    const kCache = new Float32Array(S * rowLen), vCache = new Float32Array(S * rowLen);
    const step = (pos0: number, Sq: number) => {
      const q = new Float32Array(Sq * rowLen);
      for (let i = 0; i < Sq; i++) {
        q.set(part(pos0 + i, 0), i * rowLen);
        kCache.set(part(pos0 + i, 1), (pos0 + i) * rowLen);
        vCache.set(part(pos0 + i, 2), (pos0 + i) * rowLen);
      }
      const o = new Float32Array(Sq * rowLen).fill(NaN), oRef = new Float32Array(Sq * rowLen);
      nat.attentionKV(Sq, H, hd, pos0, scale, q, kCache, vCache, o);
      ref.attentionKV(Sq, H, hd, pos0, scale, q, kCache, vCache, oRef);
      const want = full.subarray(pos0 * rowLen, (pos0 + Sq) * rowLen);
      assertClose(o, want, 1e-4, 2e-5, `attentionKV vs full S=${S} pos0=${pos0} Sq=${Sq}`);
      assertClose(oRef, want, 1e-4, 2e-5, `ref attentionKV vs full S=${S} pos0=${pos0}`);
    };
    if (P > 0) step(0, P);
    for (let pos = P; pos < S; pos++) step(pos, 1);
  }
});

test('attention: bad arguments throw and the process survives', { skip: isChild }, () => {
  const [B, S, H, hd] = [1, 4, 2, 8];
  const qkv = randn(B * S * 3 * H * hd, 1), out = new Float32Array(B * S * H * hd), lse = new Float32Array(B * H * S);
  const gout = randn(out.length, 2), g = new Float32Array(qkv.length);
  const bad: Array<[string, () => void]> = [
    ['qkv Float64Array', () => nat.attention(B, S, H, hd, 1, new Float64Array(qkv.length) as unknown as F32, out, lse)],
    ['out Int32Array', () => nat.attention(B, S, H, hd, 1, qkv, new Int32Array(out.length) as unknown as F32, lse)],
    ['short qkv', () => nat.attention(B, S, H, hd, 1, qkv.subarray(1), out, lse)],
    ['short out', () => nat.attention(B, S, H, hd, 1, qkv, out.subarray(1), lse)],
    ['short lse', () => nat.attention(B, S, H, hd, 1, qkv, out, lse.subarray(1))],
    ['negative S', () => nat.attention(B, -4, H, hd, 1, qkv, out, lse)],
    ['fractional hd', () => nat.attention(B, S, H, 7.5, 1, qkv, out, lse)],
    ['NaN H', () => nat.attention(B, S, NaN, hd, 1, qkv, out, lse)],
    ['string scale', () => nat.attention(B, S, H, hd, '1' as unknown as number, qkv, out, lse)],
    ['huge dims', () => nat.attention(2 ** 40, 2 ** 40, 2 ** 40, 2 ** 40, 1, qkv, out, lse)],
    ['out aliases qkv', () => nat.attention(B, S, H, hd, 1, qkv, qkv.subarray(0, out.length), lse)],
    ['lse aliases out', () => nat.attention(B, S, H, hd, 1, qkv, out, out.subarray(0, lse.length))],
    ['missing args', () => (nat.attention as unknown as (...a: unknown[]) => void)(B, S, H, hd, 1, qkv)],
    ['bwd short gout', () => nat.attentionBackward(B, S, H, hd, 1, qkv, out, lse, gout.subarray(2), g)],
    ['bwd short gqkv', () => nat.attentionBackward(B, S, H, hd, 1, qkv, out, lse, gout, g.subarray(8))],
    ['bwd gqkv aliases qkv', () => nat.attentionBackward(B, S, H, hd, 1, qkv, out, lse, gout, qkv)],
    ['bwd gqkv aliases gout', () => {
      const buf = new Float32Array(qkv.length + gout.length);
      nat.attentionBackward(B, S, H, hd, 1, qkv, out, lse, buf.subarray(0, gout.length), buf.subarray(4));
    }],
    ['bwd lse Float64Array', () => nat.attentionBackward(B, S, H, hd, 1, qkv, out, new Float64Array(lse.length) as unknown as F32, gout, g)],
    ['kv short kCache', () => nat.attentionKV(1, H, hd, 3, 1, new Float32Array(H * hd), new Float32Array(3 * H * hd), new Float32Array(4 * H * hd), new Float32Array(H * hd))],
    ['kv short vCache', () => nat.attentionKV(1, H, hd, 3, 1, new Float32Array(H * hd), new Float32Array(4 * H * hd), new Float32Array(3 * H * hd), new Float32Array(H * hd))],
    ['kv out aliases q', () => { const q = new Float32Array(H * hd); nat.attentionKV(1, H, hd, 0, 1, q, new Float32Array(H * hd), new Float32Array(H * hd), q); }],
    ['kv negative pos0', () => nat.attentionKV(1, H, hd, -1, 1, new Float32Array(H * hd), new Float32Array(H * hd), new Float32Array(H * hd), new Float32Array(H * hd))],
  ];
  for (const [name, f] of bad) assert.throws(f, (e: unknown) => e instanceof Error, name);
  // still alive and correct
  const r = new Float32Array(out.length), rl = new Float32Array(lse.length);
  ref.attention(B, S, H, hd, 1, qkv, r, rl);
  nat.attention(B, S, H, hd, 1, qkv, out, lse);
  assertClose(out, r, 1e-4, 1e-5, 'after bad calls');
});

test('attention: empty and degenerate sizes', () => {
  nat.attention(0, 5, 2, 4, 1, new Float32Array(0), new Float32Array(0), new Float32Array(0));
  nat.attentionBackward(2, 0, 2, 4, 1, new Float32Array(0), new Float32Array(0), new Float32Array(0), new Float32Array(0), new Float32Array(0));
  const lse = new Float32Array(6), lr = new Float32Array(6);
  nat.attention(1, 3, 2, 0, 1, new Float32Array(0), new Float32Array(0), lse);  // hd = 0: uniform weights
  ref.attention(1, 3, 2, 0, 1, new Float32Array(0), new Float32Array(0), lr);
  assertClose(lse, lr, 1e-6, 1e-6, 'lse with hd=0');
});

for (const isa of ['generic', 'avx2']) {
  // avx2 only where it is a lower tier than the parent's (an AVX-512 CPU)
  const skip = isChild || (isa === 'avx2' && nat.cpuInfo().isa !== 'avx512');
  test(`lower ISA tier (MOELAB_ISA=${isa}) passes the native checks`, { skip }, () => {
    const file = fileURLToPath(import.meta.url);
    // A plain run of this file with TAP output (NODE_TEST_CONTEXT would switch the child to the
    // parent runner's binary protocol).
    const env: NodeJS.ProcessEnv = { ...process.env, MOELAB_ISA: isa, MOELAB_TEST_CHILD: '1' };
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
}

test('child runs the ISA it was given', { skip: !isChild }, () => {
  assert.equal(nat.cpuInfo().isa, process.env.MOELAB_ISA);
});
