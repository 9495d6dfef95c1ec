// PEER expert tables stored in bf16 (model.ffn.bf16Tables): the expert kernels on bf16 tables
// equal the float kernels on the widened tables exactly (native and reference, AVX2 tails and the
// four-row blocks, pkm); sparse Adam's stochastic rounding of bf16 tables is unbiased, keeps small
// updates on average where round-to-nearest loses them, is a pure function of its seed and agrees
// between native and reference; bad arguments throw; a tiny PEER model with bf16 tables trains,
// saves its tables as BF16 in model.safetensors, and a resumed run equals an uninterrupted one;
// the memory estimate counts the tables at 2 bytes.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ref, backend, PeerAct, type Kernels } from '../src/backend/index.js';
import { loadNative } from '../src/backend/native.js';
import { bf16BitsToF32, f32ToBf16Bits, readSafetensors } from '../src/io/safetensors.js';
import { train, openRun, loadConfig } from '../src/index.js';
import { estimateMemory } from '../src/spec/memory.js';
import { PEER } from '../src/nn/peer.js';
import { Tensor, sumAll, mul, rowGradValues, peerExperts, RowGradPool, type RowSparseGrad } from '../src/tensor/index.js';
import { SparseAdam } from '../src/optim/sparse_adam.js';
import { buildModel } from '../src/nn/build.js';
import { tinyTrainConfig, checkpointWeights } from './train_util.js';
import { randn, randint, assertClose } from './util.js';

const native = loadNative();
const backends: [string, Kernels][] = [['ref', ref], ...(native ? [['native', native] as [string, Kernels]] : [])];

const toBf16 = (a: Float32Array): Uint16Array => Uint16Array.from(a, f32ToBf16Bits);
const widen = (h: Uint16Array): Float32Array => Float32Array.from(h, bf16BitsToF32);
const bitsEqual = (a: Float32Array, b: Float32Array, what: string): void => {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`${what}: element ${i}: ${a[i]} vs ${b[i]}`);
};

/** Coalesced index of ids as peerCoalesce gives it. */
function coalesce(K: Kernels, ids: Int32Array, N: number) {
  const n = ids.length, uniq = new Int32Array(n), offsets = new Int32Array(n + 1), order = new Int32Array(n);
  const U = K.peerCoalesce(n, N, ids, uniq, offsets, order);
  return { U, uniq, offsets, order };
}

