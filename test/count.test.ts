import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { loadConfig, validateConfig } from '../src/config/load.js';
import { countModel, parameterShapes, bufferShapes, modelTensorShapes, formatCount } from '../src/spec/count.js';
import { estimateMemory, checkFits, formatBytes, availableMemory, type MemoryEstimate } from '../src/spec/memory.js';
import type { ModelConfig } from '../src/config/schema.js';

/**
 * What moe_lm.py prints for the reference runs (../shared/peers/torch/results_zen3/results.jsonl:
 * params_total, params_active, fwd_macs_per_token, flops_per_token).
 */
const REFERENCE: Record<string, { tag: string; total: number; active: number; macs: number; flops: number }> = {
  'dense-d256': { tag: 'a_dense', total: 3290624, active: 3290624, macs: 3211264, flops: 22413312 },
  'moe8-d256': { tag: 'b_moe8', total: 10652672, active: 4345856, macs: 4263936, flops: 28729344 },
  'moe64-d256': { tag: 'c_moe64', total: 10710016, active: 2535936, macs: 2457600, flops: 17891328 },
  'peer65k-d256': { tag: 'd_peer64k', total: 136585728, active: 2630144, macs: 3473408, flops: 23986176 },
  'peer1m-l2-d256': { tag: 'e_peer1M_1layer', total: 540029184, active: 3223808, macs: 4063232, flops: 27525120 },
};

const model = (m: object): ModelConfig => validateConfig({ model: m }).model;
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

test('counts equal what the PyTorch reference prints, exactly', () => {
  for (const [preset, ref] of Object.entries(REFERENCE)) {
    const c = countModel(loadConfig({ preset }).model);
    assert.deepEqual([c.paramsTotal, c.paramsActive, c.fwdMacsPerToken, c.flopsPerToken], [ref.total, ref.active, ref.macs, ref.flops], preset);
  }
  // the table in RESULTS_zen3.md
  const m = (p: string) => countModel(loadConfig({ preset: p }).model);
  assert.equal((m('dense-d256').paramsTotal / 1e6).toFixed(2), '3.29');
  assert.equal((m('dense-d256').flopsPerToken / 1e6).toFixed(2), '22.41');
  assert.equal(formatCount(m('moe8-d256').paramsActive), '4.35M');
  assert.equal(formatCount(m('peer65k-d256').paramsTotal), '136.59M');
  assert.equal(formatCount(m('peer1m-all-d256').paramsTotal), '2.15B');
});

test('counts agree with the reference results file when it is present', () => {
  const file = new URL('../../../shared/peers/torch/results_zen3/results.jsonl', import.meta.url);
  if (!existsSync(file)) return; // ../shared is beside the repository in CI and development
  const rows = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { tag: string; data: Record<string, number> });
  for (const [preset, ref] of Object.entries(REFERENCE)) {
    const row = rows.find((r) => r.tag === ref.tag);
    assert.ok(row, ref.tag);
    const c = countModel(loadConfig({ preset }).model);
    assert.deepEqual([c.paramsTotal, c.paramsActive, c.fwdMacsPerToken, c.flopsPerToken],
      [row.data.params_total, row.data.params_active, row.data.fwd_macs_per_token, row.data.flops_per_token], preset);
  }
});

test('sparsity: 1 - k/E for MoE, 1 - h*k/N for PEER, 0 for dense', () => {
  const s = (p: string) => countModel(loadConfig({ preset: p }).model).sparsity;
  assert.equal(s('dense-d256'), 0);
  assert.equal(s('moe8-d256'), 1 - 2 / 8);
  assert.equal(s('moe64-d256'), 1 - 2 / 64);
  assert.equal(s('peer65k-d256'), 1 - (8 * 16) / 65536);
  assert.equal(s('peer1m-l2-d256'), 1 - (8 * 16) / 1048576);
});

