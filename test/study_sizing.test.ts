// Study sizing worked by hand, durations, the verdict rules on made-up results, and a real study's
// plan (with an injected step time) against the sweep it expands to.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  sizeStudy, parseDuration, StudyBudgetError, planStudy, studySpec, expandSweep, countModel, tokensPerStep,
  contrastAtBudgets, contrastOutcome, multiplierBySeed, multiplierOutcome, type SweepResult,
} from '../src/index.js';

describe('sizeStudy', () => {
  // A: 100 FLOPs/step at 0.1 s; B: 200 FLOPs/step at 0.1 s; 1 s fixed per run; factors 1 and 3; 100 s.
  // s = (100 - 2 budgets x 2 s) / ((1 + 3) x (0.1/100 + 0.1/200)) = 96 / 0.006 = 16000.
  const templates = [
    { key: 'A', flopsPerStep: 100, secPerStep: 0.1, overheadSec: 1 },
    { key: 'B', flopsPerStep: 200, secPerStep: 0.1, overheadSec: 1 },
  ];
  test('fills the seconds: budgets, steps and times by hand', () => {
    const r = sizeStudy({ templates, budgetFactors: [1, 3], seconds: 100 });
    assert.ok(Math.abs(r.scale - 16000) < 1e-6);
    assert.deepEqual(r.budgets, [16000, 48000]);
    assert.deepEqual(r.points.map((p) => [p.key, p.budget, p.steps]), [['A', 16000, 160], ['B', 16000, 80], ['A', 48000, 480], ['B', 48000, 240]]);
    assert.deepEqual(r.points.map((p) => Number(p.seconds.toFixed(6))), [17, 9, 49, 25]);
    assert.ok(Math.abs(r.predictedSeconds - 100) < 1e-9);
  });
  test('refuses a budget that leaves a run under minSteps, naming the seconds needed', () => {
    // B needs 100 steps at factor 1: s >= 100 x 200 = 20000 -> 20000 x 4 x 0.0015 + 4 = 124 s
    assert.throws(() => sizeStudy({ templates, budgetFactors: [1, 3], seconds: 100, minSteps: 100 }), (e: unknown) => {
      assert.ok(e instanceof StudyBudgetError);
      assert.ok(Math.abs(e.neededSeconds - 124) < 1e-9);
      assert.match(e.message, /about 124 s/);
      return true;
    });
    assert.equal(sizeStudy({ templates, budgetFactors: [1, 3], seconds: 124, minSteps: 100 }).points[1].steps, 100);
    assert.throws(() => sizeStudy({ templates, budgetFactors: [1], seconds: 3 }), /too little/); // less than the fixed costs
    assert.throws(() => sizeStudy({ templates: [], budgetFactors: [1], seconds: 10 }), /no run templates/);
    assert.throws(() => sizeStudy({ templates: [{ ...templates[0], secPerStep: 0 }], budgetFactors: [1], seconds: 10 }), /secPerStep must be positive/);
  });
});

test('parseDuration', () => {
  assert.equal(parseDuration('1h'), 3600);
  assert.equal(parseDuration('1h30m'), 5400);
  assert.equal(parseDuration('20s'), 20);
  assert.equal(parseDuration('2.5m'), 150);
  assert.equal(parseDuration('45'), 45);
  for (const bad of ['', 'h', '1x', '1h 2', '0s', '-5']) assert.throws(() => parseDuration(bad), /cannot read the duration/, bad);
});

function res(family: string, seed: number, budget: number, valLoss: number, compute = budget): SweepResult {
  return {
    hash: `${family}-${seed}-${budget}`, name: `${family}-C${budget}`, family, seed, budget, group: `${family}-${budget}`, axes: {}, inSpec: true, steps: 10, valLoss,
    paramsTotal: 1000, paramsActive: 1000, flopsPerToken: 1, tokens: compute, trainingFlops: compute, sparsity: family === 'dense' ? 0 : 0.5,
  };
}

