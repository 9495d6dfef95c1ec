import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig, validateConfig, resolveConfig, parseOverrides, deepMerge, expandDotted, ConfigError, tryValidateConfig } from '../src/config/load.js';
import { configForSave, configFromSaved, readSavedConfig } from '../src/config/saved.js';
import { configHash, canonicalJson } from '../src/config/hash.js';
import { loadRunConfig } from '../src/train/run.js';
import { vocabSize, type Config } from '../src/config/schema.js';
import { ffnKindOfLayer, layerKinds, resolveModelSpec } from '../src/spec/model.js';
import { PRESETS, DEFAULT_PRESET, presetNames, getPreset } from '../src/config/presets.js';

function problems(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    return (e as Error).message;
  }
  assert.fail('expected a ConfigError');
}

const tiny = () => getPreset('tiny')!.config;

test('every preset validates, has a description, and re-parses to itself', () => {
  assert.ok(presetNames().length >= 7);
  for (const name of ['tiny', 'dense-d256', 'moe8-d256', 'moe64-d256', 'peer65k-d256', 'peer1m-l2-d256', 'peer1m-all-d256']) {
    assert.ok(PRESETS[name], `preset ${name} exists`);
  }
  for (const name of presetNames()) {
    const p = PRESETS[name];
    assert.ok(p.description.length > 10 && !p.description.includes('\n'), `${name}: one-line description`);
    const c = loadConfig({ preset: name });
    assert.equal(c.name, name);
    assert.deepEqual(validateConfig(JSON.parse(JSON.stringify(c))), c, `${name}: parse(resolved) is the identity`);
    assert.equal(JSON.stringify(validateConfig(c)), JSON.stringify(c), `${name}: stable key order`);
  }
  assert.equal(DEFAULT_PRESET, 'tiny');
  assert.equal(loadConfig().name, 'tiny');
});

test('reference presets match moe_lm.py defaults', () => {
  for (const name of ['dense-d256', 'moe8-d256', 'moe64-d256', 'peer65k-d256', 'peer1m-l2-d256', 'peer1m-all-d256']) {
    const c = loadConfig({ preset: name });
    assert.deepEqual([c.model.vocab, c.model.d, c.model.layers, c.model.heads, c.model.seq, c.train.batch, c.train.lr],
      ['bytes', 256, 4, 4, 256, 8, 1e-3], name);
    assert.equal(c.train.schedule, 'constant');
    assert.equal(c.train.clip, 0);
    assert.equal(c.train.weightDecay, 0.1);
    assert.equal(c.data.valFraction, 0.1);
  }
  const moe = loadConfig({ preset: 'moe64-d256' }).model;
  assert.equal(moe.ffn.type, 'moe');
  if (moe.ffn.type === 'moe') {
    assert.deepEqual([moe.ffn.experts, moe.ffn.topk, moe.ffn.expertHidden, moe.ffn.capacityFactor, moe.ffn.auxCoef, moe.ffn.zCoef], [64, 2, 128, 0, 0.01, 0]);
  }
  const peer = loadConfig({ preset: 'peer1m-l2-d256' }).model;
  assert.equal(peer.ffn.type, 'peer');
  if (peer.ffn.type === 'peer') assert.deepEqual([peer.ffn.nSub, peer.ffn.heads, peer.ffn.k, peer.ffn.dKey, peer.ffn.layers, peer.ffn.bn], [1024, 8, 16, 128, [2], false]);
});

