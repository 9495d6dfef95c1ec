// Routing variants of the MoE layer: sigmoid gates, loss-free balancing bias (selection only),
// expert choice, uniform routing and the sequence-level balance against the brute-force loop
// (including all-tied scores), finite-difference gradients, the bias update rule and a skewed
// router driven to balance, expert choice's evaluation fallback, and the statistics window.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { setBackend } from '../src/backend/index.js';
import { Tensor, tensor, add, mul, noGrad, sumAll } from '../src/tensor/index.js';
import { MoE, type MoEOptions } from '../src/nn/moe.js';
import { gradcheck } from './gradcheck.js';
import { assertClose, randn } from './util.js';
import { backends, makeMoE, checkAgainstBrute, bruteForce } from './moe_brute.js';

const d = 8;

/** A MoE whose router sends most tokens of `skewedInput` to expert 0. */
function skewed(over: Partial<MoEOptions>): MoE {
  const m = makeMoE(d, { experts: 8, topk: 1, auxCoef: 0, ...over }, 51);
  const W = m.router.weight.f32;
  W.set(randn(W.length, 52, 0.1));
  W[0] = 4; // expert 0's logit grows with x[:, 0], which skewedInput makes positive
  return m;
}
const skewedInput = (T: number, seed: number): Tensor => {
  const x = randn(T * d, seed);
  for (let t = 0; t < T; t++) x[t * d] = Math.abs(x[t * d]) + 0.5;
  return new Tensor(x, [T, d]);
};

