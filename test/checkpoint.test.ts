import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, readdirSync, unlinkSync, copyFileSync, truncateSync, statSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  saveCheckpoint, loadCheckpoint, isCheckpoint, diffModelConfigs, compareTensorShapes, CheckpointError, recoverCheckpoint, readCheckpointConfig,
  MODEL_FILE, OPTIMIZER_FILE, CONFIG_FILE, STATE_FILE, type CheckpointManifest,
} from '../src/train/checkpoint.js';
import type { TensorLike } from '../src/io/safetensors.js';
import { loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { modelTensorShapes, parameterShapes } from '../src/spec/count.js';
import { Rng } from '../src/util/random.js';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'moelab-ck-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Model tensors for a config, filled from a seed, plus a matching optimizer state. */
function fakeRun(cfg: Config, seed: number): { model: Map<string, TensorLike>; optimizer: Map<string, TensorLike> } {
  const rng = new Rng(seed);
  const model = new Map<string, TensorLike>();
  const optimizer = new Map<string, TensorLike>();
  for (const [name, shape] of parameterShapes(cfg.model)) {
    const n = shape.reduce((a, b) => a * b, 1);
    model.set(name, { shape, data: rng.fillNormal(new Float32Array(n), 0, 0.02) });
    optimizer.set(`adamw/${name}.exp_avg`, { shape, data: new Float32Array(n).fill(seed) });
  }
  optimizer.set('adamw/step', { dtype: 'I64', shape: [], data: BigInt64Array.of(BigInt(seed)) });
  return { model, optimizer };
}

const small = (over: Record<string, unknown> = {}) => loadConfig({ preset: 'tiny', overrides: { 'model.d': 32, 'model.seq': 16, ...over } });

function ckError(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `CheckpointError expected, got ${e}`);
    assert.match((e as Error).message, re);
    return true;
  });
}

test('save / load round trip; state.json is written last and records the other files', () => withDir((root) => {
  const dir = join(root, 'run', 'ckpt');
  const cfg = small();
  const { model, optimizer } = fakeRun(cfg, 1);
  const state = { step: 42, rng: new Rng(3).getState(), sampler: { drawn: 42 }, best: 1.25 };
  const m = saveCheckpoint(dir, { model, optimizer, config: cfg, state });
  assert.deepEqual(readdirSync(dir).sort(), [CONFIG_FILE, MODEL_FILE, OPTIMIZER_FILE, STATE_FILE].sort());
  const mtimes = Object.fromEntries([MODEL_FILE, OPTIMIZER_FILE, CONFIG_FILE, STATE_FILE].map((f) => [f, statSync(join(dir, f)).mtimeMs]));
  assert.ok(mtimes[STATE_FILE] >= Math.max(mtimes[MODEL_FILE], mtimes[OPTIMIZER_FILE], mtimes[CONFIG_FILE]));
  const manifest = JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8')) as CheckpointManifest;
  assert.equal(manifest.id, m.id);
  for (const f of [MODEL_FILE, OPTIMIZER_FILE, CONFIG_FILE]) {
    assert.equal(manifest.files[f].bytes, statSync(join(dir, f)).size);
    assert.match(manifest.files[f].sha256!, /^[0-9a-f]{64}$/);
  }
  assert.deepEqual(JSON.parse(readFileSync(join(dir, CONFIG_FILE), 'utf8')), cfg);
  assert.ok(isCheckpoint(dir));

  const ck = loadCheckpoint(dir, { expectConfig: cfg, expectModelShapes: modelTensorShapes(cfg.model), expectOptimizerShapes: new Map([...optimizer].map(([k, v]) => [k, v.shape])) });
  assert.deepEqual(ck.state, JSON.parse(JSON.stringify(state)));
  assert.deepEqual(ck.config, JSON.parse(JSON.stringify(cfg)));
  assert.deepEqual([...ck.model.keys()], [...model.keys()]);
  for (const [k, v] of model) assert.deepEqual(ck.model.get(k)!.data, v.data, k);
  assert.deepEqual(ck.optimizer!.get('adamw/step')!.data, BigInt64Array.of(1n));
  assert.equal(loadCheckpoint(dir, { loadOptimizer: false }).optimizer, null);

  // saving again over it replaces everything, with a new id
  const second = fakeRun(cfg, 2);
  const m2 = saveCheckpoint(dir, { ...second, config: cfg, state: { step: 43 } });
  assert.notEqual(m2.id, m.id);
  const ck2 = loadCheckpoint(dir);
  assert.equal(ck2.state.step, 43);
  assert.deepEqual(ck2.model.get('tok.weight')!.data, second.model.get('tok.weight')!.data);
  assert.deepEqual(readdirSync(dir).length, 4, 'no temp files left');
}));