test('defaults are resolved, including the derived ones', () => {
  const c = validateConfig({ model: { d: 64, layers: 2, heads: 2, seq: 32 } });
  assert.equal(c.name, 'custom');
  assert.deepEqual(c.model, { vocab: 'bytes', d: 64, layers: 2, heads: 2, seq: 32, dropout: 0, lnEps: 1e-5, ffn: { type: 'dense', hidden: 256 } });
  assert.equal(c.train.batch, 8);
  assert.equal(c.train.steps, 1000);
  assert.equal(c.train.lr, 1e-3);
  assert.equal(c.train.minLr, 1e-4);
  assert.equal(c.train.warmup, 50);
  assert.equal(c.train.schedule, 'cosine');
  assert.deepEqual([c.train.weightDecay, c.train.beta1, c.train.beta2, c.train.eps, c.train.clip, c.train.accum, c.train.seed], [0.1, 0.9, 0.95, 1e-8, 1, 1, 0]);
  assert.equal(c.train.threads, undefined);
  assert.deepEqual(c.data, { paths: [], valFraction: 0.1 });

  const m = validateConfig({ model: { d: 64, layers: 4, heads: 2, seq: 32, ffn: { type: 'moe', experts: 8, capacityFactor: 1.25 } } }).model;
  assert.deepEqual(m.ffn, {
    type: 'moe', experts: 8, topk: 2, expertHidden: 256, every: 2, granularity: 1, sharedExperts: 0, capacityFactor: 1.25,
    evalCapacityFactor: 1.25, renormalize: true, jitter: 0, auxCoef: 0.01, zCoef: 0.001,
    gate: 'softmax', routing: 'token-choice', evalRouting: 'token-choice', balance: 'aux', expertBias: false, biasRate: 0.001,
  });
  // expert choice derives token-choice evaluation and no balancing loss, and needs a capacity factor
  const ec = validateConfig({ model: { d: 64, layers: 4, heads: 2, seq: 32, ffn: { type: 'moe', experts: 8, routing: 'expert-choice', capacityFactor: 1 } } }).model.ffn;
  assert.deepEqual(ec.type === 'moe' && [ec.routing, ec.evalRouting, ec.balance, ec.evalCapacityFactor], ['expert-choice', 'token-choice', 'none', 0]);
  assert.throws(() => validateConfig({ model: { d: 64, layers: 4, heads: 2, seq: 32, ffn: { type: 'moe', experts: 8, routing: 'expert-choice' } } }),
    /expert-choice routing needs capacityFactor > 0/);
  assert.throws(() => validateConfig({ model: { d: 64, layers: 4, heads: 2, seq: 32, ffn: { type: 'moe', experts: 8, routing: 'expert-choice', capacityFactor: 1, expertBias: true } } }),
    /expertBias balances token-choice selection/);
  assert.throws(() => validateConfig({ model: { d: 64, layers: 4, heads: 2, seq: 32, ffn: { type: 'moe', experts: 8, routing: 'expert-choice', capacityFactor: 1, balance: 'aux' } } }),
    /balance 'aux' needs token-choice routing/);
  const p = validateConfig({ model: { d: 64, layers: 4, heads: 2, seq: 32, ffn: { type: 'peer', nSub: 16 } } }).model;
  assert.deepEqual(p.ffn, { type: 'peer', nSub: 16, heads: 8, k: 16, dKey: 128, bn: false, layers: 'all', activation: 'gelu', pkm: false, bf16Moments: false });
  // derived defaults follow overrides of the fields they derive from
  const o = loadConfig({ preset: 'tiny', overrides: { 'train.lr': 0.01, 'train.steps': 2000, 'train.warmup': undefined } });
  assert.equal(o.train.minLr, 0.001);
});

test('vocabulary size and helpers', () => {
  assert.equal(vocabSize('bytes'), 256);
  assert.equal(vocabSize({ vocab: 'gpt2' }), 50257);
  const c = validateConfig({ model: { d: 64, layers: 2, heads: 2, seq: 32, ffn: { type: 'moe', experts: 4, topk: 1, granularity: 4, expertHidden: 128, sharedExperts: 1 } } });
  const [dense, moe] = resolveModelSpec(c.model).layers.map((l) => l.ffn);
  assert.deepEqual(dense, { kind: 'dense', hidden: 256 });
  if (moe.kind !== 'moe') assert.fail();
  assert.deepEqual([moe.experts, moe.topk, moe.hidden, moe.shared, moe.coarse], [16, 4, 32, 1, { experts: 4, topk: 1, hidden: 128 }]);
});