describe('PEER expert kernels on bf16 tables', () => {
  for (const [name, K] of backends) {
    test(`${name}: forward, backward and expert-major backward equal the float kernels on the widened tables`, () => {
      // d = 37: AVX2 8-wide body plus scalar tail; d = 64: 32-column register blocks; hk = 6 and 8
      // cover the four-row blocks and the single-row remainder of the gathered dot products
      for (const [T, d, N, h, k, pkm, act] of [[5, 37, 50, 2, 3, false, PeerAct.gelu], [4, 64, 30, 2, 4, false, PeerAct.relu], [3, 40, 20, 1, 4, true, PeerAct.gelu]] as const) {
        const hk = h * k, seed = T * 100 + d;
        const uB = pkm ? null : toBf16(randn(N * d, seed, 0.3)), vB = toBf16(randn(N * d, seed + 1, 0.5));
        const uF = uB ? widen(uB) : null, vF = widen(vB);
        const x = randn(T * d, seed + 2), scores = randn(T * hk, seed + 3), gy = randn(T * d, seed + 4);
        const ids = randint(T * hk, N, seed + 5);
        const fwd = (u: Float32Array | Uint16Array | null, v: Float32Array | Uint16Array) => {
          const g = new Float32Array(T * hk), a = pkm ? null : new Float32Array(T * hk), y = new Float32Array(T * d);
          K.peerForward(T, d, N, hk, k, act, x, u, v, ids, scores, g, a, y);
          return { g, a, y };
        };
        const F = fwd(uF, vF), B = fwd(uB, vB);
        bitsEqual(B.y, F.y, `${name} y`);
        if (!pkm) bitsEqual(B.a!, F.a!, `${name} a`);
        const bwd = (u: Float32Array | Uint16Array | null, v: Float32Array | Uint16Array) => {
          const gx = pkm ? null : new Float32Array(T * d), gs = new Float32Array(T * hk), cu = pkm ? null : new Float32Array(T * hk), cv = new Float32Array(T * hk);
          K.peerBackward(T, d, N, hk, k, act, x, u, v, ids, F.g, F.a, gy, gx, gs, cu, cv);
          return { gx, gs, cu, cv };
        };
        const bF = bwd(uF, vF), bB = bwd(uB, vB);
        bitsEqual(bB.gs, bF.gs, `${name} gscores`);
        bitsEqual(bB.cv, bF.cv, `${name} cv`);
        if (!pkm) { bitsEqual(bB.gx!, bF.gx!, `${name} gx`); bitsEqual(bB.cu!, bF.cu!, `${name} cu`); }
        const c = coalesce(K, ids, N);
        const rows = (u: Float32Array | Uint16Array | null, v: Float32Array | Uint16Array) => {
          const gx = pkm ? null : new Float32Array(T * d), gs = new Float32Array(T * hk);
          const gu = pkm ? null : new Float32Array(c.U * d), gv = new Float32Array(c.U * d);
          K.peerBackwardRows(T, d, N, hk, k, act, x, u, v, ids, F.g, F.a, gy, c.U, c.uniq, c.offsets, c.order, gx, gs, gu, gv);
          return { gx, gs, gu, gv };
        };
        const rF = rows(uF, vF), rB = rows(uB, vB);
        bitsEqual(rB.gs, rF.gs, `${name} rows gscores`);
        bitsEqual(rB.gv, rF.gv, `${name} rows gv`);
        if (!pkm) { bitsEqual(rB.gx!, rF.gx!, `${name} rows gx`); bitsEqual(rB.gu!, rF.gu!, `${name} rows gu`); }
      }
    });

    test(`${name}: mixed table types and a bf16 table without a rounding seed are refused`, () => {
      const T = 1, d = 8, N = 4, hk = 2, k = 2;
      const x = new Float32Array(T * d), ids = new Int32Array(hk), sc = new Float32Array(hk);
      const g = new Float32Array(hk), a = new Float32Array(hk), y = new Float32Array(d);
      assert.throws(() => K.peerForward(T, d, N, hk, k, PeerAct.gelu, x, new Float32Array(N * d), new Uint16Array(N * d), ids, sc, g, a, y), TypeError);
      assert.throws(() => K.peerForward(T, d, N, hk, k, PeerAct.gelu, x, new Uint16Array(N * d), new Float32Array(N * d), ids, sc, g, a, y), TypeError);
      assert.throws(() => K.peerForward(T, d, N, hk, k, PeerAct.gelu, x, new Uint16Array(N * d), new Uint16Array(N * d - 1), ids, sc, g, a, y), RangeError);
      const p = new Uint16Array(N * d), m = new Float32Array(N * d), v = new Float32Array(N * d);
      const gr = new Float32Array(d), one = Int32Array.of(1);
      assert.throws(() => K.sparseAdam(1, d, one, gr, p, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.1, 0.001), /seed/);
      assert.throws(() => K.sparseAdam(1, d, one, gr, p, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.1, 0.001, -1), RangeError);
      K.sparseAdam(1, d, one, gr, p, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.1, 0.001, 7);
    });
  }
});

