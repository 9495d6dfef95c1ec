// Sweep specs: validation messages that name the field, expansion (cartesian product, seeds,
// duplicates collapsed by config hash), isoFLOP step counts computed by hand, and the two
// generators' sizes computed by hand.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSweepSpec, readSweepSpec, expandSweep, countModel, familyOf, loadConfig, fixedTotalVariants, ConfigError, type SweepSpecInput } from '../src/index.js';

// d 16, 1 layer, seq 16, batch 2, bytes: FLOPs/token of the dense model, by hand (spec/count.ts):
//   MACs = V*d + 4d^2 + 2*d*4d = 4096 + 1024 + 2048 = 7168;  FLOPs = 6*7168 + 12*1*16*16 = 46080
// tokens/step = 2 * 16 = 32, so one step costs 1,474,560 FLOPs.
const TINY = { model: { d: 16, layers: 1, heads: 2, seq: 16 }, train: { batch: 2, evalEvery: 0, evalBatches: 1 }, data: { paths: ['corpus.txt'] } };
const spec = (s: Partial<SweepSpecInput>) => parseSweepSpec({ base: { inline: TINY }, ...s }, { baseDir: '/data/study' });

function problems(raw: unknown): string[] {
  try {
    parseSweepSpec(raw);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('sweep spec validation', () => {
  test('unknown keys name the field and what is allowed', () => {
    const p = problems({ base: 'tiny', axis: { 'model.d': [16] } });
    assert.equal(p.length, 1);
    assert.match(p[0], /^axis: unknown key; allowed keys: description, base, set, axes, generator, seeds, budgets$/);
    assert.match(problems({ base: 'tiny', generator: { kind: 'fixed-active', expert: [4] } }).join('\n'), /generator\.expert: unknown key; allowed keys: kind, experts/);
  });

  test('every problem at once, each at its path', () => {
    const p = problems({ base: 7, axes: { 'model.d': [], 'bad path': [1] }, budgets: [-1], seeds: [0.5] });
    const text = p.join('\n');
    assert.match(text, /^base: expected a preset name, \{"preset": name\}/m);
    assert.match(text, /^axes\.model\.d: expected at least 1 item/m);
    assert.match(text, /^axes\.bad path: an axis is a dotted config path/m);
    assert.match(text, /^budgets\[0\]: must be > 0, got -1/m);
    assert.match(text, /^seeds\[0\]: expected an integer, got a fraction/m);
  });

  test('conflicting fields are refused with what to do', () => {
    assert.match(problems({ base: 'tiny', budgets: [1e9], axes: { 'train.steps': [5, 10] } }).join(), /train\.steps follows from budgets/);
    assert.match(problems({ base: 'tiny', budgets: [1e9], set: { 'train.steps': 5 } }).join(), /set\.train\.steps: train\.steps follows from budgets/);
    assert.match(problems({ base: 'tiny-moe', generator: { kind: 'fixed-active', experts: [4] }, axes: { 'model.ffn.experts': [2] } }).join(),
      /axes\.model\.ffn\.experts: the fixed-active generator sets model\.ffn/);
    assert.match(problems({ base: 'tiny', axes: { 'model.d': [16, 16] } }).join(), /axes\.model\.d\[1\]: value 16 is listed twice/);
    assert.match(problems({ base: 'tiny', axes: { name: ['a'] } }).join(), /axes\.name: 'name' does not change what a run computes/);
  });

  test('a point whose config is invalid names the point and the field', () => {
    assert.throws(() => expandSweep(spec({ axes: { 'model.heads': [2, 3] } })), (e: Error) =>
      e instanceof ConfigError && /sweep point \{model\.heads=3\}/.test(e.message) && /model\.heads: d \(16\) must be divisible by heads \(3\)/.test(e.message));
    assert.throws(() => expandSweep(spec({ axes: { 'model.dd': [1] } })), /model\.dd: unknown key; did you mean 'd'\?/);
  });

  test('a spec file resolves data and config paths against its folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'moelab-spec-'));
    writeFileSync(join(dir, 'base.json'), JSON.stringify({ model: TINY.model, data: { paths: ['text/a.txt'] } }));
    writeFileSync(join(dir, 'study.json'), JSON.stringify({ base: { config: 'base.json' }, set: { 'data.paths': ['b.txt'] } }));
    const [p] = expandSweep(readSweepSpec(join(dir, 'study.json')));
    assert.deepEqual(p.config.data.paths, [join(dir, 'b.txt')]);
    writeFileSync(join(dir, 'study2.json'), JSON.stringify({ base: { config: 'base.json' } }));
    assert.deepEqual(expandSweep(readSweepSpec(join(dir, 'study2.json')))[0].config.data.paths, [join(dir, 'text', 'a.txt')]);
  });
});

describe('sweep expansion', () => {
  test('cartesian product in order (last axis fastest), then seeds, then budgets', () => {
    const pts = expandSweep(spec({ axes: { 'model.d': [16, 32], 'train.lr': [1e-3, 2e-3] }, seeds: [0, 1] }));
    assert.equal(pts.length, 8);
    assert.deepEqual(pts.map((p) => [p.config.model.d, p.config.train.lr, p.config.train.seed]), [
      [16, 1e-3, 0], [16, 1e-3, 1], [16, 2e-3, 0], [16, 2e-3, 1], [32, 1e-3, 0], [32, 1e-3, 1], [32, 2e-3, 0], [32, 2e-3, 1],
    ]);
    assert.deepEqual(pts[3].axes, { 'model.d': 16, 'train.lr': 2e-3, seed: 1 });
    assert.equal(new Set(pts.map((p) => p.hash)).size, 8);
    assert.ok(pts.every((p) => /^[0-9a-f]{12}$/.test(p.hash) && /^[A-Za-z0-9._-]+$/.test(p.name)));
    // the data path of the inline base is relative to the spec's folder
    assert.deepEqual(pts[0].config.data.paths, ['/data/study/corpus.txt']);
  });

  test('isoFLOP budgets: train.steps = round(C / (FLOPs/token * tokens/step)), by hand', () => {
    // the MoE (4 experts, top-1, hidden 64, every layer): ffn MACs = E*d + k*2*d*64 = 64 + 2048,
    // MACs = 4096 + 1024 + 2112 = 7232, FLOPs/token = 43392 + 3072 = 46464; a step = 1,486,848
    const pts = expandSweep(spec({ axes: { 'model.ffn': [{ type: 'dense' }, { type: 'moe', experts: 4, topk: 1, every: 1 }] }, budgets: [2e7, 4e7] }));
    assert.equal(countModel(pts[0].config.model).flopsPerToken, 46080);
    assert.equal(countModel(pts[2].config.model).flopsPerToken, 46464);
    // 2e7 / 1474560 = 13.56 -> 14; 4e7 / 1474560 = 27.13 -> 27; 2e7 / 1486848 = 13.45 -> 13; 4e7 / 1486848 = 26.90 -> 27
    assert.deepEqual(pts.map((p) => p.config.train.steps), [14, 27, 13, 27]);
    assert.deepEqual(pts.map((p) => p.budget), [2e7, 4e7, 2e7, 4e7]);
    assert.deepEqual(pts.map((p) => p.trainingFlops), [14 * 1474560, 27 * 1474560, 13 * 1486848, 27 * 1486848]);
    assert.deepEqual(pts.map((p) => p.family), ['dense', 'dense', 'moe-E4-k1', 'moe-E4-k1']);
    // the derived warm-up follows the budget's steps
    assert.equal(pts[1].config.train.warmup, Math.round(27 / 20));
  });

  test('gradient accumulation counts in tokens per step', () => {
    const [p] = expandSweep(spec({ set: { 'train.accum': 2 }, budgets: [2e7] }));
    assert.equal(p.config.train.steps, Math.round(2e7 / (46080 * 64))); // 6.78 -> 7
  });

  test('a budget too small for one step is refused with the numbers', () => {
    assert.throws(() => expandSweep(spec({ budgets: [1e5] })), (e: Error) =>
      /sweep point \{budget=100000\}: budget 100000 FLOPs buys 0.0678 steps \(< 1\)/.test(e.message) && /1\.475e\+6 FLOPs per step/.test(e.message));
  });

  test('points that resolve to the same config are collapsed into one', () => {
    // hidden 64 is the default 4d: the same model, so the same config hash
    const pts = expandSweep(spec({ axes: { 'model.ffn': [{ type: 'dense' }, { type: 'dense', hidden: 64 }, { type: 'dense', hidden: 32 }] } }));
    assert.equal(pts.length, 2);
    assert.deepEqual(pts[0].duplicates, [{ 'model.ffn': { type: 'dense', hidden: 64 } }]);
    assert.equal(pts[1].config.model.ffn.type === 'dense' && pts[1].config.model.ffn.hidden, 32);
  });

  test('family labels', () => {
    const f = (ffn: object) => familyOf(loadConfig({ preset: 'tiny', overrides: { 'model.ffn': ffn } }));
    assert.equal(f({ type: 'dense' }), 'dense');
    assert.equal(f({ type: 'moe', experts: 8, topk: 2 }), 'moe-E8-k2');
    assert.equal(f({ type: 'moe', experts: 8, topk: 2, granularity: 4, sharedExperts: 1 }), 'moe-E8-k2-G4-sh1');
    assert.equal(f({ type: 'peer', nSub: 8, heads: 2, k: 4, dKey: 16 }), 'peer');
    assert.equal(f({ type: 'peer', nSub: 8, heads: 2, k: 4, dKey: 16, pkm: true }), 'pkm');
  });
});

describe('generators', () => {
  const MOE = { type: 'moe', experts: 4, topk: 1, every: 1 };

  test('fixed active parameters, growing experts: topk and expertHidden stay, active params fixed but for the router', () => {
    const pts = expandSweep(spec({ set: { 'model.ffn': { ...MOE, topk: 2 } }, generator: { kind: 'fixed-active', experts: [2, 4, 8, 16] } }));
    assert.deepEqual(pts.map((p) => p.axes['generator.experts']), [2, 4, 8, 16]);
    const c = pts.map((p) => countModel(p.config.model));
    for (const p of pts) assert.ok(p.config.model.ffn.type === 'moe' && p.config.model.ffn.topk === 2 && p.config.model.ffn.expertHidden === 64);
    // one MoE layer: the router adds d = 16 active parameters per expert; expert params scale with E
    assert.deepEqual(c.map((x) => x.paramsActive - c[0].paramsActive), [0, 2 * 16, 6 * 16, 14 * 16]);
    assert.deepEqual(c.map((x) => x.expertParamsTotal), [2, 4, 8, 16].map((E) => E * (64 * 33 + 16)));
    assert.deepEqual(c.map((x) => x.sparsity), [0, 0.5, 0.75, 0.875]);
    assert.deepEqual(pts.map((p) => p.family), ['moe-E2-k2', 'moe-E4-k2', 'moe-E8-k2', 'moe-E16-k2']);
    assert.throws(() => expandSweep(spec({ set: { 'model.ffn': { ...MOE, topk: 2 } }, generator: { kind: 'fixed-active', experts: [1] } })),
      /generator\.experts\[0\]: each expert count must be an integer >= the base topk \(2\), got 1/);
    assert.throws(() => expandSweep(spec({ generator: { kind: 'fixed-active', experts: [4] } })), /base config's model\.ffn must be a MoE.*got type 'dense'/);
  });

  test('fixed total parameters, growing sparsity: E = round(k/(1-S)), hidden from the budget, by hand', () => {
    // base: 4 experts of hidden 64 at d 16 -> B = 4 * (64*33 + 16) = 8512 routed-expert parameters.
    // S 0.5 -> E 2, h = round((4256 - 16)/33) = round(128.5) = 128; S 0.75 -> E 4, h 64;
    // S 0.875 -> E 8, h = round((1064 - 16)/33) = round(31.8) = 32; S 0.6 -> E round(2.5) = 3 (S 2/3),
    // h = round((2837.3 - 16)/33) = 85
    const pts = expandSweep(spec({ set: { 'model.ffn': MOE }, generator: { kind: 'fixed-total', sparsities: [0.5, 0.75, 0.875, 0.6] } }));
    const sizes = pts.map((p) => (p.config.model.ffn.type === 'moe' ? [p.config.model.ffn.experts, p.config.model.ffn.expertHidden] : []));
    assert.deepEqual(sizes, [[2, 128], [4, 64], [8, 32], [3, 85]]);
    const c = pts.map((p) => countModel(p.config.model));
    assert.deepEqual(c.map((x) => x.expertParamsTotal), [2 * (128 * 33 + 16), 8512, 8 * (32 * 33 + 16), 3 * (85 * 33 + 16)]);
    for (const x of c) assert.ok(Math.abs(x.expertParamsTotal / 8512 - 1) < 0.01, `${x.expertParamsTotal} within 1% of 8512`);
    assert.deepEqual(c.map((x) => x.sparsity), [0.5, 0.75, 0.875, 1 - 1 / 3]);
    assert.deepEqual(pts.map((p) => p.axes['generator.sparsity']), [0.5, 0.75, 0.875, 1 - 1 / 3]);
    assert.equal(pts[3].axes['generator.requestedSparsity'], 0.6);
    // active parameters fall as sparsity grows
    assert.ok(c[0].paramsActive > c[1].paramsActive && c[1].paramsActive > c[2].paramsActive);
  });

  test('fixed total with an explicit budget and granularity keeps hidden divisible by G', () => {
    const base = loadConfig({ preset: 'tiny', overrides: { ...TINY, 'model.ffn': { ...MOE, topk: 2, granularity: 2 } } });
    // B = 20000 over 1 layer; S 0.75 -> E = 8; h = 2*round((2500 - 32)/(33*2)) = 2*round(37.4) = 74
    const [v] = fixedTotalVariants(base, [0.75], 20000);
    assert.deepEqual(v.overrides, { 'model.ffn.experts': 8, 'model.ffn.expertHidden': 74 });
    assert.equal(v.values.expertParams, 8 * (74 * 33 + 2 * 16));
    assert.throws(() => fixedTotalVariants(base, [0.99], 2000), /generator\.sparsities\[0\]: sparsity 0\.99 needs 200 experts.*raise generator\.expertParams/);
  });
});