test('ffnKindOfLayer places layers like the reference', () => {
  const m = (ffn: object, layers = 4) => validateConfig({ model: { d: 16, layers, heads: 2, seq: 8, ffn } }).model;
  assert.deepEqual(layerKinds(m({ type: 'dense' })), ['dense', 'dense', 'dense', 'dense']);
  assert.deepEqual(layerKinds(m({ type: 'moe', experts: 4 })), ['dense', 'moe', 'dense', 'moe']);
  assert.deepEqual(layerKinds(m({ type: 'moe', experts: 4, every: 1 })), ['moe', 'moe', 'moe', 'moe']);
  assert.deepEqual(layerKinds(m({ type: 'moe', experts: 4, every: 3 }, 6)), ['dense', 'dense', 'moe', 'dense', 'dense', 'moe']);
  assert.deepEqual(layerKinds(m({ type: 'moe', experts: 4, layers: [0, 3] })), ['moe', 'dense', 'dense', 'moe']);
  assert.deepEqual(layerKinds(m({ type: 'moe', experts: 4, every: 2, layers: 'all' })), ['moe', 'moe', 'moe', 'moe']);
  assert.deepEqual(layerKinds(m({ type: 'peer', nSub: 16, k: 4, dKey: 8 })), ['peer', 'peer', 'peer', 'peer']);
  assert.deepEqual(layerKinds(m({ type: 'peer', nSub: 16, k: 4, dKey: 8, layers: [2] })), ['dense', 'dense', 'peer', 'dense']);
  assert.throws(() => ffnKindOfLayer(m({ type: 'dense' }), 4), /out of range/);
});

test('errors name the field, the allowed values and what was found', () => {
  assert.match(problems(() => loadConfig({ overrides: { 'model.ffn.type': 'moee' } })), /model\.ffn\.type: expected one of 'dense' \| 'moe' \| 'peer', got 'moee'/);
  assert.match(problems(() => loadConfig({ overrides: { 'model.vocab': 'gpt3' } })), /model\.vocab: expected one of 'bytes' \| 'gpt2', got 'gpt3'/);
  assert.match(problems(() => loadConfig({ overrides: { 'train.lr': 'fast' } })), /train\.lr: expected number, got string \('fast'\)/);
  assert.match(problems(() => loadConfig({ overrides: { 'train.steps': 1.5 } })), /train\.steps: expected an integer, got a fraction \(1\.5\)/);
  assert.match(problems(() => loadConfig({ overrides: { 'train.batch': 0 } })), /train\.batch: must be > 0, got 0/);
  assert.match(problems(() => loadConfig({ overrides: { 'data.valFraction': 1 } })), /data\.valFraction: must be < 1, got 1/);
  assert.match(problems(() => loadConfig({ overrides: { 'train.schedule': 'linear' } })), /train\.schedule: expected one of 'cosine' \| 'constant', got 'linear'/);
  assert.match(problems(() => validateConfig({})), /model: required \(expected object\)/);
  assert.match(problems(() => validateConfig({ model: { d: 8, layers: 1, heads: 1 } })), /model\.seq: required \(expected number\)/);
  // unknown keys, with a suggestion
  const unk = problems(() => loadConfig({ overrides: { 'model.ffn.hiden': 3, 'train.stpes': 3, bogus: 1 } }));
  assert.match(unk, /model\.ffn\.hiden: unknown key; did you mean 'hidden'\?/);
  assert.match(unk, /train\.stpes: unknown key; did you mean 'steps'\?/);
  assert.match(unk, /bogus: unknown key; allowed keys: name, model, train, data/);
  // union of 'all' | indices
  assert.match(problems(() => loadConfig({ preset: 'peer65k-d256', overrides: { 'model.ffn.layers': 'some' } })), /model\.ffn\.layers: expected 'all' or an array, got 'some'/);
  assert.match(problems(() => loadConfig({ preset: 'peer65k-d256', overrides: { 'model.ffn.layers': [1, -1] } })), /model\.ffn\.layers\[1\]: must be >= 0, got -1/);
  // all problems at once
  const many = problems(() => loadConfig({ overrides: { 'model.d': -1, 'train.lr': 'x' } }));
  assert.match(many, /model\.d/);
  assert.match(many, /train\.lr/);
});

