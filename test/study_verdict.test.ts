// The studies' verdicts on made-up results: each outcome follows the numbers (flip the numbers, the
// verdict flips), and the tables behind it are in the details.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getStudy, compareResults, type SweepResult } from '../src/index.js';

function res(p: Partial<SweepResult> & { family: string; seed: number; budget: number; valLoss: number }): SweepResult {
  return {
    hash: `${p.family}-${p.seed}-${p.budget}-${JSON.stringify(p.axes ?? {})}`, name: `${p.family}-C${p.budget}`, group: `${p.family}-${p.budget}-${JSON.stringify(p.axes ?? {})}`,
    axes: {}, inSpec: true, steps: 10, paramsTotal: 1000, paramsActive: 1000, flopsPerToken: 1, tokens: p.budget, trainingFlops: p.budget, sparsity: 0, ...p,
  };
}

const judge = (name: string, rs: SweepResult[]) => getStudy(name).verdict(rs, compareResults(rs));

test('sparsity: loss falling with S at every budget holds; rising does not', () => {
  const levels = [0, 0.5, 0.75, 0.875];
  const make = (sign: number) => [1e12, 4e12].flatMap((budget, bi) => levels.flatMap((S, i) => [0, 1].map((seed) => res({
    family: `moe-E${2 << i}-k2`, seed, budget, sparsity: S, valLoss: 3 - 0.3 * bi + sign * 0.05 * i + (seed ? 0.005 : -0.005),
  }))));
  const v = judge('sparsity', make(-1));
  assert.equal(v.outcome, 'holds');
  assert.match(v.summary, /loss\(S=0\.875\) - loss\(S=0\) is -0\.1500 \(z 21\.2\) at 1\.000e\+12 FLOPs, -0\.1500 \(z 21\.2\) at 4\.000e\+12 FLOPs \(z positive when S=0\.875 has the lower loss\)/);
  assert.match(v.summary, /at 1\.000e\+12 FLOPs the mean loss falls at every step up in sparsity/);
  assert.match(v.details, /\| sparsity S \| loss at 1\.000e\+12 FLOPs \| loss at 4\.000e\+12 FLOPs \|/);
  const w = judge('sparsity', make(+1));
  assert.equal(w.outcome, 'does not hold');
  assert.match(w.summary, /does not fall at every step up in sparsity/);
});

test('moe-vs-dense: multiplier per seed decides; paired tables per width', () => {
  // dense loss 3.0 / 2.7 / 2.4 at budgets 1, 3, 9 (x1e12) for d 64 and 128 (d 128 a bit better);
  // MoE at each budget with a loss between: > 1 multiplier (better) or < 1 (worse)
  const make = (delta: number) => [0, 1].flatMap((seed) => [1e12, 3e12, 9e12].flatMap((budget, i) => [64, 128].flatMap((d) => [
    res({ family: 'dense', seed, budget, valLoss: 3.0 - 0.3 * i - (d === 128 ? 0.05 : 0) + seed * 0.01, axes: { 'model.d': d } }),
    res({ family: 'moe-E8-k2', seed, budget, valLoss: 3.0 - 0.3 * i - (d === 128 ? 0.05 : 0) + seed * 0.01 + delta, axes: { 'model.d': d }, sparsity: 0.75 }),
  ])));
  const v = judge('moe-vs-dense', make(-0.1));
  assert.equal(v.outcome, 'holds');
  assert.match(v.summary, /^moe-E8-k2's compute multiplier over dense, per seed: seed 0 [\d.]+x, seed 1 [\d.]+x \(range /);
  assert.match(v.details, /Paired at equal budget, width d 64 \(A = moe-E8-k2, B = dense\):/);
  assert.match(v.details, /Paired at equal budget, width d 128/);
  assert.equal(judge('moe-vs-dense', make(+0.1)).outcome, 'does not hold');
});

test('peer-isoflop: PEER against dense at each budget', () => {
  const make = (peer: number) => [1e12, 4e12].flatMap((budget) => [0, 1].flatMap((seed) => [
    res({ family: 'dense', seed, budget, valLoss: 2.5 + seed * 0.01 }),
    res({ family: 'moe-E8-k2', seed, budget, valLoss: 2.45 + seed * 0.01 }),
    res({ family: 'peer', seed, budget, valLoss: peer + seed * 0.01 }),
  ]));
  assert.equal(judge('peer-isoflop', make(2.3)).outcome, 'holds');
  assert.equal(judge('peer-isoflop', make(2.7)).outcome, 'does not hold');
  assert.equal(judge('peer-isoflop', make(2.5)).outcome, 'inconclusive');
  assert.match(judge('peer-isoflop', make(2.3)).summary, /against moe-E8-k2 the same rule gives "holds"/);
});