describe('sparse Adam on bf16 tables: stochastic rounding', () => {
  const rows = 2048, d = 64, n = rows * d;
  const ids = Int32Array.from({ length: rows }, (_, i) => i);
  const ULP = 2 ** -8; // bf16 spacing just below 1.0 (7 stored mantissa bits)

  for (const [name, K] of backends) {
    test(`${name}: one step is unbiased and a quarter-ulp step moves a quarter of the weights`, () => {
      // first step with constant positive g: m/sqrt(v) bias-corrected is 1, so the update is ~lr
      // (eps = 0); from p = 1 the float result is 1 - lr, which lies between 1 - ULP and 1
      const lr = ULP / 4;
      const p = new Uint16Array(n).fill(f32ToBf16Bits(1)), m = new Float32Array(n), v = new Float32Array(n);
      const g = new Float32Array(n).fill(0.5);
      K.sparseAdam(rows, d, ids, g, p, m, v, lr, 0.9, 0.999, 0, 1 - 0.9, 1 - 0.999, 12345);
      let sum = 0, down = 0;
      for (let i = 0; i < n; i++) {
        const w = bf16BitsToF32(p[i]);
        assert.ok(w === 1 || w === 1 - ULP, `weight ${i} = ${w} is not a neighbour of 1 - lr`);
        sum += w;
        down += w < 1 ? 1 : 0;
      }
      const mean = sum / n, exact = Math.fround(1 - Math.fround(lr));
      // std of the mean: ULP * sqrt(p(1-p) / n) ~ 3.3e-6; allow 5 sigma
      assert.ok(Math.abs(mean - exact) < 5 * ULP * Math.sqrt(0.25 * 0.75 / n), `mean ${mean} vs exact ${exact}`);
      assert.ok(Math.abs(down / n - 0.25) < 0.01, `${down / n} rounded down, expected ~0.25`);
      // round-to-nearest would keep every weight at 1: the step would be lost
      assert.equal(bf16BitsToF32(f32ToBf16Bits(exact)), 1);
    });

    test(`${name}: 200 steps of a tenth of an ulp accumulate on average (round-to-nearest would stay put)`, () => {
      const lr = ULP / 10, steps = 200, r = 256, nn = r * d;
      const idr = ids.subarray(0, r);
      const p = new Uint16Array(nn).fill(f32ToBf16Bits(1)), m = new Float32Array(nn), v = new Float32Array(nn);
      const g = new Float32Array(nn).fill(-0.25); // negative gradient: weights grow
      for (let s = 1; s <= steps; s++) K.sparseAdam(r, d, idr, g, p, m, v, lr, 0.9, 0.999, 0, 1 - 0.9 ** s, 1 - 0.999 ** s, 1000 + s);
      let mean = 0;
      for (let i = 0; i < nn; i++) mean += bf16BitsToF32(p[i]) / nn;
      const expected = 1 + steps * lr; // 1.078: 10 ulps (above 1 the spacing is 2 ULP, i.e. 5 bf16 steps)
      assert.ok(Math.abs(mean - expected) < 0.02 * (expected - 1), `mean ${mean}, expected ${expected}`);
    });

    test(`${name}: the rounding is a pure function of the seed`, () => {
      const run = (seed: number) => {
        const p = toBf16(randn(n, 3, 0.1)), m = new Uint16Array(n), v = new Uint16Array(n);
        K.sparseAdam(rows, d, ids, randn(n, 4, 0.01), p, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.1, 0.001, seed);
        return p;
      };
      const a = run(9), b = run(9), c = run(10);
      assert.deepEqual(a, b);
      let diff = 0;
      for (let i = 0; i < n; i++) diff += a[i] !== c[i] ? 1 : 0;
      assert.ok(diff > n / 20, `another seed changed only ${diff} of ${n} roundings`);
    });
  }

  test('native and reference draw the same rounding bits', { skip: !native }, () => {
    const run = (K: Kernels, bfMoments: boolean) => {
      const p = toBf16(randn(n, 5, 0.2));
      const m = bfMoments ? new Uint16Array(n) : new Float32Array(n), v = bfMoments ? new Uint16Array(n) : new Float32Array(n);
      for (let s = 1; s <= 3; s++) K.sparseAdam(rows, d, ids, randn(n, 6 + s, 0.01), p, m, v, 1e-3, 0.9, 0.999, 1e-8, 1 - 0.9 ** s, 1 - 0.999 ** s, 77 + s);
      return p;
    };
    for (const bfMoments of [false, true]) {
      const A = run(native!, bfMoments), B = run(ref, bfMoments);
      let same = 0, far = 0;
      for (let i = 0; i < n; i++) {
        if (A[i] === B[i]) same++;
        else if (Math.abs(A[i] - B[i]) > 1) far++; // float vs double update: at most a neighbour
      }
      assert.equal(far, 0, 'native and reference differ by more than one bf16 step');
      assert.ok(same >= 0.99 * n, `only ${same} of ${n} equal (bf16 moments ${bfMoments})`);
    }
  });
});