test('a save that fails part-way leaves the previous checkpoint intact', () => withDir((root) => {
  const cfg = small();
  const dir = join(root, 'ck');
  const first = fakeRun(cfg, 1);
  saveCheckpoint(dir, { ...first, config: cfg, state: { step: 1 } });
  const bad = fakeRun(cfg, 2);
  bad.optimizer.set('broken', { shape: [3], data: new Float32Array(2) });
  assert.throws(() => saveCheckpoint(dir, { ...bad, config: cfg, state: { step: 2 } }), /tensor 'broken': shape \[3\] has 3 elements, data has 2/);
  assert.deepEqual(readdirSync(dir).sort(), [CONFIG_FILE, MODEL_FILE, OPTIMIZER_FILE, STATE_FILE].sort(), 'temp files removed');
  const ck = loadCheckpoint(dir);
  assert.equal(ck.state.step, 1);
  assert.deepEqual(ck.model.get('tok.weight')!.data, first.model.get('tok.weight')!.data);
  // a crashed earlier save's temp files are swept by the next save
  writeFileSync(join(dir, `${MODEL_FILE}.tmp-99999-deadbeef`), 'partial');
  saveCheckpoint(dir, { ...first, config: cfg, state: { step: 3 } });
  assert.equal(readdirSync(dir).length, 4);
}));

test('missing directory, interrupted save, corrupt manifest', () => withDir((root) => {
  ckError(() => loadCheckpoint(join(root, 'nope')), /checkpoint directory not found: .*nope/);
  writeFileSync(join(root, 'file'), 'x');
  ckError(() => loadCheckpoint(join(root, 'file')), /not a directory/);
  ckError(() => loadCheckpoint(root), /incomplete checkpoint: state\.json is missing \(.*not a checkpoint directory\)/);
  const cfg = small();
  const dir = join(root, 'ck');
  saveCheckpoint(dir, { ...fakeRun(cfg, 1), config: cfg, state: { step: 1 } });
  // a directory whose state.json is gone (deleted by hand, or a save from another tool)
  const stateText = readFileSync(join(dir, STATE_FILE), 'utf8');
  unlinkSync(join(dir, STATE_FILE));
  ckError(() => loadCheckpoint(dir), /incomplete checkpoint: state\.json is missing \(found only model\.safetensors, optimizer\.safetensors, config\.json; the save was interrupted\)/);
  assert.equal(isCheckpoint(dir), false);
  writeFileSync(join(dir, STATE_FILE), stateText.slice(0, 40));
  ckError(() => loadCheckpoint(dir), /state\.json is not valid JSON/);
  writeFileSync(join(dir, STATE_FILE), JSON.stringify({ hello: 1 }));
  ckError(() => loadCheckpoint(dir), /not a moelab checkpoint manifest/);
  writeFileSync(join(dir, STATE_FILE), stateText.replace('"version": 1', '"version": 99'));
  ckError(() => loadCheckpoint(dir), /format version 99 is not supported/);
  writeFileSync(join(dir, STATE_FILE), stateText);
  assert.doesNotThrow(() => loadCheckpoint(dir));
}));

