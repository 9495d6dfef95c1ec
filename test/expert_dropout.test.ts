// Expert dropout (fine-tuning MoE models): expertMix drops the experts' hidden activations with the
// dropout kernel's mask, exactly as its formula says and differentiably (finite differences, both
// backends); the MoE layer draws it only in training, keyed by the forward seed; finetune turns it
// on only when asked, replays it for a seed, and leaves evaluation untouched.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ref, nativeKernels, setBackend, type Kernels } from '../src/backend/index.js';
import * as T from '../src/tensor/index.js';
import { tensor, noGrad } from '../src/tensor/index.js';
import { gradcheck } from './gradcheck.js';
import { randn } from './util.js';
import { loadConfig, buildModel, getTokenizer } from '../src/index.js';
import { finetune } from '../src/eval/finetune.js';
import { evaluateTask } from '../src/eval/task_eval.js';
import { parseTask } from '../src/eval/task_format.js';
import { MoE } from '../src/nn/moe.js';

const r = (shape: number[], seed: number, scale = 1) => tensor(randn(shape.reduce((a, b) => a * b, 1), seed, scale), shape);
const pos = (shape: number[], seed: number) => {
  const t = r(shape, seed);
  for (let i = 0; i < t.f32.length; i++) t.f32[i] = 0.5 + Math.abs(t.f32[i]);
  return t;
};
const Tn = 6, d = 5, E = 3, h = 4, k = 2;
const idx = Int32Array.of(0, 1, 0, 2, 1, 0, 0, 2, 1, 0, 2, 1);

/** The documented formula, slot by slot, with the dropout op's mask over the [N, h] activations in route order. */
function direct(x: T.Tensor, g: T.Tensor, w1: T.Tensor, b1: T.Tensor, w2: T.Tensor, b2: T.Tensor, route: T.Route, p: number, seed: number): Float32Array {
  const N = route.tok.length;
  const act = new Float32Array(N * h);
  const expertOf = (s: number): number => {
    let e = 0;
    while (s >= route.offsets[e + 1]) e++;
    return e;
  };
  for (let s = 0; s < N; s++) {
    const e = expertOf(s), t = route.tok[s];
    for (let j = 0; j < h; j++) {
      let a = b1.f32[e * h + j];
      for (let i = 0; i < d; i++) a += x.f32[t * d + i] * w1.f32[e * d * h + i * h + j];
      act[s * h + j] = a;
    }
  }
  const dropped = T.dropout(T.gelu(tensor(act, [N, h])), p, seed).f32;
  const out = new Float32Array(Tn * d);
  for (let s = 0; s < N; s++) {
    const e = expertOf(s), t = route.tok[s], gate = g.f32[route.slots[s]];
    for (let i = 0; i < d; i++) {
      let y = b2.f32[e * d + i];
      for (let j = 0; j < h; j++) y += dropped[s * h + j] * w2.f32[e * h * d + j * d + i];
      out[t * d + i] += gate * y;
    }
  }
  return out;
}

for (const [bname, kern] of [['ref', ref], ['native', nativeKernels()]] as [string, Kernels][]) {
  describe(`expertMix expert dropout on ${bname}`, () => {
    test.beforeEach(() => setBackend(kern));

    test('equals the formula; same seed same output; p = 0 is no dropout', () => {
      for (const cap of [Infinity, 3]) {
        const route = T.planRoute(idx, Tn, k, E, cap);
        const ins = [r([Tn, d], 1), pos([Tn, k], 2), r([E, d, h], 3, 0.5), r([E, h], 4, 0.3), r([E, h, d], 5, 0.5), r([E, d], 6, 0.3)] as const;
        const mix = (o?: { p: number; seed: number }) => noGrad(() => T.expertMix(...ins, route, { dropout: o }).f32);
        const got = mix({ p: 0.4, seed: 99 });
        const want = direct(...ins, route, 0.4, 99);
        for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-5 * (1 + Math.abs(want[i])), `cap ${cap} [${i}]: ${got[i]} vs ${want[i]}`);
        assert.deepEqual(mix({ p: 0.4, seed: 99 }), got);
        assert.notDeepEqual(mix({ p: 0.4, seed: 100 }), got);
        assert.notDeepEqual(mix(), got);
        assert.deepEqual(mix({ p: 0, seed: 99 }), mix());
      }
      const route = T.planRoute(idx, Tn, k, E, Infinity);
      assert.throws(() => T.expertMix(r([Tn, d], 1), pos([Tn, k], 2), r([E, d, h], 3), r([E, h], 4), r([E, h, d], 5), r([E, d], 6), route, { dropout: { p: 1, seed: 1 } }), /dropout p must be in \[0, 1\)/);
    });

    test('gradients match finite differences', () => {
      for (const cap of [Infinity, 3]) {
        const route = T.planRoute(idx, Tn, k, E, cap);
        gradcheck(`expertMix dropout capacity ${cap}`, (x, g, w1, b1, w2, b2) => T.expertMix(x, g, w1, b1, w2, b2, route, { dropout: { p: 0.3, seed: 7 } }),
          [r([Tn, d], 1), pos([Tn, k], 2), r([E, d, h], 3, 0.5), r([E, h], 4, 0.3), r([E, h, d], 5, 0.5), r([E, d], 6, 0.3)], { samples: 32 });
      }
    });
  });
}

