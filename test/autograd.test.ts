// Every differentiable op against finite differences, on odd shapes and broadcast cases, on both
// the reference and the native backend. Also the graph mechanics: accumulation, noGrad, detach,
// release of saved buffers.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ref, nativeKernels, setBackend, type Kernels } from '../src/backend/index.js';
import * as T from '../src/tensor/index.js';
import { Tensor, tensor, intTensor } from '../src/tensor/index.js';
import { gradcheck } from './gradcheck.js';
import { randn, randint } from './util.js';

const r = (shape: number[], seed: number, scale = 1) => tensor(randn(shape.reduce((a, b) => a * b, 1), seed, scale), shape);
/** Values in [0.5, inf) (gates that must be positive). */
const pos = (shape: number[], seed: number) => {
  const t = r(shape, seed);
  const d = t.f32;
  for (let i = 0; i < d.length; i++) d[i] = 0.5 + Math.abs(d[i]);
  return t;
};

function backends(): [string, Kernels][] {
  const out: [string, Kernels][] = [['ref', ref]];
  out.push(['native', nativeKernels()]);
  return out;
}

for (const [bname, kern] of backends()) {
  describe(`autograd on ${bname}`, () => {
    test.beforeEach(() => setBackend(kern));

    test('broadcast binary ops', () => {
      for (const [sa, sb] of [[[7, 33], [7, 33]], [[7, 33], [33]], [[7, 1], [1, 33]], [[2, 7, 33], [7, 1]], [[1], [257]], [[33], []]] as number[][][]) {
        gradcheck(`add ${sa}|${sb}`, (a, b) => T.add(a, b), [r(sa, 1), r(sb, 2)]);
        gradcheck(`mul ${sa}|${sb}`, (a, b) => T.mul(a, b), [r(sa, 5), r(sb, 6)]);
      }
      gradcheck('same tensor twice', (a) => T.mul(a, a), [r([7, 33], 9)]);
    });

    test('unary ops', () => {
      const shapes = [[1], [7], [33, 7], [257]];
      for (const s of shapes) {
        gradcheck(`gelu ${s}`, T.gelu, [r(s, 5)]);
        gradcheck(`sigmoid ${s}`, T.sigmoid, [r(s, 9)]);
      }
    });

    test('reductions and softmax', () => {
      for (const s of [[7, 33], [1, 257], [3, 7, 5]]) {
        for (let ax = 0; ax < s.length; ax++) {
          gradcheck(`sum ${s} axis ${ax}`, (a) => T.sum(a, ax), [r(s, ax + 1)]);
          gradcheck(`mean ${s} axis ${ax}`, (a) => T.mean(a, ax, true), [r(s, ax + 2)]);
        }
        gradcheck(`softmax ${s}`, T.softmax, [r(s, 4)]);
        gradcheck(`logSoftmax ${s}`, T.logSoftmax, [r(s, 5)]);
      }
      gradcheck('sumAll', T.sumAll, [r([7, 33], 6)]);
      gradcheck('meanAll', T.meanAll, [r([257], 7)]);
    });

    test('linear', () => {
      for (const [m, k, n] of [[1, 1, 1], [7, 33, 1], [33, 7, 257], [5, 64, 9]]) {
        gradcheck(`linear ${m}x${k}->${n}`, (x, w, b) => T.linear(x, w, b), [r([m, k], 7), r([n, k], 8), r([n], 9)]);
      }
      gradcheck('linear 3-d input no bias', (x, w) => T.linear(x, w, null), [r([2, 7, 33], 14), r([5, 33], 15)]);
    });

    test('layerNorm, crossEntropy, embedding, dropout', () => {
      for (const [rows, d] of [[1, 7], [7, 33], [3, 257]]) {
        gradcheck(`layerNorm ${rows}x${d}`, (x, w, b) => T.layerNorm(x, w, b), [r([rows, d], 1), r([d], 2), r([d], 3)]);
      }
      for (const [N, V] of [[1, 7], [7, 33], [5, 257]]) {
        const t = randint(N, V, N);
        if (N > 2) t[1] = -1; // an ignored position
        const targets = intTensor(t);
        gradcheck(`crossEntropy ${N}x${V}`, (l) => T.crossEntropy(l, targets), [r([N, V], 4, 2)]);
      }
      const ids = intTensor(Int32Array.from([3, 0, 3, 6, 1, 3, 2]), [7]);
      gradcheck('embedding (repeated ids)', (tbl) => T.embedding(tbl, ids), [r([7, 33], 5)]);
      gradcheck('dropout p=0.3', (x) => T.dropout(x, 0.3, 1234), [r([7, 33], 6)]);
    });

    test('causal attention', () => {
      for (const [B, S, H, hd] of [[1, 1, 1, 1], [1, 7, 2, 3], [2, 33, 1, 7], [1, 9, 4, 16]]) {
        gradcheck(`attention B${B} S${S} H${H} hd${hd}`, (qkv) => T.causalAttention(qkv, H), [r([B, S, 3 * H * hd], S + H)], { samples: 32 });
      }
    });

    test('indexing ops', () => {
      // distinct values spaced well beyond the finite-difference step, so the chosen set is stable
      const distinct = tensor(Float32Array.from({ length: 7 * 33 }, (_, i) => ((i * 37) % 231) * 0.05), [7, 33]);
      gradcheck('topk', (x) => T.topk(x, 3).values, [distinct]);
      const idx = intTensor(randint(7 * 5, 33, 2), [7, 5]);
      gradcheck('gather', (x) => T.gather(x, idx), [r([7, 33], 3)]);
      const rows = intTensor(Int32Array.from([2, 0, 2, 6]), [4]);
      gradcheck('indexSelect', (x) => T.indexSelect(x, rows), [r([7, 33], 4)]);
    });

    test('MoE ops: expertMix, renormalizeRows, balanceLoss, zLoss, jitter', () => {
      const Tn = 6, d = 5, E = 3, h = 4, k = 2;
      // slots per expert: 0 -> 5, 1 -> 4, 2 -> 3; capacity 3 drops two of expert 0 and one of expert 1
      const idx = Int32Array.of(0, 1, 0, 2, 1, 0, 0, 2, 1, 0, 2, 1);
      for (const cap of [Infinity, 3]) {
        const route = T.planRoute(idx, Tn, k, E, cap);
        gradcheck(`expertMix capacity ${cap}`, (x, g, w1, b1, w2, b2) => T.expertMix(x, g, w1, b1, w2, b2, route),
          [r([Tn, d], 1), pos([Tn, k], 2), r([E, d, h], 3, 0.5), r([E, h], 4, 0.3), r([E, h, d], 5, 0.5), r([E, d], 6, 0.3)],
          { samples: 32 });
      }
      assert.throws(() => T.expertMix(r([5, d], 1), pos([5, k], 2), r([E, d, h], 3), r([E, h], 4), r([E, h, d], 5), r([E, d], 6),
        T.planRoute(idx, Tn, k, E, Infinity)), /route does not match/);
      assert.throws(() => T.planRoute(idx, 5, k, E, Infinity), /T\*k = 10/);
      gradcheck('renormalizeRows', T.renormalizeRows, [pos([7, 3], 7)]);
      // batch-level (one group) and sequence-level (two sequences of 3 tokens) balance, through softmax
      for (const counts of [Int32Array.of(5, 4, 3), Int32Array.of(3, 2, 1, 2, 2, 2)]) {
        gradcheck(`balanceLoss ${counts.length / E} group(s)`, (l) => T.balanceLoss(T.softmax(l), counts), [r([Tn, E], 8, 2)], { eps: 1e-3 });
      }
      gradcheck('zLoss', (l) => T.zLoss(l), [r([Tn, E], 8, 2)], { eps: 1e-3 });
      gradcheck('jitter', (x) => T.jitter(x, 0.3, 9), [r([7, 33], 10)]);
    });

    test('tokenLogProbs with masks and ignored targets', () => {
      const t = randint(7, 33, 3);
      t[2] = -1;
      const targets = intTensor(t);
      const mask = Float32Array.of(1, 0, 1, 1, 0, 1, 1);
      gradcheck('tokenLogProbs', (l) => T.tokenLogProbs(l, targets), [r([7, 33], 11, 2)]);
      gradcheck('tokenLogProbs masked', (l) => T.tokenLogProbs(l, targets, mask), [r([7, 33], 12, 2)]);
      gradcheck('tokenLogProbs 3-d logits', (l) => T.tokenLogProbs(l, intTensor(randint(6, 9, 4), [2, 3])), [r([2, 3, 9], 13, 2)]);
    });

    test('views: reshape, permute, slice, contiguous', () => {
      gradcheck('reshape', (x) => T.mul(x.reshape(33, 7), 3), [r([7, 33], 1)]);
      gradcheck('permute', (x) => x.permute(2, 0, 1).contiguous(), [r([3, 5, 7], 2)]);
      gradcheck('slice', (x) => T.slice(x, 1, 2, 9).contiguous(), [r([7, 33], 3)]);
      gradcheck('transpose then linear', (x, w) => T.linear(x.transpose(0, 1), w, null), [r([33, 7], 4), r([5, 33], 5)]);
    });
  });
}