test('truncated, corrupted and mixed files are detected', () => withDir((root) => {
  const cfg = small();
  const a = join(root, 'a'), b = join(root, 'b');
  saveCheckpoint(a, { ...fakeRun(cfg, 1), config: cfg, state: { step: 1 } });
  saveCheckpoint(b, { ...fakeRun(cfg, 2), config: cfg, state: { step: 2 } });
  const backup = join(root, 'model.bak');
  copyFileSync(join(a, MODEL_FILE), backup);

  truncateSync(join(a, MODEL_FILE), statSync(backup).size - 100);
  ckError(() => loadCheckpoint(a), /model\.safetensors has \d+ bytes but state\.json records \d+: the checkpoint is truncated, corrupt, or mixes files/);

  // same size, one flipped byte inside tensor data: caught by the hash
  copyFileSync(backup, join(a, MODEL_FILE));
  const fd = openSync(join(a, MODEL_FILE), 'r+');
  writeSync(fd, Buffer.from([0x42]), 0, 1, statSync(backup).size - 3);
  closeSync(fd);
  ckError(() => loadCheckpoint(a), /model\.safetensors content does not match its SHA-256/);
  assert.doesNotThrow(() => loadCheckpoint(a, { verifyHash: false }), 'sizes and ids still agree');

  // a model file from another save of the same architecture (same size): caught by the id
  copyFileSync(join(b, MODEL_FILE), join(a, MODEL_FILE));
  ckError(() => loadCheckpoint(a, { verifyHash: false }), /model\.safetensors belongs to another save/);
  copyFileSync(backup, join(a, MODEL_FILE));

  // optimizer file missing; config edited
  const opt = readFileSync(join(a, OPTIMIZER_FILE));
  unlinkSync(join(a, OPTIMIZER_FILE));
  ckError(() => loadCheckpoint(a), /optimizer\.safetensors is missing/);
  assert.doesNotThrow(() => loadCheckpoint(a, { loadOptimizer: false }));
  writeFileSync(join(a, OPTIMIZER_FILE), opt);
  const conf = readFileSync(join(a, CONFIG_FILE), 'utf8');
  writeFileSync(join(a, CONFIG_FILE), conf.replace('"d": 32', '"d": 33'));
  ckError(() => loadCheckpoint(a), /config\.json content does not match its SHA-256/);
  writeFileSync(join(a, CONFIG_FILE), conf);

  // a damaged safetensors header is reported with the file
  const good = readFileSync(join(a, MODEL_FILE));
  const bad = Buffer.from(good);
  bad.write('!', 8, 'latin1'); // the header's opening brace
  writeFileSync(join(a, MODEL_FILE), bad);
  ckError(() => loadCheckpoint(a, { verifyHash: false }), /model\.safetensors is unreadable: .*model\.safetensors: header is not a JSON object/);
  writeFileSync(join(a, MODEL_FILE), good);
  assert.doesNotThrow(() => loadCheckpoint(a));
}));

test('another architecture: the differing fields are named', () => withDir((root) => {
  const cfg = small();
  const dir = join(root, 'ck');
  saveCheckpoint(dir, { ...fakeRun(cfg, 1), config: cfg, state: {} });
  ckError(() => loadCheckpoint(dir, { expectConfig: small({ 'model.d': 64, 'model.layers': 3 }) }),
    /was saved from a different architecture:\n {2}model\.d: checkpoint 32, expected 64\n {2}model\.layers: checkpoint 2, expected 3/);
  ckError(() => loadCheckpoint(dir, { expectConfig: small({ 'model.ffn': { type: 'moe', experts: 4 } }) }), /model\.ffn\.type: checkpoint 'dense', expected 'moe'/);
  ckError(() => loadCheckpoint(dir, { expectConfig: small({ 'model.vocab': 'gpt2' }) }), /model\.vocab: checkpoint 'bytes', expected 'gpt2'/);
  // training-only knobs and train settings may change on resume
  assert.doesNotThrow(() => loadCheckpoint(dir, { expectConfig: small({ 'model.dropout': 0.1, 'train.steps': 5000, 'train.lr': 0.1 }) }));
  assert.deepEqual(diffModelConfigs({ d: 1, ffn: { type: 'moe', experts: 4, jitter: 0 } }, { d: 1, ffn: { type: 'moe', experts: 8, jitter: 0.1 } }), ['model.ffn.experts: checkpoint 4, expected 8']);
  assert.deepEqual(diffModelConfigs({ ffn: { type: 'peer', layers: [2] } }, { ffn: { type: 'peer', layers: 'all' } }), ["model.ffn.layers: checkpoint [2], expected 'all'"]);
}));