test('per-layer breakdown adds up; layer kinds follow the placement rules', () => {
  const c = countModel(loadConfig({ preset: 'moe8-d256' }).model);
  assert.deepEqual(c.perLayer.map((l) => l.kind), ['dense', 'moe', 'dense', 'moe']);
  assert.equal(c.embeddingParams + c.perLayer.reduce((s, l) => s + l.params, 0), c.paramsTotal);
  assert.equal(c.embeddingParams + c.perLayer.reduce((s, l) => s + l.active, 0), c.paramsActive);
  assert.equal(256 * 256 + c.perLayer.reduce((s, l) => s + l.macs, 0), c.fwdMacsPerToken);
  const p = countModel(loadConfig({ preset: 'peer1m-l2-d256' }).model);
  assert.deepEqual(p.perLayer.map((l) => l.kind), ['dense', 'dense', 'peer', 'dense']);
  assert.equal(p.expertParamsTotal, 2 * 1048576 * 256);
  assert.equal(p.expertParamsActive, 8 * 16 * 2 * 256);
});

test('granularity and shared experts extend the convention', () => {
  const d = 64, E = 4, k = 1, h = 256, G = 4, L = 2, S = 32;
  const base = { d, layers: L, heads: 2, seq: S };
  const g1 = countModel(model({ ...base, ffn: { type: 'moe', experts: E, topk: k, expertHidden: h } }));
  const g4 = countModel(model({ ...base, ffn: { type: 'moe', experts: E, topk: k, expertHidden: h, granularity: G, sharedExperts: 1 } }));
  const EG = E * G, kG = k * G, hG = h / G;
  const expert = 2 * d * hG + hG + d;
  const shared = 2 * d * hG + hG + d;
  // layer 1 is MoE, layer 0 dense; the difference is all in layer 1's ffn
  assert.equal(g4.perLayer[1].ffnParams, EG * d + EG * expert + shared);
  assert.equal(g4.perLayer[1].ffnActive, EG * d + kG * expert + shared);
  assert.equal(g4.perLayer[1].ffnMacs, EG * d + kG * 2 * d * hG + 2 * d * hG);
  assert.equal(g4.sparsity, 1 - kG / EG);
  assert.equal(g4.perLayer[0].ffnParams, g1.perLayer[0].ffnParams, 'dense layers untouched');
  const shapes = parameterShapes(model({ ...base, ffn: { type: 'moe', experts: E, topk: k, expertHidden: h, granularity: G, sharedExperts: 1 } }));
  assert.deepEqual(shapes.get('blocks.1.ffn.w1'), [EG, d, hG]);
  assert.deepEqual(shapes.get('blocks.1.ffn.shared.0.fc1.weight'), [hG, d]);
  assert.equal([...shapes.values()].reduce((s, v) => s + numel(v), 0), g4.paramsTotal);
});

test('PEER variants: BatchNorm parameters and buffers, values-only PKM', () => {
  const base = { d: 32, layers: 2, heads: 2, seq: 16 };
  const bn = model({ ...base, ffn: { type: 'peer', nSub: 8, heads: 2, k: 4, dKey: 16, bn: true, layers: [1] } });
  const c = countModel(bn);
  const plain = countModel(model({ ...base, ffn: { type: 'peer', nSub: 8, heads: 2, k: 4, dKey: 16, layers: [1] } }));
  assert.equal(c.paramsTotal - plain.paramsTotal, 2 * 2 * 16);
  assert.deepEqual([...bufferShapes(bn)], [
    ['blocks.1.ffn.bn.running_mean', { shape: [32], dtype: 'F32' }],
    ['blocks.1.ffn.bn.running_var', { shape: [32], dtype: 'F32' }],
    ['blocks.1.ffn.bn.num_batches_tracked', { shape: [], dtype: 'I64' }],
  ]);
  assert.ok(!parameterShapes(bn).has('blocks.1.ffn.bn.running_mean'), 'buffers are not parameters');
  assert.deepEqual(modelTensorShapes(bn).get('blocks.1.ffn.bn.num_batches_tracked'), []);
  const pkm = model({ ...base, ffn: { type: 'peer', nSub: 8, heads: 2, k: 4, dKey: 16, pkm: true } });
  const pc = countModel(pkm);
  const N = 64, d = 32;
  assert.equal(pc.perLayer[0].ffnParams, 2 * 16 * d + 8 * 16 + N * d);
  assert.equal(pc.perLayer[0].ffnMacs, 2 * 16 * d + 2 * 8 * 16 + 2 * 4 * d);
  assert.equal(pc.sparsity, 1 - 8 / 64);
  assert.ok(!parameterShapes(pkm).has('blocks.0.ffn.u.weight'));
});