describe('verdict rules', () => {
  test('contrasts at equal budget: z from the seeds, holds / does not hold / inconclusive', () => {
    // A = 2.0, 2.2 (mean 2.1, sd 0.1414); B = 3.0, 3.2 (mean 3.1): diff 1, se 0.1414 -> z 7.07
    const rs = [res('a', 0, 1, 2.0), res('a', 1, 1, 2.2), res('b', 0, 1, 3.0), res('b', 1, 1, 3.2)];
    const [c] = contrastAtBudgets(rs, (r) => r.family === 'a', (r) => r.family === 'b');
    assert.ok(Math.abs(c.diff - 1) < 1e-12 && Math.abs(c.se! - Math.SQRT2 / 10) < 1e-12 && Math.abs(c.z! - 5 * Math.SQRT2) < 1e-9);
    assert.equal(contrastOutcome([c]), 'holds');
    assert.equal(contrastOutcome(contrastAtBudgets(rs, (r) => r.family === 'b', (r) => r.family === 'a')), 'does not hold');
    // overlapping seeds: diff 0.1, se 0.1414 -> z 0.71
    const close = [res('a', 0, 1, 2.0), res('a', 1, 1, 2.2), res('b', 0, 1, 2.1), res('b', 1, 1, 2.3)];
    assert.equal(contrastOutcome(contrastAtBudgets(close, (r) => r.family === 'a', (r) => r.family === 'b')), 'inconclusive');
    // one seed: no spread, no verdict
    assert.equal(contrastOutcome(contrastAtBudgets([res('a', 0, 1, 1), res('b', 0, 1, 9)], (r) => r.family === 'a', (r) => r.family === 'b')), 'inconclusive');
  });
  test('multiplier per seed: an MoE at the dense loss of twice its compute is a 2x multiplier', () => {
    // dense frontier (1e12, 3.0), (4e12, 2.5); loss sqrt(3 x 2.5) sits halfway in log-log: 2e12
    const L = Math.sqrt(3 * 2.5);
    const rs = [0, 1].flatMap((s) => [res('dense', s, 1e12, 3.0), res('dense', s, 4e12, 2.5), res('moe', s, 1e12, L)]);
    const ms = multiplierBySeed(rs, 'moe');
    assert.deepEqual(ms.map((m) => m.seed), [0, 1]);
    for (const m of ms) assert.ok(Math.abs(m.multiplier! - 2) < 1e-9 && m.interpolatedOnly);
    assert.equal(multiplierOutcome(ms), 'holds');
    const worse = [0, 1].flatMap((s) => [res('dense', s, 1e12, 3.0), res('dense', s, 4e12, 2.5), res('moe', s, 4e12, L)]);
    assert.ok(Math.abs(multiplierBySeed(worse, 'moe')[0].multiplier! - 0.5) < 1e-9);
    assert.equal(multiplierOutcome(multiplierBySeed(worse, 'moe')), 'does not hold');
    assert.equal(multiplierOutcome(multiplierBySeed(rs.filter((r) => r.seed === 0), 'moe')), 'inconclusive'); // one seed
  });
});

describe('planStudy', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'moelab-studyplan-'));
    writeFileSync(join(dir, 'corpus.txt'), 'the experts route tokens to the model. '.repeat(400));
  });
  test('moe-vs-dense: 24 runs whose steps and predicted time fill the training seconds', () => {
    const secPerStep = 0.05;
    const plan = planStudy({ study: 'moe-vs-dense', budgetSeconds: 3600, reportSeconds: 100, overheadSeconds: 2, measure: () => secPerStep, dataPaths: ['corpus.txt'], cwd: dir });
    assert.equal(plan.budgets.length, 3);
    assert.ok(Math.abs(plan.budgets[1] / plan.budgets[0] - 3) < 0.01 && Math.abs(plan.budgets[2] / plan.budgets[0] - 9) < 0.01);
    assert.equal(plan.calibration.length, 4);
    assert.ok(plan.calibration.every((c) => c.runs === 2 && c.secPerStep === secPerStep));
    const points = expandSweep(studySpec(plan));
    assert.equal(points.length, 24);
    assert.deepEqual([...new Set(points.map((p) => p.family))].sort(), ['dense', 'moe-E8-k2']);
    assert.ok(points.every((p) => p.config.data.paths[0] === join(dir, 'corpus.txt') && p.config.train.evalEvery === 0));
    // the sweep's isoFLOP steps are the sizing's: their time is the plan's prediction
    const evalSec = (16 * secPerStep) / 3;
    const seconds = points.reduce((a, p) => a + p.config.train.steps * secPerStep + 2 + evalSec, 0);
    assert.ok(Math.abs(seconds - plan.predictedTrainingSeconds) < 1e-6 * seconds);
    assert.ok(Math.abs(plan.predictedTrainingSeconds - plan.trainingSeconds) / plan.trainingSeconds < 0.01, `${plan.predictedTrainingSeconds} vs ${plan.trainingSeconds}`);
    assert.ok(plan.trainingSeconds < 3600 - 100);
    for (const p of points) assert.equal(p.config.train.steps, Math.round(p.budget! / (countModel(p.config.model).flopsPerToken * tokensPerStep(p.config))));
  });
  test('the sparsity study holds active parameters fixed while sparsity grows', () => {
    const plan = planStudy({ study: 'sparsity', budgetSeconds: 3600, measure: () => 0.05, dataPaths: ['corpus.txt'], cwd: dir });
    const points = expandSweep(studySpec(plan));
    assert.equal(points.length, 16);
    const counts = points.map((p) => countModel(p.config.model));
    assert.deepEqual([...new Set(counts.map((c) => c.sparsity))].sort(), [0, 0.5, 0.75, 0.875]);
    const active = counts.map((c) => c.paramsActive);
    assert.ok((Math.max(...active) - Math.min(...active)) / Math.min(...active) < 0.02, 'active parameters fixed up to the router');
    assert.throws(() => planStudy({ study: 'sparsity', budgetSeconds: 30, measure: () => 0.05, dataPaths: ['corpus.txt'], cwd: dir }), /too little/);
    assert.throws(() => planStudy({ study: 'nope', budgetSeconds: 30 }), /unknown study 'nope': choose one of moe-vs-dense, sparsity, peer-isoflop/);
  });
});
