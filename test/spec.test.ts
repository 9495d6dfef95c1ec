// The resolved model spec: one per-layer description that building, counting, memory and tensor
// shapes all read. The modules built from it must have exactly the tensors and MACs it states.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, validateConfig } from '../src/config/load.js';
import { TRAINING_ONLY_MODEL_FIELDS, DERIVABLE_PATHS, type ModelConfig } from '../src/config/schema.js';
import { FFN_KINDS, FFN_TYPES, ffnKind } from '../src/spec/ffn/index.js';
import { resolveModelSpec, layerKinds } from '../src/spec/model.js';
import { countModel, parameterShapes, bufferShapes, peerTableNames, sparseTables } from '../src/spec/count.js';
import { estimateMemory, checkFits } from '../src/spec/memory.js';
import { buildModel } from '../src/nn/build.js';

const model = (m: object): ModelConfig => validateConfig({ model: m }).model;
const base = { d: 16, layers: 3, heads: 2, seq: 8 };
/** One small model per kind and variant. */
const VARIANTS: Record<string, ModelConfig> = {
  dense: model({ ...base, ffn: { type: 'dense', hidden: 24 } }),
  moe: model({ ...base, ffn: { type: 'moe', experts: 4, topk: 2, expertHidden: 12 } }),
  'moe sigmoid, loss-free bias': model({ ...base, ffn: { type: 'moe', experts: 4, topk: 2, expertHidden: 12, gate: 'sigmoid', expertBias: true, balance: 'seq-aux' } }),
  'moe expert choice': model({ ...base, ffn: { type: 'moe', experts: 4, topk: 2, expertHidden: 12, routing: 'expert-choice', capacityFactor: 1 } }),
  'moe fine-grained + shared, all layers': model({ ...base, ffn: { type: 'moe', experts: 3, topk: 1, expertHidden: 12, granularity: 2, sharedExperts: 2, layers: 'all' } }),
  peer: model({ ...base, ffn: { type: 'peer', nSub: 6, heads: 2, k: 3, dKey: 8, layers: [0, 2] } }),
  'peer bn': model({ ...base, ffn: { type: 'peer', nSub: 6, heads: 2, k: 3, dKey: 8, bn: true, activation: 'relu' } }),
  pkm: model({ ...base, ffn: { type: 'peer', nSub: 6, heads: 2, k: 3, dKey: 8, pkm: true, layers: [1] } }),
};

test('resolveModelSpec: each layer with its effective sizes', () => {
  const s = resolveModelSpec(loadConfig({ preset: 'moe64-d256' }).model);
  assert.deepEqual([s.vocab, s.vocabSize, s.d, s.heads, s.seq, s.dropout, s.lnEps], ['bytes', 256, 256, 4, 256, 0, 1e-5]);
  assert.deepEqual(s.layers.map((l) => [l.index, l.ffn.kind]), [[0, 'dense'], [1, 'moe'], [2, 'dense'], [3, 'moe']]);
  assert.deepEqual(s.layers[0].ffn, { kind: 'dense', hidden: 1024 });
  assert.deepEqual(s.layers[1].ffn, {
    kind: 'moe', experts: 64, topk: 2, hidden: 128, shared: 0, granularity: 1, coarse: { experts: 64, topk: 2, hidden: 128 },
    capacityFactor: 0, evalCapacityFactor: 0, renormalize: true, jitter: 0, auxCoef: 0.01, zCoef: 0,
    gate: 'softmax', routing: 'token-choice', evalRouting: 'token-choice', balance: 'aux', expertBias: false, biasRate: 0.001,
  });
  const g = resolveModelSpec(VARIANTS['moe fine-grained + shared, all layers']).layers[2].ffn;
  assert.equal(g.kind, 'moe');
  if (g.kind === 'moe') assert.deepEqual([g.experts, g.topk, g.hidden, g.shared, g.coarse], [6, 2, 6, 2, { experts: 3, topk: 1, hidden: 12 }]);
  const p = resolveModelSpec(loadConfig({ preset: 'peer1m-l2-d256' }).model);
  assert.deepEqual(layerKinds(p), ['dense', 'dense', 'peer', 'dense']);
  assert.deepEqual(p.layers[2].ffn, { kind: 'peer', nSub: 1024, experts: 1048576, heads: 8, k: 16, dKey: 128, bn: false, activation: 'gelu', pkm: false, bf16Moments: false, bf16Tables: false });
  assert.deepEqual(resolveModelSpec(VARIANTS.dense).layers.map((l) => l.ffn), Array(3).fill({ kind: 'dense', hidden: 24 }));
});