test('parameterShapes uses the reference state_dict names and layouts', () => {
  const moe = parameterShapes(loadConfig({ preset: 'moe8-d256' }).model);
  const names = [...moe.keys()];
  assert.deepEqual(names.slice(0, 2), ['tok.weight', 'pos.weight']);
  assert.deepEqual(names.slice(-2), ['ln_f.weight', 'ln_f.bias']);
  assert.ok(!moe.has('lm_head.weight'), 'head is tied');
  assert.deepEqual(names.filter((n) => n.startsWith('blocks.0.')), [
    'blocks.0.ln1.weight', 'blocks.0.ln1.bias', 'blocks.0.attn.qkv.weight', 'blocks.0.attn.qkv.bias', 'blocks.0.attn.proj.weight',
    'blocks.0.attn.proj.bias', 'blocks.0.ln2.weight', 'blocks.0.ln2.bias', 'blocks.0.ffn.fc1.weight', 'blocks.0.ffn.fc1.bias',
    'blocks.0.ffn.fc2.weight', 'blocks.0.ffn.fc2.bias',
  ]);
  assert.deepEqual(names.filter((n) => n.startsWith('blocks.1.ffn')), ['blocks.1.ffn.w1', 'blocks.1.ffn.b1', 'blocks.1.ffn.w2', 'blocks.1.ffn.b2', 'blocks.1.ffn.router.weight']);
  assert.deepEqual(moe.get('tok.weight'), [256, 256]);
  assert.deepEqual(moe.get('pos.weight'), [256, 256]);
  assert.deepEqual(moe.get('blocks.0.attn.qkv.weight'), [768, 256]);
  assert.deepEqual(moe.get('blocks.0.ffn.fc1.weight'), [1024, 256]);
  assert.deepEqual(moe.get('blocks.0.ffn.fc2.weight'), [256, 1024]);
  assert.deepEqual(moe.get('blocks.1.ffn.w1'), [8, 256, 1024]);
  assert.deepEqual(moe.get('blocks.1.ffn.b1'), [8, 1024]);
  assert.deepEqual(moe.get('blocks.1.ffn.w2'), [8, 1024, 256]);
  assert.deepEqual(moe.get('blocks.1.ffn.b2'), [8, 256]);
  assert.deepEqual(moe.get('blocks.1.ffn.router.weight'), [8, 256]);
  const peer = parameterShapes(loadConfig({ preset: 'peer65k-d256' }).model);
  assert.deepEqual([...peer.keys()].filter((n) => n.startsWith('blocks.2.ffn')), ['blocks.2.ffn.keys', 'blocks.2.ffn.query.weight', 'blocks.2.ffn.u.weight', 'blocks.2.ffn.v.weight']);
  assert.deepEqual(peer.get('blocks.2.ffn.keys'), [2, 256, 64]);
  assert.deepEqual(peer.get('blocks.2.ffn.query.weight'), [1024, 256]);
  assert.deepEqual(peer.get('blocks.2.ffn.u.weight'), [65536, 256]);
  assert.deepEqual(peer.get('blocks.2.ffn.v.weight'), [65536, 256]);
  assert.deepEqual(parameterShapes(model({ vocab: 'gpt2', d: 8, layers: 1, heads: 2, seq: 4 })).get('tok.weight'), [50257, 8]);
  for (const preset of Object.keys(REFERENCE)) {
    const m = loadConfig({ preset }).model;
    assert.equal([...parameterShapes(m).values()].reduce((s, v) => s + numel(v), 0), countModel(m).paramsTotal, preset);
  }
});