test('cross-field checks', () => {
  assert.match(problems(() => loadConfig({ overrides: { 'model.heads': 3 } })), /model\.heads: d \(128\) must be divisible by heads \(3\)/);
  const moe = { type: 'moe', experts: 4, topk: 5 };
  assert.match(problems(() => loadConfig({ overrides: { 'model.ffn': moe } })), /model\.ffn\.topk: topk \(5\) must be <= experts \(4\)/);
  assert.match(problems(() => loadConfig({ overrides: { 'model.ffn': { type: 'moe', experts: 4, granularity: 3 } } })), /granularity: expert hidden width \(512\) must be divisible by granularity \(3\)/);
  assert.match(problems(() => loadConfig({ overrides: { 'model.ffn': { type: 'moe', experts: 4, every: 3 } } })), /model\.ffn\.every: every = 3 places no MoE layer in a 2-layer model/);
  assert.match(problems(() => loadConfig({ overrides: { 'model.ffn': { type: 'moe', experts: 4, layers: [0, 0] } } })), /model\.ffn\.layers\[1\]: layer 0 is listed twice/);
  assert.match(problems(() => loadConfig({ overrides: { 'model.ffn': { type: 'peer', nSub: 32, dKey: 63 } } })), /model\.ffn\.dKey: dKey \(63\) must be even/);
  assert.match(problems(() => loadConfig({ overrides: { 'model.ffn': { type: 'peer', nSub: 8, k: 16 } } })), /model\.ffn\.k: k \(16\) must be <= nSub \(8\)/);
  assert.match(problems(() => loadConfig({ overrides: { 'model.ffn': { type: 'peer', nSub: 32, layers: [5] } } })), /model\.ffn\.layers\[0\]: layer index 5 is out of range: the model has 2 layers/);
  assert.match(problems(() => loadConfig({ overrides: { 'train.minLr': 1 } })), /train\.minLr: minLr \(1\) must be <= lr/);
  assert.match(problems(() => loadConfig({ overrides: { 'train.warmup': 10_000 } })), /train\.warmup: warmup \(10000\) must be <= steps \(600\)/);
});

