// Fine-tuning on a task: the answer is the only thing trained on, frozen groups do not move, the
// gold answer becomes more likely, and the fine-tuned run records its parent.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, buildModel, getTokenizer, openRun, train } from '../src/index.js';
import { finetune, encodeExample, freezeGroup } from '../src/eval/finetune.js';
import { finetuneRun } from '../src/eval/finetune_run.js';
import { evaluateTask } from '../src/eval/task_eval.js';
import { parseTask } from '../src/eval/task_format.js';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { nativeKernels } from '../src/backend/index.js';

const tok = getTokenizer('bytes');
const SMALL = { 'model.d': 32, 'model.layers': 2, 'model.heads': 2, 'model.seq': 32, 'train.batch': 4, 'train.warmup': 1, 'train.evalEvery': 100, 'train.evalBatches': 1 };

// the answer follows from the context's letter; train and test items share the rule
const task = parseTask(Array.from({ length: 24 }, (_, i) => JSON.stringify({
  context: `Item ${String.fromCharCode(65 + (i % 4))}${i}:`, choices: ['no', 'yes'], gold: i % 4 < 2 ? 1 : 0, split: i < 16 ? 'train' : 'test',
})).join('\n'), 'letters');

describe('finetune', () => {
  test('examples: the answer starts after the context (whitespace moved), cut from the left to seq + 1', () => {
    assert.deepEqual(encodeExample(tok, 'Q: a ', ' yes', 32), { tokens: Int32Array.from(Buffer.from('Q: a  yes')), answer: 4 });
    const long = encodeExample(tok, 'x'.repeat(40), ' ok', 32);
    assert.equal(long.tokens.length, 33);
    assert.equal(long.answer, 30);
    assert.equal(freezeGroup('blocks.1.ffn.router.weight'), 'router');
    assert.equal(freezeGroup('blocks.1.ffn.w1'), 'experts');
    assert.equal(freezeGroup('blocks.0.ffn.fc1.weight'), 'dense');
    assert.equal(freezeGroup('tok.weight'), 'dense');
  });

  test('the gold answer becomes likelier; frozen groups stay put, the rest moves', () => {
    const config = loadConfig({ preset: 'tiny-moe', overrides: SMALL });
    const model = buildModel(config.model, 1);
    const before = evaluateTask(model, tok, task).metrics.gold_ll.mean;
    const snap = new Map(model.namedParameters().map(([n, p]) => [n, p.f32.slice()]));
    const r = finetune(model, tok, config, task, { steps: 30, lr: 3e-3, batch: 8, freeze: ['router', 'experts'] });
    const after = evaluateTask(model, tok, task).metrics.gold_ll.mean;
    assert.ok(after > before + 1, `gold log-likelihood ${before} -> ${after}`);
    assert.ok(r.losses[r.losses.length - 1] < r.losses[0], `loss ${r.losses[0]} -> ${r.losses.at(-1)}`);
    assert.ok(r.frozen.some((n) => n.endsWith('router.weight')) && r.frozen.some((n) => n.endsWith('ffn.w1')));
    for (const [n, p] of model.namedParameters()) {
      const same = p.f32.every((v, i) => v === snap.get(n)![i]);
      assert.equal(same, r.frozen.includes(n), `${n}: ${same ? 'unchanged' : 'changed'}`);
      assert.equal(p.requiresGrad, true, 'requiresGrad restored');
    }
    assert.ok(r.aux.every((a) => a > 0), 'the balancing loss is on by default');
    const off = finetune(model, tok, config, task, { steps: 3, lr: 1e-3, balance: false });
    assert.deepEqual(off.aux, [0, 0, 0]);
    const moe = model.modules().find((m) => (m as { o?: { auxCoef?: number } }).o?.auxCoef !== undefined) as unknown as { o: { auxCoef: number } };
    assert.equal(moe.o.auxCoef, config.model.ffn.type === 'moe' ? config.model.ffn.auxCoef : NaN, 'weights restored');
    assert.throws(() => finetune(model, tok, config, parseTask('{"context":"a","choices":["b"],"gold":0}', 't'), {}), /no train items/);
  });

  test('finetuneRun: new runs record the parent, before/after over seeds; never overwrites', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'moelab-ft-'));
    writeFileSync(join(dir, 'c.txt'), 'Item A1: yes\nItem C2: no\n'.repeat(300));
    const config = loadConfig({ preset: 'tiny', overrides: { ...SMALL, 'train.steps': 4, 'data.paths': [join(dir, 'c.txt')] } });
    await train({ config, dir: join(dir, 'parent') });
    const rep = finetuneRun(join(dir, 'parent'), task, { out: join(dir, 'ft'), steps: 20, lr: 3e-3, seeds: 2 });
    assert.equal(rep.after.length, 2);
    assert.ok(rep.summary.gold_ll.afterMean > rep.summary.gold_ll.before, JSON.stringify(rep.summary.gold_ll));
    assert.ok(rep.summary.gold_ll.afterStd > 0, 'seeds differ');
    const state = JSON.parse(readFileSync(join(dir, 'ft', 'seed-1', 'state.json'), 'utf8')).state;
    assert.equal(state.finetune.parent, join(dir, 'parent'));
    assert.equal(state.finetune.seed, 1);
    const ft = openRun(join(dir, 'ft', 'seed-0'));
    assert.ok(Math.abs(evaluateTask(ft.model, ft.tokenizer, task).metrics.acc.mean - rep.after[0].result.metrics.acc.mean) < 1e-12);
    assert.throws(() => finetuneRun(join(dir, 'parent'), task, { out: join(dir, 'ft'), steps: 1, seeds: 2 }), /already holds a run/);
  });

  test('precision: fp32 by default whatever the parent trained in, bf16 on request; recorded in the new run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'moelab-ft-prec-'));
    writeFileSync(join(dir, 'c.txt'), 'Item A1: yes\nItem C2: no\n'.repeat(300));
    const bf16 = nativeKernels().cpuInfo().bf16;
    const config = loadConfig({ preset: 'tiny', overrides: { ...SMALL, 'train.steps': 4, 'data.paths': [join(dir, 'c.txt')], ...(bf16 ? { 'train.precision': 'bf16' } : {}) } });
    await train({ config, dir: join(dir, 'parent') });
    const saved = (d: string) => JSON.parse(readFileSync(join(dir, d, 'config.json'), 'utf8')).train.precision;
    const fp32 = finetuneRun(join(dir, 'parent'), task, { out: join(dir, 'fp32'), steps: 6, lr: 3e-3 });
    assert.equal(saved('fp32'), 'fp32');
    assert.equal(JSON.parse(readFileSync(join(dir, 'fp32', 'state.json'), 'utf8')).state.finetune.precision, 'fp32');
    assert.throws(() => finetuneRun(join(dir, 'parent'), task, { out: join(dir, 'bad'), precision: 'fp16' as 'fp32' }), /'fp32' or 'bf16'/);
    assert.ok(!existsSync(join(dir, 'bad')));
    if (!bf16) return;
    const half = finetuneRun(join(dir, 'parent'), task, { out: join(dir, 'bf16'), steps: 6, lr: 3e-3, precision: 'bf16' });
    assert.equal(saved('bf16'), 'bf16');
    const l32 = fp32.after[0].finalLoss, l16 = half.after[0].finalLoss;
    assert.notEqual(l16, l32, 'bf16 reached the GEMMs');
    // measured 1.1e-4 relative; 2e-3 as in bf16_train.test, far below what a wrong path would give
    assert.ok(Math.abs(l16 - l32) <= 2e-3 * l32, `fine-tune loss bf16 ${l16} vs fp32 ${l32}`);
  });
});