// ---------------------------------------------------------------------------------------------
// memory

const est = (preset: string, over: Record<string, unknown> = {}, opts = {}): MemoryEstimate => {
  const c = loadConfig({ preset, overrides: over });
  return estimateMemory(c.model, c.train, opts);
};

test('memory estimate: parameters, dense vs row-sparse gradients, fp32 vs bf16 moments', () => {
  const dense = est('dense-d256');
  assert.equal(dense.params, 3290624 * 4);
  assert.equal(dense.grads, 3290624 * 4);
  assert.equal(dense.optimizer, 3290624 * 8);
  assert.ok(dense.activations > 50 * 2 ** 20 && dense.activations < 1024 * 2 ** 20, formatBytes(dense.activations));
  assert.equal(dense.total, dense.params + dense.grads + dense.optimizer + dense.activations + dense.runtime);
  // activations scale with the micro-batch
  assert.ok(Math.abs(est('dense-d256', { 'train.batch': 16 }).activations / dense.activations - 2) < 1e-9);

  const peer = est('peer1m-l2-d256');
  const tables = 2 * 1048576 * 256;
  assert.equal(peer.detail.peerTableParams, tables);
  assert.equal(peer.detail.peerGrads, 'row-sparse');
  assert.ok(peer.grads < (540029184 - tables) * 4 + 0.3 * tables * 4, 'row-sparse table gradients are a fraction of the table');
  const denseGrads = est('peer1m-l2-d256', {}, { peerSparseGrads: false });
  assert.equal(denseGrads.grads, 540029184 * 4);
  const bf = est('peer1m-l2-d256', { 'model.ffn.bf16Moments': true });
  assert.equal(peer.optimizer - bf.optimizer, tables * 4);
  assert.equal(bf.detail.peerMoments, 'bf16');
});

test('checkFits: fits, or says what would make it fit', () => {
  const dense = est('dense-d256');
  const ok = checkFits(dense, 64 * 2 ** 30);
  assert.equal(ok.fits, true);
  assert.deepEqual(ok.suggestions, []);
  assert.match(ok.message, /estimated training memory .* parameters 12\.6 MiB/);

  const big = est('peer1m-all-d256', { 'model.ffn.bf16Moments': false });
  const r = checkFits(big, 22 * 2 ** 30);
  assert.equal(r.fits, false);
  assert.match(r.message, /does not fit in memory: estimated training memory [\d.]+ GiB: parameters .*AdamW moments .*only 22\.00 GiB available/);
  assert.match(r.suggestions[0], /^model\.ffn\.bf16Moments: true \(saves [\d.]+ GiB, then it fits\)$/);
  assert.ok(checkFits(est('peer1m-all-d256'), 22 * 2 ** 30).fits, 'the preset (bf16 moments) fits in 22 GiB');

  // activation-bound: smaller micro-batches with accumulation
  const act = est('dense-d256', { 'train.batch': 256 });
  const need = act.total - act.activations / 2;
  const r2 = checkFits(act, need + 1);
  assert.equal(r2.fits, false);
  assert.match(r2.suggestions.at(-1)!, /^train\.batch: 128 with train\.accum: 2 \(same tokens per step/);
  const r3 = checkFits(act, 1);
  assert.match(r3.suggestions.at(-1)!, /a smaller model/);
  const a = availableMemory();
  assert.ok(a.bytes > 0 && a.source.length > 0);
});