describe('PEER layer and training with bf16 tables', () => {
  let dir = '';
  let corpus = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'moelab-peerbf16-'));
    corpus = join(dir, 'corpus.txt');
    const words = ['alpha', 'beta', 'gamma', 'delta', 'experts', 'million', 'tokens', 'to', 'the', 'model', 'keys', 'rows'];
    let text = '';
    for (let i = 0; i < 4000; i++) text += words[(i * 7 + (i >> 2)) % words.length] + (i % 9 === 8 ? '.\n' : ' ');
    writeFileSync(corpus, text);
  });
  const ffn = { type: 'peer', nSub: 8, heads: 2, k: 2, dKey: 8, bf16Tables: true, bf16Moments: true };
  const over = { 'model.ffn': ffn, 'train.saveEvery': 4 };

  test('the layer refuses bf16 tables with dense gradients', () => {
    assert.throws(() => new PEER(8, { nSub: 4, heads: 1, k: 2, dKey: 4, bn: false, activation: 'gelu', pkm: false, bf16Tables: true, sparseGrads: false }), /row-sparse/);
  });

  test('trains, saves the tables as BF16, and a resumed run equals an uninterrupted one', async () => {
    await train({ config: tinyTrainConfig(corpus, over), dir: join(dir, 'straight') });
    await train({ config: tinyTrainConfig(corpus, over), dir: join(dir, 'split'), stopAt: 6 });
    await train({ config: tinyTrainConfig(corpus, over), dir: join(dir, 'split'), resume: true });
    assert.ok(checkpointWeights(join(dir, 'straight')).equals(checkpointWeights(join(dir, 'split'))), 'weights differ after resume');
    const st = readSafetensors(join(dir, 'straight', 'model.safetensors'));
    for (const [n, t] of st.tensors) {
      if (/\.ffn\.[uv]\.weight$/.test(n)) assert.equal(t.dtype, 'BF16', n);
      else assert.notEqual(t.dtype, 'BF16', n);
    }
    const { model } = openRun(join(dir, 'straight'));
    const [, v] = model.namedParameters().find(([n]) => n === 'blocks.0.ffn.v.weight')!;
    assert.equal(v.dtype, 'bf16');
    assert.deepEqual(v.bf16, st.tensors.get('blocks.0.ffn.v.weight')!.data);
    // the tables moved (the update was not lost to rounding)
    const init = buildModel(tinyTrainConfig(corpus, over).model, tinyTrainConfig(corpus, over).train.seed);
    const v0 = init.namedParameters().find(([n]) => n === 'blocks.0.ffn.v.weight')![1].bf16;
    let moved = 0;
    for (let i = 0; i < v0.length; i++) moved += v0[i] !== v.bf16[i] ? 1 : 0;
    assert.ok(moved > v0.length / 10, `only ${moved} of ${v0.length} table weights changed in 12 steps`);
  });

  test('a config with bf16Tables false keeps the resolved config (and run hash) of before the option', () => {
    const c = tinyTrainConfig(corpus, { 'model.ffn': { ...ffn, bf16Tables: false } });
    assert.ok(!('bf16Tables' in (c.model.ffn as object)), 'bf16Tables: false is left out of the resolved config');
    assert.equal((tinyTrainConfig(corpus, over).model.ffn as { bf16Tables?: boolean }).bf16Tables, true);
  });
});

describe('memory estimate with bf16 tables', () => {
  test('peer1m-all-d256: the tables count 2 bytes per weight', () => {
    const base = loadConfig({ preset: 'peer1m-all-d256' });
    const bf = loadConfig({ preset: 'peer1m-all-d256', overrides: { 'model.ffn.bf16Tables': true } });
    const a = estimateMemory(base.model, base.train), b = estimateMemory(bf.model, bf.train);
    const tableWeights = a.detail.peerTableParams;
    assert.equal(tableWeights, 4 * 2 * 2 ** 20 * 256);
    assert.equal(a.params - b.params, tableWeights * 2);
    assert.equal(b.detail.peerTables, 'bf16');
    assert.equal(a.detail.peerTables, 'fp32');
    assert.equal(b.optimizer, a.optimizer, 'moments unchanged (bf16 in the preset)');
    // factored gradients: no [U, d] rows (1.8 GiB of them with fp32 tables)
    assert.ok(b.grads < a.grads / 10, `gradients ${b.grads} vs ${a.grads}`);
    assert.ok(b.total < 13.5 * 2 ** 30, `estimate ${b.total / 2 ** 30} GiB`);
    // with accumulation the chunks are formed into rows at the step: counted as rows again
    const acc = estimateMemory(bf.model, { ...bf.train, accum: 2 });
    assert.ok(acc.grads > a.grads, 'accum 2 counts the formed rows');
  });
});