test('missing, extra and mis-shaped tensors are listed', () => withDir((root) => {
  const cfg = small();
  const dir = join(root, 'ck');
  const { model, optimizer } = fakeRun(cfg, 1);
  model.delete('blocks.1.attn.proj.bias');
  model.set('lm_head.weight', { shape: [2], data: new Float32Array(2) });
  model.set('pos.weight', { shape: [8, 32], data: new Float32Array(256) });
  saveCheckpoint(dir, { model, optimizer, config: cfg, state: {} });
  ckError(() => loadCheckpoint(dir, { expectModelShapes: modelTensorShapes(cfg.model) }),
    /model\.safetensors does not match the model being loaded:\n {2}missing 1 tensor\(s\): blocks\.1\.attn\.proj\.bias\n {2}unexpected 1 tensor\(s\): lm_head\.weight\n {2}mis-shaped: pos\.weight has shape \[8,32\], expected \[16,32\]/);
  assert.deepEqual(compareTensorShapes(new Map([['a', { shape: [1] }]]), { a: [1] }), []);
  const many = compareTensorShapes(new Map(), Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`t${i}`, [1]])));
  assert.match(many[0], /missing 12 tensor\(s\): t0, t1, .*t7, \.\.\. \(12 in all\)/);
}));

/** Every entry of a folder with its size, inode and mtime: equal snapshots mean nothing was touched. */
function snapshot(dir: string): string[] {
  return readdirSync(dir).sort().map((f) => {
    const st = statSync(join(dir, f));
    return `${f} ${st.size} ${st.ino} ${st.mtimeMs}`;
  });
}

/**
 * `dir` holds checkpoint step 1; `other` holds step 2. Returns step 2's manifest with pending
 * renames and a function that stages its files as the temps a save writes before its commit.
 */
function twoSaves(root: string) {
  const cfg = small();
  const dir = join(root, 'ck'), other = join(root, 'other');
  const first = fakeRun(cfg, 1), second = fakeRun(cfg, 2);
  saveCheckpoint(dir, { ...first, config: cfg, state: { step: 1 } });
  saveCheckpoint(other, { ...second, config: { ...cfg, note: 'second' }, state: { step: 2 } });
  const manifest = JSON.parse(readFileSync(join(other, STATE_FILE), 'utf8')) as CheckpointManifest;
  manifest.pending = [MODEL_FILE, OPTIMIZER_FILE, CONFIG_FILE].map((f, i) => ({ from: `${f}.tmp-4242-0${i}`, to: f }));
  const stageTemps = () => { for (const { from, to } of manifest.pending!) copyFileSync(join(other, to), join(dir, from)); };
  const commit = () => writeFileSync(join(dir, STATE_FILE), JSON.stringify(manifest));
  const rename = (f: string) => { unlinkSync(join(dir, manifest.pending!.find((p) => p.to === f)!.from)); copyFileSync(join(other, f), join(dir, f)); };
  return { dir, first, second, manifest, stageTemps, commit, rename };
}

/** Load read-only and check the folder is untouched and the checkpoint is entirely one save. */
function loadUntouched(dir: string, step: number, model: Map<string, TensorLike>) {
  const before = snapshot(dir);
  const ck = loadCheckpoint(dir);
  assert.deepEqual(snapshot(dir), before, 'the reader changed nothing');
  assert.equal(ck.state.step, step);
  assert.deepEqual(ck.model.get('tok.weight')!.data, model.get('tok.weight')!.data);
  assert.deepEqual(ck.optimizer!.get('adamw/step')!.data, BigInt64Array.of(BigInt(step)));
  assert.equal(ck.config.note, step === 2 ? 'second' : undefined);
  assert.equal(readCheckpointConfig(dir).config.note, step === 2 ? 'second' : undefined);
  assert.equal(isCheckpoint(dir), true);
  assert.deepEqual(snapshot(dir), before, 'the reader changed nothing');
}

test('every instant of a save: readers load one whole checkpoint and never touch the folder', () => withDir((root) => {
  const s = twoSaves(root);
  // 1. new temps written, state.json still the old one: the old checkpoint
  s.stageTemps();
  loadUntouched(s.dir, 1, s.first.model);
  // 2. committed, no rename yet: the new checkpoint, read from the temps the manifest lists
  s.commit();
  loadUntouched(s.dir, 2, s.second.model);
  // 3. some renames done
  s.rename(MODEL_FILE);
  loadUntouched(s.dir, 2, s.second.model);
  s.rename(CONFIG_FILE);
  loadUntouched(s.dir, 2, s.second.model);
  // 4. all renames done; state.json still lists them
  s.rename(OPTIMIZER_FILE);
  loadUntouched(s.dir, 2, s.second.model);
  assert.deepEqual(readdirSync(s.dir).sort(), [CONFIG_FILE, MODEL_FILE, OPTIMIZER_FILE, STATE_FILE].sort());
}));