const tok = getTokenizer('bytes');
const SMALL = { 'model.d': 32, 'model.layers': 2, 'model.heads': 2, 'model.seq': 32, 'train.batch': 4, 'train.warmup': 1, 'train.evalEvery': 100, 'train.evalBatches': 1 };
const task = parseTask(Array.from({ length: 24 }, (_, i) => JSON.stringify({
  context: `Item ${String.fromCharCode(65 + (i % 4))}${i}:`, choices: ['no', 'yes'], gold: i % 4 < 2 ? 1 : 0, split: i < 16 ? 'train' : 'test',
})).join('\n'), 'letters');

describe('expert dropout in the MoE layer and in fine-tuning', () => {
  test('the layer drops only in training, keyed by its seed; a training forward without a seed is refused', () => {
    const config = loadConfig({ preset: 'tiny-moe', overrides: SMALL });
    const model = buildModel(config.model, 1);
    const moe = model.modules().find((m): m is MoE => m instanceof MoE)!;
    const x = r([8, 32], 3);
    const run = (training: boolean, p: number | undefined, seed?: number) => {
      moe.train(training);
      moe.o.expertDropout = p;
      return noGrad(() => moe.forward(x, seed).f32.slice());
    };
    const plain = run(true, undefined, 5);
    assert.deepEqual(run(true, 0, 5), plain);
    const dropped = run(true, 0.5, 5);
    assert.notDeepEqual(dropped, plain);
    assert.deepEqual(run(true, 0.5, 5), dropped, 'same seed, same mask');
    assert.notDeepEqual(run(true, 0.5, 6), dropped);
    assert.deepEqual(run(false, 0.5, 5), run(false, undefined, 5), 'off in evaluation');
    moe.o.jitter = 0;
    assert.throws(() => run(true, 0.5, undefined), /expert dropout in training needs a random seed/);
    moe.o.expertDropout = undefined;
  });

  test('finetune: changes training only when set, replays for a seed, is restored, and evaluation is unaffected', () => {
    const config = loadConfig({ preset: 'tiny-moe', overrides: SMALL });
    const fresh = () => buildModel(config.model, 1);
    const o = { steps: 4, lr: 3e-3, batch: 4 };
    const base = finetune(fresh(), tok, config, task, o).losses;
    assert.deepEqual(finetune(fresh(), tok, config, task, { ...o, expertDropout: 0 }).losses, base, 'rate 0 is off');
    const m = fresh();
    const dropped = finetune(m, tok, config, task, { ...o, expertDropout: 0.5 }).losses;
    assert.notDeepEqual(dropped, base, 'expert dropout changes training');
    assert.deepEqual(finetune(fresh(), tok, config, task, { ...o, expertDropout: 0.5 }).losses, dropped, 'replayed for the same seed');
    const moes = m.modules().filter((x): x is MoE => x instanceof MoE);
    assert.ok(moes.length > 0 && moes.every((x) => x.o.expertDropout === undefined), 'restored after the fine-tune');
    // evaluation of the fine-tuned model does not drop, even with the rate left on
    const a = evaluateTask(m, tok, task).perTrial;
    for (const x of moes) x.o.expertDropout = 0.5;
    assert.deepEqual(evaluateTask(m, tok, task).perTrial, a);
    assert.throws(() => finetune(fresh(), tok, config, task, { ...o, expertDropout: 1 }), /expertDropout must be a number in \[0, 1\)/);
    // a dense model: no effect, and a notice says so
    const dense = loadConfig({ preset: 'tiny', overrides: SMALL });
    const notices: string[] = [];
    const dm = () => buildModel(dense.model, 1);
    assert.deepEqual(finetune(dm(), tok, dense, task, { ...o, expertDropout: 0.5, onNotice: (s) => notices.push(s) }).losses, finetune(dm(), tok, dense, task, o).losses);
    assert.match(notices.join(), /expert dropout 0\.5 has no effect: the model has no MoE layer/);
  });
});