describe('factored gradient chunks (bf16 tables)', () => {
  test('rows formed from the factors equal the stored-row path; sparse Adam on them equals Adam on the formed rows, across row blocks', () => {
    // N = 16384 experts, 16384 picks: U ~ 10k distinct rows > the 8192-row block of SparseAdam
    const d = 8, T = 1024, hk = 16, N = 16384;
    const mk = (seed: number) => { const t = new Tensor(toBf16(randn(N * d, seed, 0.3)), [N, d]); t.requiresGrad = true; return t; };
    const u = mk(1), v = mk(2);
    const ids = new Tensor(randint(T * hk, N, 3), [T, hk]), scores = new Tensor(randn(T * hk, 4), [T, hk]);
    const x = new Tensor(randn(T * d, 5), [T, d]);
    const y = peerExperts(x, ids, scores, u, v, { k: 4, activation: 'gelu', rowGrads: new RowGradPool(), factoredRowGrads: true });
    sumAll(mul(y, new Tensor(randn(T * d, 6), [T, d]))).backward();
    // the stored-row path on copies of the tables: the same rows up to float rounding
    const u2 = mk(1), v2 = mk(2);
    const y2 = peerExperts(x, ids, scores, u2, v2, { k: 4, activation: 'gelu', rowGrads: new RowGradPool() });
    sumAll(mul(y2, new Tensor(randn(T * d, 6), [T, d]))).backward();
    assertClose(rowGradValues(u.sparseGrad![0], d), u2.sparseGrad![0].values, 1e-5, 1e-6, 'u rows');
    assertClose(rowGradValues(v.sparseGrad![0], d), v2.sparseGrad![0].values, 1e-5, 1e-6, 'v rows');
    for (const t of [u, v]) {
      const [c] = t.sparseGrad!;
      assert.ok(c.factors && c.values.length === 0, 'a factored chunk');
      assert.ok(c.ids.length > 8192, `U = ${c.ids.length}`);
      // the same gradient through the stored-row kernels on the widened tables
      const rows = rowGradValues(c, d);
      const K = backend();
      const f = c.factors!, want = new Float32Array(c.ids.length * d);
      K.peerRowGrad(c.ids.length, d, f.per, f.offsets, f.order, f.coef, f.src, want);
      assert.deepEqual(rows, want);
      // SparseAdam on the factored chunk = on the formed rows
      const run = (chunk: RowSparseGrad) => {
        const p = new Tensor(t.bf16.slice(), t.shape);
        p.requiresGrad = true;
        p.sparseGrad = [chunk];
        const opt = new SparseAdam([['t', p]], { bf16Moments: true, seed: 3 });
        const norm = opt.gradSquaredNorm();
        opt.scaleGrads(0.5);
        opt.step(1e-2);
        return { p: p.bf16, norm };
      };
      const a = run({ ids: c.ids, values: new Float32Array(0), factors: { ...f, coef: f.coef.slice() } }), b = run({ ids: c.ids, values: rows.slice() });
      assert.ok(Math.abs(a.norm - b.norm) <= 1e-5 * b.norm, `norms ${a.norm} vs ${b.norm}`);
      let diff = 0;
      for (let i = 0; i < a.p.length; i++) diff += a.p[i] !== b.p[i] ? 1 : 0;
      // scaling the coefficients instead of the rows may move a rounding by one float ulp
      assert.ok(diff <= a.p.length / 1000, `${diff} weights differ`);
    }
  });
});
