// The GPT's model-level contract: keyed randomness (dropout and router jitter are pure functions of
// the key the caller sets), evaluation outputs (hidden states, logits, per-token log-probs with
// masks, against brute force and the training loss), and cached decoding against the full forward.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ref, nativeKernels, setBackend, type Kernels } from '../src/backend/index.js';
import { Tensor, crossEntropy, noGrad } from '../src/tensor/index.js';
import { GPT, initGPT } from '../src/nn/gpt.js';
import { MLP } from '../src/nn/mlp.js';
import { MoE } from '../src/nn/moe.js';
import { Rng } from '../src/util/random.js';
import { assertClose, randint } from './util.js';

function backends(): [string, Kernels][] {
  const only = process.env.MOELAB_TEST_BACKEND;
  const all: [string, () => Kernels][] = [['ref', () => ref], ['native', nativeKernels]];
  return all.filter(([n]) => !only || n === only).map(([n, k]) => [n, k()]);
}

/** Two layers: dense then MoE (jitter on), random init; `V` vocabulary. */
function makeGPT(opts: { dropout?: number; jitter?: number; V?: number; seed?: number } = {}): GPT {
  const d = 16;
  const model = new GPT({ vocabSize: opts.V ?? 64, d, layers: 2, heads: 2, seq: 12, dropout: opts.dropout ?? 0, lnEps: 1e-5 },
    (i) => (i === 0 ? new MLP(d, 32) : new MoE(d, {
      experts: 4, topk: 2, hidden: 16, granularity: 1, sharedExperts: 0, capacityFactor: 1, evalCapacityFactor: 0,
      renormalize: true, jitter: opts.jitter ?? 0, auxCoef: 0.01, zCoef: 0.001,
    })), opts.seed ?? 3);
  initGPT(model, new Rng(5, 2));
  return model;
}

const B = 2, S = 10;
const batch = (V: number, seed: number) => ({
  x: new Tensor(randint(B * S, V, seed), [B, S]),
  y: new Tensor(randint(B * S, V, seed + 1), [B, S]),
});