test('the modules built from the spec hold exactly the tensors the spec states', () => {
  for (const [name, cfg] of Object.entries(VARIANTS)) {
    const spec = resolveModelSpec(cfg);
    const gpt = buildModel(spec, 1);
    assert.deepEqual(gpt.namedParameters().map(([n, p]) => [n, p.shape]), [...parameterShapes(spec)], `${name}: parameters`);
    assert.deepEqual(gpt.namedBuffers().map(([n, b]) => [n, b.shape]), [...bufferShapes(spec)].map(([n, b]) => [n, b.shape]), `${name}: buffers`);
    // the sparse-gradient tensors are the ones the optimizer treats as PEER tables
    const sparse = new Set(gpt.modules().flatMap((m) => ('sparseParameters' in m ? (m as unknown as { sparseParameters(): object[] }).sparseParameters() : [])));
    assert.deepEqual(gpt.namedParameters().filter(([, p]) => sparse.has(p)).map(([n]) => n), peerTableNames(spec), `${name}: sparse tables`);
  }
});

test('sparse tables: the PEER u / v tables with their lookups per token and moment dtype', () => {
  const p = loadConfig({ preset: 'peer1m-all-d256' }).model;
  const t = sparseTables(p);
  assert.equal(t.length, 8);
  assert.deepEqual(t[0], { name: 'blocks.0.ffn.u.weight', shape: [1048576, 256], lookupsPerToken: 128, bf16Moments: true, bf16: false });
  assert.deepEqual(sparseTables(VARIANTS.pkm).map((x) => [x.name, x.bf16Moments]), [['blocks.1.ffn.v.weight', false]]);
  assert.deepEqual(sparseTables(VARIANTS.moe), []);
});

test('a spec and its config build, count and estimate the same', () => {
  const cfg = VARIANTS['peer bn'];
  const spec = resolveModelSpec(cfg);
  const a = buildModel(cfg, 5).namedParameters(), b = buildModel(spec, 5).namedParameters();
  a.forEach(([n, p], i) => assert.deepEqual([n, Array.from(p.contiguous().f32)], [b[i][0], Array.from(b[i][1].contiguous().f32)]));
  assert.deepEqual(countModel(cfg), countModel(spec));
  const t = { batch: 2, accum: 1 };
  assert.equal(estimateMemory(cfg, t).total, estimateMemory(spec, t).total);
  assert.equal(checkFits(estimateMemory(spec, t), 1).fits, false);
});

test('the kind registry: names, schemas, derived and training-only fields', () => {
  assert.deepEqual(FFN_TYPES, ['dense', 'moe', 'peer']);
  for (const k of FFN_KINDS) {
    assert.equal(ffnKind(k.type), k);
    assert.equal(k.schema.shape.type.value, k.type, `${k.type}: schema literal`);
    for (const f of [...k.derivable, ...k.trainingOnly]) assert.ok(f in k.schema.shape, `${k.type}.${f} is a schema field`);
  }
  assert.throws(() => ffnKind('moee'), /unknown feed-forward kind 'moee'; known kinds: dense, moe, peer/);
  assert.deepEqual([...TRAINING_ONLY_MODEL_FIELDS].sort(), ['dropout', 'ffn.auxCoef', 'ffn.balance', 'ffn.bf16Moments', 'ffn.biasRate', 'ffn.capacityFactor', 'ffn.evalCapacityFactor', 'ffn.jitter', 'ffn.zCoef']);
  assert.deepEqual([...DERIVABLE_PATHS].sort(), ['model.ffn.balance', 'model.ffn.evalCapacityFactor', 'model.ffn.evalRouting', 'model.ffn.expertHidden', 'model.ffn.hidden', 'train.minLr', 'train.warmup']);
});
