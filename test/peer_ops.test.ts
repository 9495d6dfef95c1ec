// The PEER tensor ops (peerRetrieve, peerExperts) and batchNorm: finite-difference gradients of
// every differentiable input, row-sparse chunks against the dense gradient, the running statistics
// as explicit outputs, and shape errors. Runs on the reference and on the native backend.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ref, nativeKernels, setBackend, type Kernels } from '../src/backend/index.js';
import { loadNative } from '../src/backend/native.js';
import { Tensor, tensor, intTensor, linear, peerRetrieve, peerExperts, batchNorm, RowGradPool, coalesceRows } from '../src/tensor/index.js';
import { gradcheck } from './gradcheck.js';
import { assertClose, randn, rng } from './util.js';

function backends(): [string, () => Kernels][] {
  const all: [string, () => Kernels][] = [['ref', () => ref]];
  if (loadNative()) all.push(['native', nativeKernels]);
  const only = process.env.MOELAB_TEST_BACKEND;
  return all.filter(([n]) => !only || n === only);
}

/** Random expert ids [T, h*k], distinct within each head (as retrieval returns them). */
function randomIds(T: number, h: number, k: number, N: number, seed: number): Tensor {
  const r = rng(seed), ids = new Int32Array(T * h * k);
  for (let row = 0; row < T * h; row++) {
    const seen = new Set<number>();
    for (let j = 0; j < k; j++) {
      let id: number;
      do id = Math.floor(r() * N); while (seen.has(id));
      seen.add(id);
      ids[row * k + j] = id;
    }
  }
  return intTensor(ids, [T, h * k]);
}

/**
 * Random q [T, h*2*half] and keys [2, nSub, half] whose top k+1 scores (over all N experts) are at
 * least 0.05 apart in every row, so a finite-difference step cannot switch or reorder the picks.
 */
function separated(T: number, h: number, nSub: number, half: number, k: number, seed: number): { q: Tensor; keys: Tensor } {
  for (let s = seed; ; s += 1000) {
    const q = randn(T * h * 2 * half, s), keys = randn(2 * nSub * half, s + 1);
    let ok = true;
    for (let r = 0; r < T * h && ok; r++) {
      const all: number[] = [];
      for (let i1 = 0; i1 < nSub; i1++) for (let i2 = 0; i2 < nSub; i2++) {
        let v = 0;
        for (let c = 0; c < half; c++) v += q[r * 2 * half + c] * keys[i1 * half + c] + q[r * 2 * half + half + c] * keys[(nSub + i2) * half + c];
        all.push(v);
      }
      all.sort((a, b) => b - a);
      for (let j = 0; j < Math.min(k, all.length - 1); j++) if (all[j] - all[j + 1] < 0.05) ok = false;
    }
    if (ok) return { q: tensor(q, [T, h * 2 * half]), keys: tensor(keys, [2, nSub, half]) };
  }
}

function dense(p: Tensor): Float32Array {
  const out = p.grad ? p.grad.f32.slice() : new Float32Array(p.size);
  const d = p.shape[1];
  for (const c of p.sparseGrad ?? []) for (let i = 0; i < c.ids.length; i++) for (let j = 0; j < d; j++) out[c.ids[i] * d + j] += c.values[i * d + j];
  return out;
}