test('presets and files: unknown preset, missing / invalid file, both given', () => {
  assert.match(problems(() => loadConfig({ preset: 'huge' })), /unknown preset 'huge'; available presets: tiny, .*moe8-d256/);
  const dir = mkdtempSync(join(tmpdir(), 'moelab-config-'));
  try {
    const missing = join(dir, 'nope.json');
    assert.match(problems(() => loadConfig({ configPath: missing })), new RegExp(`config file not found: ${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"model": {"d": 8,}}');
    assert.match(problems(() => loadConfig({ configPath: bad })), /config file .*bad\.json is not valid JSON/);
    mkdirSync(join(dir, 'adir'));
    assert.match(problems(() => loadConfig({ configPath: join(dir, 'adir') })), /is a directory/);
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ name: 'x', model: { d: 32, layers: 1, heads: 2, seq: 16 }, train: { steps: 10 } }));
    const c = loadConfig({ configPath: good, overrides: { train: { steps: 20 } } });
    assert.equal(c.train.steps, 20);
    assert.equal(c.model.d, 32);
    const invalid = join(dir, 'invalid.json');
    writeFileSync(invalid, JSON.stringify({ model: { d: 32, layers: 1, heads: 2, seq: 16, ffn: { type: 'moee' } } }));
    assert.match(problems(() => loadConfig({ configPath: invalid })), /invalid config file .*invalid\.json:\n {2}model\.ffn\.type: expected one of/);
    // a saved (resolved) config loads back unchanged
    const full = loadConfig({ preset: 'moe8-d256' });
    const saved = join(dir, 'saved.json');
    writeFileSync(saved, JSON.stringify(full, null, 2));
    assert.deepEqual(loadConfig({ configPath: saved }), full);
    assert.match(problems(() => loadConfig({ preset: 'tiny', configPath: good })), /either a preset .* or a config file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('overrides: dotted keys, deep merge, ffn type switch, CLI parsing', () => {
  assert.deepEqual(expandDotted({ 'train.steps': 5, model: { d: 8 }, 'model.ffn.type': 'moe' }), { train: { steps: 5 }, model: { d: 8, ffn: { type: 'moe' } } });
  assert.deepEqual(deepMerge({ a: { b: 1, c: [1, 2] } }, { a: { c: [3] } }), { a: { b: 1, c: [3] } });
  assert.deepEqual(deepMerge({ type: 'moe', experts: 8 }, { type: 'peer', nSub: 4 }), { type: 'peer', nSub: 4 });
  const base = tiny();
  const before = JSON.stringify(base);
  deepMerge(base, { model: { d: 1 } });
  assert.equal(JSON.stringify(base), before, 'inputs are not modified');
  // switching a moe preset to peer replaces the ffn section instead of mixing keys
  const c = loadConfig({ preset: 'moe8-d256', overrides: { 'model.ffn': { type: 'peer', nSub: 64 } } });
  assert.equal(c.model.ffn.type, 'peer');
  // same type: fields merge
  const c2 = loadConfig({ preset: 'moe8-d256', overrides: { 'model.ffn.experts': 16 } });
  assert.equal(c2.model.ffn.type === 'moe' && c2.model.ffn.experts, 16);
  assert.equal(c2.model.ffn.type === 'moe' && c2.model.ffn.topk, 2);
  assert.deepEqual(parseOverrides(['train.steps=100', 'model.vocab=gpt2', 'train.lr=3e-4', 'model.ffn.layers=[1,2]', 'data.paths=["a b"]', 'model.ffn.bn=true']), {
    train: { steps: 100, lr: 3e-4 }, model: { vocab: 'gpt2', ffn: { layers: [1, 2], bn: true } }, data: { paths: ['a b'] },
  });
  assert.throws(() => parseOverrides(['steps']), /expected key\.path=value/);
  // getPreset returns a copy
  const p = getPreset('tiny')!;
  (p.config.model as { d: number }).d = 1;
  assert.equal(getPreset('tiny')!.config.model.d, 128);
});

test('tryValidateConfig reports without throwing', () => {
  const r = tryValidateConfig({ model: { d: 8, layers: 1, heads: 3, seq: 4 } });
  assert.equal(r.ok, false);
  if (!r.ok) assert.deepEqual(r.problems, ['model.heads: d (8) must be divisible by heads (3)']);
  const ok = tryValidateConfig({ model: { d: 8, layers: 1, heads: 2, seq: 4 } });
  assert.equal(ok.ok, true);
  const cfg: Config | undefined = ok.ok ? ok.config : undefined;
  assert.equal(cfg?.model.ffn.type, 'dense');
});

// ---------------------------------------------------------------------------------------------
// derived defaults, saved configs, data paths, run identity, run names

test('derived defaults are listed, and a resolved config re-resolves to itself', () => {
  const c = validateConfig({ model: { d: 64, layers: 4, heads: 2, seq: 32, ffn: { type: 'moe', experts: 4 } }, train: { lr: 0.01, steps: 100 } });
  assert.deepEqual(c.derived, ['model.ffn.expertHidden', 'model.ffn.evalCapacityFactor', 'model.ffn.evalRouting', 'model.ffn.balance', 'train.minLr', 'train.warmup']);
  assert.deepEqual(validateConfig({ model: { d: 64, layers: 2, heads: 2, seq: 32, ffn: { type: 'dense', hidden: 7 } }, train: { minLr: 0, warmup: 0 } }).derived, []);
  assert.deepEqual(validateConfig(JSON.parse(JSON.stringify(c))), c);
  // a derived field listed in `derived` is derived afresh even when its stale value is present
  const stale = { ...JSON.parse(JSON.stringify(c)), train: { ...c.train, lr: 0.5 } };
  assert.equal(validateConfig(stale).train.minLr, 0.05);
  assert.match(problems(() => validateConfig({ ...c, derived: ['train.lr'] })), /derived\[0\]: expected one of 'model\.ffn\.hidden' \| .*'train\.minLr' \| 'train\.warmup', got 'train\.lr'/);
});

test('resume with overrides: derived fields follow, given fields stay (issue 9 item 10)', () => {
  // what train --resume did: re-validate the frozen resolved config with the override merged in
  const frozen = (c: Config) => { const o = configForSave(c); delete o.derived; return o; };
  const run = loadConfig({ preset: 'tiny', overrides: { 'train.lr': 2e-3 } });
  assert.equal(run.train.minLr, 2e-4);
  assert.match(problems(() => configFromSaved(frozen(run), { 'train.lr': 1e-4 })), /train\.minLr: minLr \(0\.0002\) must be <= lr \(0\.0001\)/);
  const lowered = configFromSaved(configForSave(run), parseOverrides(['train.lr=1e-4']));
  assert.equal(lowered.train.lr, 1e-4);
  assert.equal(lowered.train.minLr, 1e-5);
  assert.equal(lowered.train.steps, run.train.steps, 'the rest as saved');
  // --steps 361 on a long run whose warm-up was derived from its steps
  const long = loadConfig({ preset: 'tiny', overrides: { 'train.steps': 10_000 } });
  assert.equal(long.train.warmup, 500);
  assert.match(problems(() => configFromSaved(frozen(long), { 'train.steps': 361 })), /train\.warmup: warmup \(500\) must be <= steps \(361\)/);
  const short = configFromSaved(configForSave(long), { 'train.steps': 361 });
  assert.deepEqual([short.train.steps, short.train.warmup], [361, 18]);
  // fields the user gave stay as given, and an override makes a derived field given
  const given = loadConfig({ preset: 'tiny', overrides: { 'train.minLr': 1e-4, 'train.warmup': 40 } });
  const g2 = configFromSaved(configForSave(given), { 'train.lr': 1e-3, 'train.steps': 900 });
  assert.deepEqual([g2.train.minLr, g2.train.warmup], [1e-4, 40]);
  assert.match(problems(() => configFromSaved(configForSave(given), { 'train.steps': 39 })), /warmup \(40\) must be <= steps \(39\)/);
  const pinned = configFromSaved(configForSave(run), { 'train.minLr': 3e-5 });
  assert.equal(pinned.train.minLr, 3e-5);
  assert.ok(!pinned.derived.includes('train.minLr'));
  assert.equal(configFromSaved(configForSave(pinned), { 'train.lr': 1e-4 }).train.minLr, 3e-5, 'stays given on the next resume');
  // ffn: a derived evalCapacityFactor follows capacityFactor, an ffn type switch derives the new widths
  const moe = loadConfig({ preset: 'tiny-moe', overrides: { 'model.ffn.capacityFactor': 1.25 } });
  const m2 = configFromSaved(configForSave(moe), { 'model.ffn.capacityFactor': 2 }).model.ffn;
  assert.equal(m2.type === 'moe' && m2.evalCapacityFactor, 2);
  assert.deepEqual(configFromSaved(configForSave(moe), { 'model.ffn': { type: 'dense' } }).model.ffn, { type: 'dense', hidden: 512 });
  // no overrides: the saved config back, unchanged
  assert.deepEqual(configFromSaved(configForSave(moe)), moe);
  // a config.json written before `derived` existed: every value counts as given
  assert.deepEqual(configFromSaved(frozen(run)).derived, []);
});

test('readSavedConfig reads a run config.json with overrides (loadRunConfig reads the committed one)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moelab-saved-'));
  try {
    const c = loadConfig({ preset: 'tiny', overrides: { 'train.steps': 4000 } });
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify(configForSave(c), null, 2));
    const r = readSavedConfig(file, { 'train.steps': 361, 'train.lr': 1e-4, 'train.threads': 2 });
    assert.deepEqual([r.train.steps, r.train.warmup, r.train.lr, r.train.minLr, r.train.threads], [361, 18, 1e-4, 1e-5, 2]);
    assert.deepEqual(readSavedConfig(file, { 'data.paths': ['new.txt'] }).data.paths, [resolve('new.txt')]);
    assert.match(problems(() => readSavedConfig(join(dir, 'nope', 'config.json'))), /config file not found: .*nope\/config\.json/);
    // a folder that is not a checkpoint: loadRunConfig says so (it reads only committed configs)
    assert.throws(() => loadRunConfig(dir), /state\.json is missing/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('data paths become absolute: relative to the config file, or to the cwd for flags (issue 9 item 7)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moelab-paths-'));
  try {
    mkdirSync(join(dir, 'sub'));
    const file = join(dir, 'sub', 'c.json');
    writeFileSync(file, JSON.stringify({ model: { d: 32, layers: 1, heads: 2, seq: 16 }, data: { paths: ['corpus.txt', '../other', '/abs/x.txt'] } }));
    assert.deepEqual(loadConfig({ configPath: file }).data.paths, [join(dir, 'sub', 'corpus.txt'), join(dir, 'other'), '/abs/x.txt']);
    // flags (overrides) are relative to the cwd (or the cwd given)
    assert.deepEqual(loadConfig({ configPath: file, overrides: { 'data.paths': ['f.txt'] } }).data.paths, [resolve('f.txt')]);
    assert.deepEqual(loadConfig({ preset: 'tiny', overrides: { 'data.paths': ['f.txt'] }, cwd: dir }).data.paths, [join(dir, 'f.txt')]);
    assert.deepEqual(validateConfig({ model: { d: 32, layers: 1, heads: 2, seq: 16 }, data: { paths: ['x'] } }).data.paths, [resolve('x')]);
    assert.deepEqual(resolveConfig({ model: { d: 32, layers: 1, heads: 2, seq: 16 }, data: { paths: ['x'] } }, { baseDir: '/runs' }).data.paths, ['/runs/x']);
    // a saved config keeps naming the same files from any cwd
    const saved = configForSave(loadConfig({ configPath: file }));
    assert.deepEqual(configFromSaved(saved, {}, { cwd: '/elsewhere' }).data.paths, loadConfig({ configPath: file }).data.paths);
    // bad entries are still reported by the schema
    assert.match(problems(() => validateConfig({ model: { d: 32, layers: 1, heads: 2, seq: 16 }, data: { paths: [''] } })), /data\.paths\[0\]: expected a non-empty string/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('configHash: stable across key order, moves with lr, not with threads / logging / name', () => {
  const c = loadConfig({ preset: 'moe8-d256' });
  const h = configHash(c);
  assert.match(h, /^[0-9a-f]{12}$/);
  // same config, keys in another order at every level
  const reversed = (v: unknown): unknown => Array.isArray(v) ? v.map(reversed)
    : typeof v === 'object' && v !== null ? Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reversed(x)])) : v;
  const shuffled = reversed(c) as Config;
  assert.notEqual(JSON.stringify(shuffled), JSON.stringify(c));
  assert.equal(configHash(shuffled), h);
  assert.equal(configHash(validateConfig(JSON.parse(JSON.stringify(c)))), h, 'a re-read config has the same hash');
  assert.notEqual(configHash(loadConfig({ preset: 'moe8-d256', overrides: { 'train.lr': 3e-4 } })), h);
  assert.notEqual(configHash(loadConfig({ preset: 'moe8-d256', overrides: { 'model.ffn.experts': 16 } })), h);
  assert.notEqual(configHash(loadConfig({ preset: 'moe8-d256', overrides: { 'train.seed': 1 } })), h);
  for (const o of [{ 'train.threads': 2 }, { 'train.logEvery': 1 }, { 'train.saveEvery': 7 }, { name: 'other' }]) {
    assert.equal(configHash(loadConfig({ preset: 'moe8-d256', overrides: o })), h, JSON.stringify(o));
  }
  // the same value given rather than derived is the same run
  assert.equal(configHash(loadConfig({ preset: 'moe8-d256', overrides: { 'train.minLr': 1e-4 } })), h);
  assert.equal(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }] }), '{"a":[{"c":2,"d":1}],"b":1}');
  assert.equal(configHash(c, 64).length, 64);
  assert.throws(() => configHash(c, 0), /length must be an integer in 4\.\.64/);
});

test('a run name is one safe folder name (issue 9 item 4)', () => {
  for (const bad of ['../../victim', '..', '.', 'a/b', 'a\\b', '', 'x'.repeat(129), 'tab\tname', 'ü']) {
    assert.match(problems(() => loadConfig({ overrides: { name: bad } })), /name: a run name must be one folder name of 1 to 128 letters, digits, '\.', '_' or '-' \(no '\/', not '\.' or '\.\.'\), got /, JSON.stringify(bad));
  }
  assert.match(problems(() => loadConfig({ overrides: { name: '../../victim' } })), /got "\.\.\/\.\.\/victim"/);
  for (const good of ['tiny', 'moe8-d256', 'run_1.2', '.hidden', 'a..b', 'x'.repeat(128)]) assert.equal(loadConfig({ overrides: { name: good } }).name, good);
  assert.match(problems(() => loadConfig({ overrides: { name: 5 } })), /name: expected string, got number/);
});
