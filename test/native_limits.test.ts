// Native argument limits (issue 9 items 12 and 14): sizes that come from arguments never turn into
// an abort, and the coalesced index given to peerBackwardRows is bounds-checked before it is read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadNative } from '../src/backend/native.js';
import type { NativeAddon } from './native_workload.js';
import { randn, randint } from './util.js';

const K = loadNative() as NativeAddon | null;
const NATIVE = fileURLToPath(new URL('../src/backend/native.js', import.meta.url));
// Under AddressSanitizer (npm run test:asan) the shadow memory needs far more address space than
// any limit we could set, so the children run unlimited and the out-of-memory case is skipped.
const ASAN = /libasan/.test(process.env.LD_PRELOAD ?? '');

/** Runs `body` (an ES module snippet with `K` the addon) in a child limited to `kib` KiB of address space. */
function limited(kib: number, body: string) {
  const src = `import { loadNative } from ${JSON.stringify(NATIVE)}; const K = loadNative(); ${body}`;
  const limit = ASAN ? '' : `ulimit -v ${kib}; `;
  return spawnSync('bash', ['-c', `${limit}exec "${process.execPath}" --input-type=module -e "$0"`, src],
    { encoding: 'utf8', timeout: 120_000 });
}

test('peerCoalesce with N = 2^31 - 1 and a few ids uses O(n) memory (no 8 GiB counter array)', { skip: !K }, () => {
  const r = limited(3_000_000, `
    const N = 2 ** 31 - 1, ids = Int32Array.of(N - 1, 7, N - 1, 0, 7, 7);
    const uniq = new Int32Array(6), off = new Int32Array(7), ord = new Int32Array(6);
    const U = K.peerCoalesce(6, N, ids, uniq, off, ord);
    console.log(JSON.stringify([U, [...uniq.subarray(0, U)], [...off.subarray(0, U + 1)], [...ord]]));`);
  assert.equal(r.status, 0, `child failed (${r.signal ?? r.status}): ${r.stderr}`);
  assert.deepEqual(JSON.parse(r.stdout), [3, [0, 7, 2 ** 31 - 2], [0, 1, 4, 6], [3, 1, 4, 5, 0, 2]]);
});

test('peerCoalesce: the sort path (huge N) equals the counting path (small N) on the same ids', { skip: !K }, () => {
  const n = 5000, ids = randint(n, 3000, 9);
  const run = (N: number) => {
    const uniq = new Int32Array(n), off = new Int32Array(n + 1), ord = new Int32Array(n);
    const U = K!.peerCoalesce(n, N, ids, uniq, off, ord);
    return { U, uniq: uniq.subarray(0, U), off: off.subarray(0, U + 1), ord };
  };
  const a = run(3000), b = run(2 ** 30);
  assert.equal(a.U, b.U);
  assert.deepEqual(a.uniq, b.uniq);
  assert.deepEqual(a.off, b.off);
  assert.deepEqual(a.ord, b.ord);
});

test('an allocation failure in a kernel is a JS Error naming the kernel and the size, not an abort', { skip: !K || ASAN }, () => {
  // 64 threads each get attention-backward tiles for S = 200,000 (about 66 MiB with hd 9, whose
  // rows are packed): about 4 GiB of scratch, past the 3 GB address-space limit of the child, while
  // the arguments take under 0.5 GB.
  const r = limited(3_000_000, `
    K.setThreads(64);
    const B = 8, S = 200000, H = 1, hd = 9;
    const qkv = new Float32Array(B * S * 3 * H * hd), out = new Float32Array(B * S * H * hd), lse = new Float32Array(B * H * S);
    const gout = new Float32Array(B * S * H * hd), gqkv = new Float32Array(B * S * 3 * H * hd);
    try { K.attentionBackward(B, S, H, hd, 0.3, qkv, out, lse, gout, gqkv); console.log('no error'); }
    catch (e) { console.log(e.constructor.name + ': ' + e.message); }
    // the addon still works afterwards
    K.setThreads(2);
    const y = new Float32Array(3); K.unary(0, Float32Array.of(1, 2, 3), y); console.log(y.join(','));`);
  assert.equal(r.status, 0, `child failed (${r.signal ?? r.status}): ${r.stderr}`);
  const [msg, after] = r.stdout.trim().split('\n');
  assert.match(msg, /^Error: attentionBackward: cannot allocate \d\.\d+ GiB of scratch for attention tiles \(out of memory\)/);
  assert.equal(after, '-1,-2,-3');
});

test('peerBackwardRows refuses offsets that are not 0 .. T*hk non-decreasing (no read past order)', { skip: !K }, () => {
  const T = 5, d = 4, nSub = 4, N = nSub * nSub, k = 2, hk = 2 * k, n = T * hk;
  const ids = randint(n, N, 3), x = randn(T * d, 1), u = randn(N * d, 2), v = randn(N * d, 3);
  const g = randn(n, 4), a = randn(n, 5), gy = randn(T * d, 6);
  const uniq = new Int32Array(n), off = new Int32Array(n + 1), ord = new Int32Array(n);
  const U = K!.peerCoalesce(n, N, ids, uniq, off, ord);
  assert.ok(U >= 2);
  const call = (o: Int32Array, order = ord) => K!.peerBackwardRows(T, d, N, hk, k, 0, x, u, v, ids, g, a, gy, U, uniq, o,
    order.subarray(0, n), new Float32Array(T * d), new Float32Array(n), new Float32Array(U * d), new Float32Array(U * d));
  call(off);  // the untouched index is accepted
  const tamper = (i: number, val: number) => { const o = off.slice(); o[i] = val; return o; };
  // an early group running past the end: before, the scan read order[n] (one past the array)
  assert.throws(() => call(tamper(1, n + 5)), /offsets must be non-decreasing/);
  assert.throws(() => call(tamper(U, n + 1)), /offsets\[\d+\] = \d+ exceeds 20/);
  assert.throws(() => call(tamper(U, n - 1)), /offsets must run from 0 to T\*hk = 20/);
  assert.throws(() => call(tamper(0, -1)), /offsets\[0\] = -1 is negative/);
  assert.throws(() => call(tamper(0, 1)), /offsets must run from 0 to T\*hk/);
  assert.throws(() => call(off, ord.subarray(0, n - 1)), /'order' has 19 elements, needs 20/);
});