test('a rename lost after the commit is reported, not papered over', () => withDir((root) => {
  const s = twoSaves(root);
  s.stageTemps();
  s.commit();
  unlinkSync(join(s.dir, s.manifest.pending![0].from)); // the new model is gone; the final name holds the old one
  ckError(() => loadCheckpoint(s.dir), /model\.safetensors belongs to another save .*mixes files from different saves/);
}));

test('the writer completes a save cut short after its commit point and sweeps uncommitted temps', () => withDir((root) => {
  const s = twoSaves(root);
  s.stageTemps();
  s.commit();
  s.rename(MODEL_FILE);
  writeFileSync(join(s.dir, `${OPTIMIZER_FILE}.tmp-777-abc`), 'an older crashed save'); // not listed: an orphan
  writeFileSync(join(s.dir, `${STATE_FILE}.tmp-777-abc`), '{');
  writeFileSync(join(s.dir, 'notes.tmp-777-abc'), 'not ours'); // not a checkpoint temp: left alone
  writeFileSync(join(s.dir, 'metrics.jsonl'), '{}\n');
  const r = recoverCheckpoint(s.dir);
  assert.deepEqual(r.completed.sort(), [`${CONFIG_FILE}.tmp-4242-02`, `${OPTIMIZER_FILE}.tmp-4242-01`]);
  assert.deepEqual(r.removed.sort(), [`${OPTIMIZER_FILE}.tmp-777-abc`, `${STATE_FILE}.tmp-777-abc`]);
  assert.deepEqual(readdirSync(s.dir).sort(), [CONFIG_FILE, MODEL_FILE, OPTIMIZER_FILE, STATE_FILE, 'metrics.jsonl', 'notes.tmp-777-abc'].sort());
  loadUntouched(s.dir, 2, s.second.model);
  assert.deepEqual(recoverCheckpoint(s.dir), { completed: [], removed: [] }, 'idempotent');
}));

test('a save that never committed: its temps are ignored by readers and removed by the writer', () => withDir((root) => {
  const s = twoSaves(root);
  s.stageTemps();
  loadUntouched(s.dir, 1, s.first.model);
  assert.equal(readdirSync(s.dir).length, 7, 'readers leave orphan temps alone');
  assert.equal(recoverCheckpoint(s.dir).removed.length, 3);
  assert.equal(readdirSync(s.dir).length, 4);
  loadUntouched(s.dir, 1, s.first.model);
}));

test('pending entries must be our temp names for our files: anything else is refused, nothing is moved', () => withDir((root) => {
  const s = twoSaves(root);
  writeFileSync(join(s.dir, 'metrics.jsonl'), '{"step":1}\n');
  s.stageTemps();
  const crafted: unknown[] = [
    [{ from: 'metrics.jsonl', to: CONFIG_FILE }],
    [{ from: '../evil', to: MODEL_FILE }],
    [{ from: `${CONFIG_FILE}.tmp-4242-02`, to: MODEL_FILE }],
    [{ from: `${MODEL_FILE}.tmp-4242-00`, to: STATE_FILE }],
    [{ from: `${MODEL_FILE}.tmp-4242-00`, to: MODEL_FILE }, { from: `${MODEL_FILE}.tmp-4242-00`, to: MODEL_FILE }],
    [{ from: `${MODEL_FILE}.tmp-4242-00/../../x`, to: MODEL_FILE }],
    [{ from: `${MODEL_FILE}.tmp-42x-00`, to: MODEL_FILE }],
    [{ from: 7, to: MODEL_FILE }],
    'all',
  ];
  for (const pending of crafted) {
    writeFileSync(join(s.dir, STATE_FILE), JSON.stringify({ ...s.manifest, pending }));
    const before = snapshot(s.dir);
    const re = typeof pending === 'string' ? /"pending" is not a list/ : /lists an invalid pending rename .*only moelab's own temp files.*nothing was changed/;
    ckError(() => loadCheckpoint(s.dir), re);
    ckError(() => recoverCheckpoint(s.dir), re);
    ckError(() => saveCheckpoint(s.dir, { ...s.first, config: small(), state: { step: 3 } }), re);
    assert.equal(isCheckpoint(s.dir), false);
    assert.deepEqual(snapshot(s.dir), before, `nothing moved for ${JSON.stringify(pending)}`);
  }
  assert.equal(readFileSync(join(s.dir, 'metrics.jsonl'), 'utf8'), '{"step":1}\n');
}));