for (const [bname, kern] of backends()) {
  describe(`MoE routing on ${bname}`, () => {
    test.beforeEach(() => setBackend(kern));

    test('every routing variant equals the brute-force loop', () => {
      const T = 13;
      checkAgainstBrute('sigmoid', makeMoE(d, { gate: 'sigmoid' }, 1), T, 1);
      checkAgainstBrute('sigmoid no renorm', makeMoE(d, { gate: 'sigmoid', renormalize: false, topk: 3, experts: 6 }, 2), T, 2);
      checkAgainstBrute('sigmoid capacity 0.5', makeMoE(d, { gate: 'sigmoid', capacityFactor: 0.5 }, 3), T, 3);
      checkAgainstBrute('seq-aux, 1 sequence', makeMoE(d, { balance: 'seq-aux' }, 4), 12, 4);
      const seq = checkAgainstBrute('seq-aux, 3 sequences', makeMoE(d, { balance: 'seq-aux' }, 4), 12, 4, 4);
      const batch = checkAgainstBrute('aux, 3 sequences', makeMoE(d, {}, 4), 12, 4, 4);
      assert.notEqual(seq.balance, batch.balance, 'the sequence-level loss is not the batch-level one');
      checkAgainstBrute('seq-aux sigmoid', makeMoE(d, { balance: 'seq-aux', gate: 'sigmoid' }, 5), 12, 5, 6);
      checkAgainstBrute('no balance', makeMoE(d, { balance: 'none' }, 5), T, 5);
      // the bias moves selection, not gates: with a large bias on expert 3 every token picks it
      const b = makeMoE(d, { expertBias: true }, 6);
      b.bias!.f32.set([0.05, -0.1, 0.02, 5]);
      const r = checkAgainstBrute('bias', b, T, 6);
      assert.ok(r.kept.filter(({ e }) => e === 3).length === T, 'every token picks the biased expert');
      assert.ok(r.kept.every(({ g }) => g < 1), 'gates are the unbiased scores');
      checkAgainstBrute('bias sigmoid', Object.assign(makeMoE(d, { expertBias: true, gate: 'sigmoid' }, 7)), T, 7);
      checkAgainstBrute('uniform', makeMoE(d, { routing: 'uniform' }, 8), T, 8);
      checkAgainstBrute('uniform sigmoid capacity', makeMoE(d, { routing: 'uniform', gate: 'sigmoid', capacityFactor: 0.8, topk: 3, experts: 5 }, 9), T, 9);
      for (const cf of [0.25, 1, 2, 10]) {
        const m = makeMoE(d, { routing: 'expert-choice', capacityFactor: cf }, 10);
        assert.equal(m.capacity(T), Math.min(T, Math.ceil((cf * T * 2) / 4)));
        const e = checkAgainstBrute(`expert choice cf ${cf}`, m, T, 10);
        assert.equal(e.kept.length, 4 * m.capacity(T));
      }
      checkAgainstBrute('expert choice sigmoid + shared, granularity 2',
        makeMoE(d, { routing: 'expert-choice', capacityFactor: 1, gate: 'sigmoid', sharedExperts: 1, granularity: 2 }, 11), T, 11);
    });

    test('all-tied scores: token choice takes the first experts, expert choice the first tokens', () => {
      const T = 9;
      for (const over of [{}, { routing: 'expert-choice', capacityFactor: 1 }, { gate: 'sigmoid' }, { expertBias: true }] as Partial<MoEOptions>[]) {
        const m = makeMoE(d, over, 12);
        m.router.weight.f32.fill(0);
        const b = checkAgainstBrute(`tied ${JSON.stringify(over)}`, m, T, 12);
        if (over.routing === 'expert-choice') {
          const C = m.capacity(T);
          assert.deepEqual(b.kept.map(({ t }) => t), Array.from({ length: 4 }, () => [...Array(C).keys()]).flat());
        } else {
          assert.deepEqual(b.kept.map(({ e }) => e), Array(T).fill([0, 1]).flat());
        }
      }
    });

    test('finite-difference gradients: sigmoid gates, sequence-level balance, bias, expert choice, uniform', () => {
      const T = 8, dd = 5;
      const cases: [string, Partial<MoEOptions>, number][] = [
        ['sigmoid', { gate: 'sigmoid' }, T],
        ['sigmoid no renorm', { gate: 'sigmoid', renormalize: false, topk: 1 }, T],
        ['seq-aux', { balance: 'seq-aux' }, 4],
        ['seq-aux sigmoid', { balance: 'seq-aux', gate: 'sigmoid' }, 2],
        ['bias', { expertBias: true }, T],
        ['expert choice', { routing: 'expert-choice', capacityFactor: 1 }, T],
        ['expert choice sigmoid', { routing: 'expert-choice', capacityFactor: 0.75, gate: 'sigmoid' }, T],
        ['uniform', { routing: 'uniform' }, T],
      ];
      for (const [label, over, S] of cases) {
        const m = makeMoE(dd, { hidden: 6, ...over, auxCoef: 0.7, zCoef: 0.3 }, 21);
        if (m.bias) m.bias.f32.set([0.3, -0.2, 0.1, 0]);
        const x = tensor(randn(T * dd, 22), [T, dd]);
        const w = new Tensor(randn(T * dd, 23), [T, dd]);
        const fn = (xi: Tensor): Tensor => add(sumAll(mul(m.forward(xi, undefined, S), w)), m.auxLoss()!);
        gradcheck(`MoE ${label}`, fn, [x, ...m.parameters()], { eps: 1e-3, rtol: 1e-2, atol: 2e-3, samples: 16 });
        gradcheck(`MoE ${label} losses`, (xi: Tensor) => {
          m.forward(xi, undefined, S);
          return m.auxLoss()!;
        }, [x, m.router.weight], { eps: 1e-3, rtol: 1e-2, atol: 1e-3 });
      }
    });

    test('loss-free balancing: the update rule, training forwards only, and a skewed router driven to balance', () => {
      const T = 64;
      const m = skewed({ expertBias: true, biasRate: 0.01 });
      const x = skewedInput(T, 53);
      noGrad(() => m.forward(x));
      const load = [...(m.stats()!.load as number[])].map((l) => l * T);
      noGrad(() => m.eval().forward(x)); // evaluation forwards do not count toward the update
      m.train();
      m.afterStep();
      assert.deepEqual([...m.bias!.f32], load.map((n) => Math.fround(0.01 * Math.sign(T / 8 - n))));
      m.afterStep(); // nothing routed since: no change
      assert.deepEqual([...m.bias!.f32], load.map((n) => Math.fround(0.01 * Math.sign(T / 8 - n))));

      const run = (mm: MoE, steps: number): { imbalance: number; dead: number } => {
        for (let s = 0; s < steps; s++) {
          noGrad(() => mm.forward(skewedInput(T, 100 + s)));
          mm.afterStep();
        }
        mm.resetStats();
        noGrad(() => mm.forward(skewedInput(4 * T, 999)));
        const st = mm.stats()!;
        return { imbalance: st.imbalance as number, dead: st.deadExperts as number };
      };
      const none = run(skewed({}), 150), free = run(skewed({ expertBias: true, biasRate: 0.01 }), 150);
      assert.ok(none.imbalance > 4, `the skewed router sends most tokens to one expert (imbalance ${none.imbalance})`);
      assert.ok(free.imbalance < 2 && free.dead === 0, `loss-free balancing: imbalance ${free.imbalance}, dead ${free.dead}`);
      const b = skewed({ expertBias: true, biasRate: 0.01 });
      run(b, 150);
      assert.ok(b.bias!.f32[0] < 0 && Math.min(...b.bias!.f32.subarray(1)) > b.bias!.f32[0], 'the crowded expert gets the lowest bias');
    });

    test('expert choice: evaluation falls back to causal token choice on the same router', () => {
      const T = 10;
      const m = makeMoE(d, { routing: 'expert-choice', capacityFactor: 1 }, 31);
      assert.equal(m.routing.evalRouting, 'token-choice');
      const x = randn(T * d, 32);
      m.eval();
      checkAgainstBrute('eval', m, T, 32);
      const tc = makeMoE(d, {}, 31).eval(); // the same weights routed by token choice
      assertClose(noGrad(() => m.forward(new Tensor(x.slice(), [T, d]))).f32, noGrad(() => tc.forward(new Tensor(x.slice(), [T, d]))).f32, 0, 0, 'eval = token choice');
      // training-mode expert choice ranks tokens across the batch: a later token changes an earlier one's experts
      m.train();
      const x2 = x.slice();
      for (let i = 0; i < d; i++) x2[(T - 1) * d + i] = 5 * x[i];
      const y1 = noGrad(() => m.forward(new Tensor(x.slice(), [T, d]))).f32.slice();
      const y2 = noGrad(() => m.forward(new Tensor(x2, [T, d]))).f32;
      assert.ok(y1.subarray(0, (T - 1) * d).some((v, i) => v !== y2[i]), 'expert choice is not causal');
      m.eval(); // token choice: earlier tokens do not see the last one
      const e1 = noGrad(() => m.forward(new Tensor(x.slice(), [T, d]))).f32.slice();
      const e2 = noGrad(() => m.forward(new Tensor(x2, [T, d]))).f32;
      assertClose(e1.subarray(0, (T - 1) * d), e2.subarray(0, (T - 1) * d), 0, 0, 'token choice is causal');
      m.train();
      // expert choice both ways is allowed when asked for
      const both = makeMoE(d, { routing: 'expert-choice', evalRouting: 'expert-choice', capacityFactor: 1, evalCapacityFactor: 2 }, 33).eval();
      assert.equal(both.capacity(T), Math.ceil((2 * T * 2) / 4));
      checkAgainstBrute('eval expert choice', both, T, 34);
      assert.throws(() => makeMoE(d, { routing: 'expert-choice', capacityFactor: 0 }, 1).forward(new Tensor(x, [T, d])), /needs a capacity factor > 0/);
      assert.throws(() => makeMoE(d, { routing: 'expert-choice', capacityFactor: 1, expertBias: true }, 1), /expert choice is balanced by construction/);
    });

    test('uniform routing spreads assignments evenly whatever the scores', () => {
      const m = skewed({ routing: 'uniform', topk: 2 });
      noGrad(() => m.forward(skewedInput(40, 41)));
      assert.deepEqual(m.stats()!.load, Array(8).fill(1 / 8));
      assert.equal(m.stats()!.imbalance, 1);
    });

    test('statistics summarise every forward since resetStats: dead experts, utilisation, unrouted tokens, bias', () => {
      const m = makeMoE(d, { experts: 8, topk: 1, expertBias: true }, 61);
      m.bias!.f32.set([0, 0, 0, 0, 0, 0, -10, -10]); // experts 6 and 7 never win
      const x1 = randn(12 * d, 62), x2 = randn(20 * d, 63);
      m.resetStats();
      noGrad(() => m.forward(new Tensor(x1, [12, d])));
      noGrad(() => m.forward(new Tensor(x2, [20, d])));
      const st = m.stats()!;
      const counts = [0, 0, 0, 0, 0, 0, 0, 0];
      for (const [x, T] of [[x1, 12], [x2, 20]] as const) for (const { e } of bruteForce(m, x, T).kept) counts[e]++;
      assert.equal(st.tokens, 32);
      assertClose(st.load as number[], counts.map((c) => c / 32), 0, 1e-12, 'load over both forwards');
      assertClose(st.utilisation as number[], counts.map((c) => (c / 32) * 8), 0, 1e-12, 'utilisation');
      assert.equal(st.imbalance, Math.max(...counts) / 4);
      assert.equal(st.deadExperts, counts.filter((c) => c === 0).length);
      assert.ok((st.deadExperts as number) >= 2);
      assert.equal(st.unroutedTokens, 0);
      assert.deepEqual(st.bias, [0, 0, 0, 0, 0, 0, -10, -10]);
      assert.deepEqual([st.biasMin, st.biasMax], [-10, 0]);
      m.resetStats();
      assert.equal(m.stats(), null, 'an empty window has no statistics');
      // expert choice with a small capacity leaves tokens without any expert
      const ec = makeMoE(d, { routing: 'expert-choice', capacityFactor: 0.25 }, 64);
      noGrad(() => ec.forward(new Tensor(x2, [20, d])));
      const covered = new Set(bruteForce(ec, x2, 20).kept.map(({ t }) => t)).size;
      assert.equal(ec.stats()!.unroutedTokens, (20 - covered) / 20);
      assert.ok((ec.stats()!.unroutedTokens as number) > 0);
    });
  });
}