for (const [bname, make] of backends()) {
  describe(`PEER and BatchNorm ops on ${bname}`, () => {
    test.beforeEach(() => setBackend(make()));
    test.after(() => setBackend(ref));

    test('peerRetrieve: gradients of the scores w.r.t. q and keys', () => {
      for (const [T, h, nSub, half, k, seed] of [[4, 2, 6, 3, 3, 1], [3, 3, 8, 2, 4, 2], [5, 1, 5, 4, 5, 3]]) {
        const { q, keys } = separated(T, h, nSub, half, k, seed);
        const ids0 = peerRetrieve(q, keys, h, k).ids.i32.slice();
        // a small eps keeps the chosen experts fixed (the scores are smooth only between top-k switches)
        gradcheck(`peerRetrieve T${T} h${h} nSub${nSub} k${k}`, (a, b) => {
          const r = peerRetrieve(a, b, h, k);
          assert.deepEqual([...r.ids.i32], [...ids0], 'a perturbation switched experts');
          return r.scores;
        }, [q, keys], { eps: 1e-3, samples: 30 });
      }
    });

    test('peerRetrieve: ids equal brute force; gradient flows through a query projection', () => {
      const T = 3, h = 2, nSub = 5, half = 2, k = 4, d = 6;
      const x = tensor(randn(T * d, 7), [T, d]), W = tensor(randn(h * 2 * half * d, 8), [h * 2 * half, d]);
      const keys = tensor(randn(2 * nSub * half, 9), [2, nSub, half]);
      const q = linear(x, W, null);
      const { ids, scores } = peerRetrieve(q, keys, h, k);
      assert.deepEqual(ids.shape, [T, h * k]);
      const qf = q.f32, kf = keys.f32;
      for (let r = 0; r < T * h; r++) {
        const all: [number, number][] = [];
        for (let i1 = 0; i1 < nSub; i1++) for (let i2 = 0; i2 < nSub; i2++) {
          let s = 0;
          for (let c = 0; c < half; c++) s += qf[r * 2 * half + c] * kf[i1 * half + c] + qf[r * 2 * half + half + c] * kf[(nSub + i2) * half + c];
          all.push([s, i1 * nSub + i2]);
        }
        all.sort((a, b) => b[0] - a[0]);
        assert.deepEqual([...ids.i32.subarray(r * k, r * k + k)], all.slice(0, k).map((e) => e[1]), `row ${r}`);
        assertClose(scores.f32.subarray(r * k, r * k + k), all.slice(0, k).map((e) => e[0]), 1e-5, 1e-5, `row ${r} scores`);
      }
      gradcheck('retrieve through linear', (a, b) => peerRetrieve(linear(a, b, null), keys, h, k).scores, [x, W], { eps: 1e-3 });
      assert.throws(() => peerRetrieve(q, keys, h, nSub + 1), /k must be an integer in \[1, nSub/);
      assert.throws(() => peerRetrieve(q, keys, 3, k), /q must be \[T, 12\]/);
      assert.throws(() => peerRetrieve(q, tensor(randn(8, 1), [8]), h, k), /keys must be \[2, nSub, half\]/);
    });

    test('peerExperts: gradients of x, scores, u and v (gelu, relu, pkm)', () => {
      for (const [act, pkm, seed] of [['gelu', false, 1], ['relu', false, 2], ['gelu', true, 3]] as const) {
        const T = 4, d = 5, h = 2, k = 3, N = 16;
        const ids = randomIds(T, h, k, N, seed);
        const x = tensor(randn(T * d, seed + 10), [T, d]), scores = tensor(randn(T * h * k, seed + 11), [T, h * k]);
        const u = tensor(randn(N * d, seed + 12, 0.5), [N, d]), v = tensor(randn(N * d, seed + 13, 0.5), [N, d]);
        if (pkm) {
          gradcheck(`peerExperts pkm`, (s, vv) => peerExperts(x, ids, s, null, vv, { k, activation: act }), [scores, v], { samples: 40 });
        } else {
          gradcheck(`peerExperts ${act}`, (xx, s, uu, vv) => peerExperts(xx, ids, s, uu, vv, { k, activation: act }),
            [x, scores, u, v], { eps: act === 'relu' ? 1e-3 : 1e-2, samples: 40 });
        }
      }
    });

    test('peerExperts: row-sparse chunks equal the dense gradient; pooled buffers reused after zeroGrad', () => {
      const T = 6, d = 4, h = 3, k = 3, N = 9; // 54 picks over 9 experts: heavy repetition (expert-major path)
      for (const [N2, label] of [[N, 'repeated'], [400, 'mostly distinct']] as const) {
        const ids = randomIds(T, h, k, N2, 5);
        const x = tensor(randn(T * d, 1), [T, d]), s = tensor(randn(T * h * k, 2), [T, h * k]);
        const uD = tensor(randn(N2 * d, 3), [N2, d], { requiresGrad: true }), vD = tensor(randn(N2 * d, 4), [N2, d], { requiresGrad: true });
        const uS = tensor(uD.f32.slice(), [N2, d], { requiresGrad: true }), vS = tensor(vD.f32.slice(), [N2, d], { requiresGrad: true });
        const gy = randn(T * d, 6);
        peerExperts(x, ids, s, uD, vD, { k, activation: 'gelu' }).backward(gy.slice());
        const pool = new RowGradPool();
        peerExperts(x, ids, s, uS, vS, { k, activation: 'gelu', rowGrads: pool }).backward(gy.slice());
        for (const [D, S, n] of [[uD, uS, 'u'], [vD, vS, 'v']] as const) {
          assert.equal(S.grad, null, `${label} ${n}: dense gradient on the sparse path`);
          assert.equal(S.sparseGrad!.length, 1);
          const cids = S.sparseGrad![0].ids;
          for (let i = 1; i < cids.length; i++) assert.ok(cids[i] > cids[i - 1], 'chunk ids ascending');
          assertClose(dense(S), D.grad!.f32, 1e-5, 1e-6, `${label} ${n} chunk vs dense`);
        }
        const buf = vS.sparseGrad![0].values.buffer;
        peerExperts(x, ids, s, uS, vS, { k, activation: 'gelu', rowGrads: pool }).backward(gy.slice());
        const buf2 = vS.sparseGrad![1].values.buffer;
        assert.notEqual(buf2, buf, 'a buffer still in use was handed out again');
        vS.sparseGrad = null;
        peerExperts(x, ids, s, uS, vS, { k, activation: 'gelu', rowGrads: pool }).backward(gy.slice());
        assert.ok([buf, buf2].includes(vS.sparseGrad![0].values.buffer), 'freed pool buffer not reused');
        assertClose(dense(vS), vD.grad!.f32, 1e-5, 1e-6, `${label} v after reuse`);
      }
    });

    test('peerExperts: bad shapes and non-leaf sparse tables are refused', () => {
      const T = 2, d = 3, N = 4, ids = randomIds(T, 1, 2, N, 1), s = tensor(randn(4, 1), [T, 2]);
      const x = tensor(randn(T * d, 2), [T, d]), v = tensor(randn(N * d, 3), [N, d], { requiresGrad: true });
      assert.throws(() => peerExperts(tensor(randn(8, 1), [2, 4]), ids, s, null, v, { k: 2, activation: 'gelu' }), /x must be \[T, 3\]/);
      assert.throws(() => peerExperts(x, ids, tensor(randn(6, 1), [T, 3]), null, v, { k: 2, activation: 'gelu' }), /scores must be \[2, 2\]/);
      assert.throws(() => peerExperts(x, ids, s, null, v, { k: 3, activation: 'gelu' }), /k must divide/);
      assert.throws(() => peerExperts(x, s, s, null, v, { k: 2, activation: 'gelu' }), /ids must be int32/);
      assert.throws(() => peerExperts(x, ids, s, tensor(randn(5 * d, 1), [5, d]), v, { k: 2, activation: 'gelu' }), /u must be \[4, 3\]/);
      assert.throws(() => peerExperts(x, ids, s, null, v, { k: 2, activation: 'tanh' as 'gelu' }), /unknown activation 'tanh'/);
      const vView = v.reshape(N, d).transpose(0, 1).transpose(0, 1);
      assert.throws(() => peerExperts(x, ids, s, null, vView, { k: 2, activation: 'gelu', rowGrads: new RowGradPool() }), /leaves/);
    });

    test('batchNorm: gradients in training and eval; running statistics returned, inputs untouched', () => {
      const T = 7, C = 5;
      const x = tensor(randn(T * C, 1, 2), [T, C]).contiguous();
      for (let i = 0; i < T * C; i++) x.f32[i] += i % C; // channels with different means
      const w = tensor(randn(C, 2).map((t) => 1 + 0.3 * t), [C]), b = tensor(randn(C, 3), [C]);
      const running = { mean: tensor(randn(C, 4, 0.3), [C]), var: tensor(randn(C, 5).map((t) => 0.5 + Math.abs(t)), [C]) };
      const before = { mean: running.mean.f32.slice(), var: running.var.f32.slice() };
      for (const training of [true, false]) {
        gradcheck(`batchNorm training=${training}`, (xx, ww, bb) => batchNorm(xx, ww, bb, running, { training }).y, [x, w, b], { samples: 35 });
      }
      assert.deepEqual([...running.mean.f32], [...before.mean], 'running.mean written');
      assert.deepEqual([...running.var.f32], [...before.var], 'running.var written');
      // training: new statistics from the batch (mean, unbiased variance) with momentum 0.25
      const r = batchNorm(x, w, b, running, { training: true, momentum: 0.25, eps: 1e-3 });
      for (let c = 0; c < C; c++) {
        let m = 0, q = 0;
        for (let t = 0; t < T; t++) m += x.f32[t * C + c] / T;
        for (let t = 0; t < T; t++) q += (x.f32[t * C + c] - m) ** 2;
        assert.ok(Math.abs(r.running.mean.f32[c] - (0.75 * before.mean[c] + 0.25 * m)) < 1e-5, `running mean ${c}`);
        assert.ok(Math.abs(r.running.var.f32[c] - (0.75 * before.var[c] + 0.25 * q / (T - 1))) < 1e-4, `running var ${c}`);
        const y0 = ((x.f32[c] - m) / Math.sqrt(q / T + 1e-3)) * w.f32[c] + b.f32[c];
        assert.ok(Math.abs(r.y.f32[c] - y0) < 1e-4, `y[0, ${c}]`);
      }
      const e = batchNorm(x, w, b, running, { training: false });
      assert.equal(e.running, running, 'eval returns the running statistics unchanged');
      assert.ok(Math.abs(e.y.f32[1] - ((x.f32[1] - before.mean[1]) / Math.sqrt(before.var[1] + 1e-5)) * w.f32[1] - b.f32[1]) < 1e-4);
      assert.throws(() => batchNorm(tensor(randn(C, 1), [1, C]), w, b, running, { training: true }), /more than 1 value per channel/);
      assert.throws(() => batchNorm(tensor(randn(12, 1), [3, 4]), w, b, running, { training: false }), /expected x of shape \[T, 5\]/);
      assert.throws(() => batchNorm(x, w, tensor(randn(4, 1), [4]), running, { training: false }), /bias must have 5 elements/);
    });

    test('coalesceRows sums repeated rows across chunks into ascending unique ids', () => {
      const d = 2;
      const chunks = [{ ids: Int32Array.of(5, 1, 5), values: Float32Array.of(1, 2, 3, 4, 5, 6) }, { ids: Int32Array.of(1, 0), values: Float32Array.of(10, 20, 30, 40) }];
      const r = coalesceRows(chunks, 6, d);
      assert.deepEqual([...r.ids], [0, 1, 5]);
      assert.deepEqual([...r.values], [30, 40, 13, 24, 6, 8]);
      assert.deepEqual([...chunks[0].values], [1, 2, 3, 4, 5, 6], 'input chunk modified');
      assert.throws(() => coalesceRows([{ ids: Int32Array.of(1), values: Float32Array.of(1) }], 6, d), /chunk of 1 ids has 1 values, expected 2/);
      assert.throws(() => coalesceRows([{ ids: Int32Array.of(6), values: Float32Array.of(1, 2) }], 6, d), RangeError);
    });
  });
}