describe('graph mechanics', () => {
  test.beforeEach(() => setBackend(ref));

  test('gradients accumulate across backward calls and over shared uses', () => {
    const x = tensor([1, 2, 3], [3], { requiresGrad: true });
    T.sumAll(T.mul(x, x)).backward();
    T.sumAll(T.mul(x, 2)).backward();
    assert.deepEqual(Array.from(x.grad!.f32), [4, 6, 8]);
  });

  test('noGrad records nothing; detach cuts the graph', () => {
    const x = tensor([1, 2], [2], { requiresGrad: true });
    const y = T.noGrad(() => T.mul(x, 3));
    assert.equal(y.requiresGrad, false);
    assert.equal(y.node, null);
    const z = T.mul(x.detach(), 3);
    assert.equal(z.requiresGrad, false);
    assert.throws(() => T.sumAll(z).backward(), /does not require grad/);
  });

  test('saved buffers are released after backward', () => {
    const x = tensor(randn(64, 1), [8, 8], { requiresGrad: true });
    const h = T.gelu(T.linear(x, x, null));
    const loss = T.sumAll(h);
    loss.backward();
    assert.equal(loss.node!.backward, null);
    assert.equal(h.node!.backward, null);
    assert.equal(h.node!.inputs.length, 0);
    assert.throws(() => loss.backward(), /already freed/);
  });

  test('clear errors for bad shapes and dtypes', () => {
    assert.throws(() => T.add(tensor(randn(6, 1), [2, 3]), tensor(randn(4, 1), [4])), /do not broadcast/);
    assert.throws(() => T.linear(tensor(randn(6, 1), [2, 3]), tensor(randn(8, 1), [2, 4]), null), /does not match/);
    assert.throws(() => T.gelu(intTensor([1, 2])), /float32/);
    assert.throws(() => new Tensor(new Float32Array(3), [2, 2]), /too small/);
    assert.throws(() => T.topk(tensor(randn(4, 1), [4]), 5), /k=5/);
  });
});