for (const [bname, kern] of backends()) {
  describe(`GPT on ${bname}`, () => {
    test.beforeEach(() => setBackend(kern));

    test('random key: same key, same dropout masks and jitter; other micro or step, other noise', () => {
      const model = makeGPT({ dropout: 0.2, jitter: 0.3 });
      const { x, y } = batch(64, 1);
      const run = (step: number, micro: number) => {
        model.setRandomKey(step, micro);
        const r = noGrad(() => model.forward(x, y));
        return { logits: r.logits.f32.slice(), loss: r.loss!.item(), aux: r.aux!.item() };
      };
      const a = run(4, 1);
      run(4, 2); // a forward in between must not change what (4, 1) draws
      run(9, 0);
      const b = run(4, 1);
      assertClose(b.logits, a.logits, 0, 0, 'same key: logits');
      assert.equal(b.loss, a.loss);
      assert.equal(b.aux, a.aux);
      // the same key in a fresh model with the same weights and seed: nothing hidden in the instance
      const fresh = makeGPT({ dropout: 0.2, jitter: 0.3 });
      fresh.setRandomKey(4, 1);
      assertClose(noGrad(() => fresh.forward(x)).logits.f32, a.logits, 0, 0, 'fresh model, same key');
      const otherMicro = run(4, 2), otherStep = run(5, 1);
      assert.notEqual(otherMicro.loss, a.loss, 'another micro-batch draws other masks');
      assert.notEqual(otherStep.loss, a.loss, 'another step draws other masks');
      // jitter alone (no dropout) also follows the key
      const jit = makeGPT({ jitter: 0.3 });
      jit.setRandomKey(0, 0);
      const j0 = noGrad(() => jit.forward(x, y)).aux!.item();
      jit.setRandomKey(0, 1);
      assert.notEqual(noGrad(() => jit.forward(x, y)).aux!.item(), j0, 'jitter depends on the micro key');
      jit.setRandomKey(0, 0);
      assert.equal(noGrad(() => jit.forward(x, y)).aux!.item(), j0);
      // another model seed, other noise
      const other = makeGPT({ dropout: 0.2, jitter: 0.3, seed: 4 });
      other.setRandomKey(4, 1);
      assert.notEqual(noGrad(() => other.forward(x, y)).loss!.item(), a.loss);
    });

    test('random key: required only when a forward draws noise; bad keys are rejected', () => {
      const { x, y } = batch(64, 2);
      assert.throws(() => makeGPT({ dropout: 0.1 }).forward(x, y), /setRandomKey/);
      assert.throws(() => makeGPT({ jitter: 0.1 }).forward(x, y), /random seed/);
      assert.doesNotThrow(() => makeGPT().forward(x, y), 'no noise, no key needed');
      assert.doesNotThrow(() => makeGPT({ dropout: 0.1, jitter: 0.1 }).eval().forward(x, y), 'eval draws nothing');
      const m = makeGPT();
      assert.throws(() => m.setRandomKey(-1, 0), /step and micro/);
      assert.throws(() => m.setRandomKey(0, 1.5), /step and micro/);
      assert.equal(m.randomKey(), null);
      m.setRandomKey(3, 2);
      assert.deepEqual(m.randomKey(), { step: 3, micro: 2 });
      // eval with the same weights ignores dropout: equals a dropout-free model
      const a = makeGPT({ dropout: 0.3 }).eval(), b = makeGPT().eval();
      assertClose(noGrad(() => a.logits(x)).f32, noGrad(() => b.logits(x)).f32, 0, 0, 'eval: no dropout');
    });

    test('hidden states feed the logits; log-probs equal brute force and the training loss', () => {
      const V = 64;
      const model = makeGPT({ V }).eval();
      const { x, y } = batch(V, 3);
      const hidden = noGrad(() => model.hiddenStates(x));
      assert.deepEqual(hidden.shape, [B, S, 16]);
      const logits = noGrad(() => model.logits(x));
      assert.deepEqual(logits.shape, [B, S, V]);
      assertClose(noGrad(() => model.head(hidden)).f32, logits.f32, 0, 0, 'head(hiddenStates) == logits');
      const train = noGrad(() => model.forward(x, y));
      assertClose(train.logits.f32, logits.f32, 0, 0, 'forward logits == logits');
      // brute force in float64 from the logits
      const L = logits.f32, t = y.i32;
      const brute = new Float64Array(B * S);
      for (let r = 0; r < B * S; r++) {
        let m = -Infinity;
        for (let j = 0; j < V; j++) m = Math.max(m, L[r * V + j]);
        let s = 0;
        for (let j = 0; j < V; j++) s += Math.exp(L[r * V + j] - m);
        brute[r] = L[r * V + t[r]] - m - Math.log(s);
      }
      const lp = noGrad(() => model.tokenLogProbs(x, y));
      assert.deepEqual(lp.shape, [B, S]);
      assertClose(lp.f32, brute, 1e-5, 1e-6, 'log-probs vs brute force');
      // masked: masked positions are 0, the masked mean of -logp is the loss with those targets ignored
      const mask = Float32Array.from({ length: B * S }, (_, i) => (i % 3 === 1 ? 0 : 1));
      const mlp = noGrad(() => model.tokenLogProbs(x, y, mask)).f32;
      const yIgn = new Tensor(Int32Array.from(t, (v, i) => (mask[i] ? v : -1)), [B * S]);
      let sum = 0, n = 0;
      for (let i = 0; i < B * S; i++) {
        if (mask[i]) { sum -= mlp[i]; n++; assert.equal(mlp[i], lp.f32[i]); } else assert.equal(mlp[i], 0);
      }
      const lossIgn = noGrad(() => crossEntropy(logits, yIgn)).item();
      assert.ok(Math.abs(sum / n - lossIgn) <= 1e-6 * lossIgn, `masked mean ${sum / n} vs loss ${lossIgn}`);
      // unmasked mean == the training loss; a Tensor mask works like the array
      let all = 0;
      for (const v of lp.f32) all -= v;
      assert.ok(Math.abs(all / (B * S) - train.loss!.item()) <= 1e-6 * train.loss!.item());
      assertClose(noGrad(() => model.tokenLogProbs(x, y, new Tensor(mask, [B, S]))).f32, mlp, 0, 0, 'Tensor mask');
      assert.throws(() => model.tokenLogProbs(x, y, new Float32Array(3)), /mask has 3/);
      assert.throws(() => noGrad(() => model.tokenLogProbs(x, y, new Float32Array(B * S).fill(0.5))), /0 \(excluded\) or 1/);
    });

    test('log-probs: chunked (no graph) and differentiable paths agree; large vocabulary', () => {
      const V = 70000; // 59 rows per chunk: 20 rows per batch item, 40 rows -> several chunks
      const model = makeGPT({ V }).eval();
      const { x, y } = batch(V, 4);
      const mask = Float32Array.from({ length: B * S }, (_, i) => (i % 4 === 0 ? 0 : 1));
      const chunked = noGrad(() => model.tokenLogProbs(x, y, mask)).f32;
      const graph = model.tokenLogProbs(x, y, mask);
      assert.ok(graph.requiresGrad, 'with grad on the result is differentiable');
      assertClose(chunked, graph.f32, 1e-6, 1e-6, 'chunked vs full');
      graph.backward(new Float32Array(B * S).fill(1));
      assert.ok(model.tok.weight.grad, 'gradient reaches the embedding');
    });

    test('cached decoding equals the full forward at every position', () => {
      const model = makeGPT().eval();
      const ids = randint(9, 64, 7);
      const full = noGrad(() => model.logits(new Tensor(ids, [1, 9]))).f32;
      const cache = model.newCache(9);
      let got = model.forwardCached(ids.subarray(0, 4), cache);
      assertClose(got, full.subarray(3 * 64, 4 * 64), 1e-5, 1e-5, 'prefix of 4');
      for (let p = 4; p < 9; p++) {
        got = model.forwardCached(ids.subarray(p, p + 1), cache);
        assertClose(got, full.subarray(p * 64, (p + 1) * 64), 1e-5, 1e-5, `position ${p}`);
      }
      assert.throws(() => model.forwardCached(ids.subarray(0, 1), cache), /KV cache full/);
    });
  });
}
