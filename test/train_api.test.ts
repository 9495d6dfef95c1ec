// Training through the library API, no CLI: typed events to listeners, stop by AbortSignal,
// resume equal to an uninterrupted run with dropout and router jitter on, and divergence that never
// replaces the last good checkpoint.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { train, openRun, TrainingDiverged, evaluateFile, type TrainEvent } from '../src/index.js';
import type { Config } from '../src/index.js';
import { tinyTrainConfig, checkpointWeights } from './train_util.js';

let dir = '';
let corpus = '';

const config = (over: Record<string, unknown> = {}): Config => tinyTrainConfig(corpus, over);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'moelab-api-'));
  corpus = join(dir, 'corpus.txt');
  const words = ['alpha', 'beta', 'gamma', 'delta', 'experts', 'route', 'tokens', 'to', 'the', 'model'];
  let text = '';
  for (let i = 0; i < 3000; i++) text += words[(i * 7 + (i >> 2)) % words.length] + (i % 9 === 8 ? '.\n' : ' ');
  writeFileSync(corpus, text);
});

const weights = (run: string): Buffer => checkpointWeights(join(dir, run));

describe('train() as a library', () => {
  test("the package imports as 'moelab' (self-reference through package.json exports)", async () => {
    const lib = await import('moelab');
    for (const f of ['train', 'trainStep', 'loadConfig', 'openRun', 'evaluateFile', 'generate', 'countModel', 'buildModel']) {
      assert.equal(typeof (lib as Record<string, unknown>)[f], 'function', f);
    }
  });

  test('reports typed events in order to listeners and writes metrics.jsonl', async () => {
    const events: TrainEvent[] = [];
    const r = await train({ config: config(), dir: join(dir, 'events'), listeners: [(e) => void events.push(e)] });
    assert.equal(r.stoppedBy, 'done');
    assert.equal(r.step, 12);
    const types = events.map((e) => e.type);
    assert.equal(types[0], 'start');
    assert.equal(types[types.length - 1], 'done');
    assert.equal(types.filter((t) => t === 'step').length, 12);
    assert.deepEqual(events.filter((e) => e.type === 'eval').map((e) => e.step), [4, 8, 12]);
    assert.deepEqual(events.filter((e) => e.type === 'checkpoint').map((e) => (e as { reason: string }).reason), ['end']);
    const steps = events.filter((e): e is Extract<TrainEvent, { type: 'step' }> => e.type === 'step');
    assert.deepEqual(steps.map((e) => e.step), Array.from({ length: 12 }, (_, i) => i + 1));
    assert.ok(steps.every((e) => Number.isFinite(e.loss) && e.tokensPerSecond > 0 && e.tokens === 4 * 32));
    const start = events[0] as Extract<TrainEvent, { type: 'start' }>;
    assert.equal(start.provenance.seed, 0);
    assert.match(start.provenance.moelab, /^\d+\.\d+\.\d+/);
    const lines = readFileSync(join(dir, 'events', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.filter((l) => l.type === 'train').length, 12);
    assert.equal(lines[0].type, 'start');
    // the model handed back is the one checkpointed
    const { model, tokenizer } = openRun(join(dir, 'events'));
    assert.equal(evaluateFile(model, tokenizer, corpus).loss, evaluateFile(r.model, r.tokenizer, corpus).loss);
  });

  test('an AbortSignal stops between steps with a checkpoint', async () => {
    const stop = new AbortController();
    const r = await train({
      config: config(), dir: join(dir, 'aborted'), signal: stop.signal,
      listeners: [(e) => { if (e.type === 'step' && e.step === 3) stop.abort(); }],
    });
    assert.equal(r.stoppedBy, 'stopped');
    assert.equal(r.step, 3);
    const state = JSON.parse(readFileSync(join(dir, 'aborted', 'state.json'), 'utf8'));
    assert.equal(state.state.step, 3);
  });

  test('a resumed run equals an uninterrupted one, with dropout and router jitter on', async () => {
    const over = {
      'model.dropout': 0.1, 'model.ffn': { type: 'moe', experts: 4, topk: 2, every: 1, jitter: 0.05 },
      'train.accum': 2, 'train.saveEvery': 5,
    };
    await train({ config: config(over), dir: join(dir, 'straight') });
    const first = await train({ config: config(over), dir: join(dir, 'split'), stopAt: 7 });
    assert.equal(first.stoppedBy, 'stopAt');
    const second = await train({ config: config(over), dir: join(dir, 'split'), resume: true });
    assert.equal(second.step, 12);
    assert.ok(weights('straight').equals(weights('split')), 'weights differ after resume');
    // and the noise matters: another seed gives other weights
    await train({ config: config({ ...over, 'train.seed': 1 }), dir: join(dir, 'seed1') });
    assert.ok(!weights('straight').equals(weights('seed1')));
    // metrics read as one run: every step once
    const trainSteps = readFileSync(join(dir, 'split', 'metrics.jsonl'), 'utf8').trim().split('\n')
      .map((l) => JSON.parse(l)).filter((l) => l.type === 'train').map((l) => l.step);
    assert.deepEqual(trainSteps, Array.from({ length: 12 }, (_, i) => i + 1));
  });

  test('resume refuses a corpus whose contents changed since the run started', async () => {
    const own = join(dir, 'own.txt');
    writeFileSync(own, readFileSync(corpus, 'utf8'));
    const cfg = config({ 'data.paths': [own] });
    await train({ config: cfg, dir: join(dir, 'datachange'), stopAt: 3 });
    writeFileSync(own, readFileSync(corpus, 'utf8').replace(/alpha/g, 'omega'));
    await assert.rejects(train({ config: cfg, dir: join(dir, 'datachange'), resume: true }), /cannot resume .*data differs.*own\.txt/s);
  });

  test('divergence keeps the last checkpoint whose loss is finite', async () => {
    const events: TrainEvent[] = [];
    // warm-up 0 and an absurd learning rate: the first update already ruins the weights
    const cfg = config({ 'train.lr': 1e30, 'train.minLr': 0, 'train.warmup': 0, 'train.saveEvery': 1, 'train.evalEvery': 0 });
    await assert.rejects(
      train({ config: cfg, dir: join(dir, 'diverged'), listeners: [(e) => void events.push(e)] }),
      (e: unknown) => e instanceof TrainingDiverged && /no checkpoint was saved|checkpoint of step/.test(e.message),
    );
    const d = events.find((e) => e.type === 'diverged') as Extract<TrainEvent, { type: 'diverged' }>;
    assert.ok(d, 'a diverged event');
    assert.ok(!events.some((e) => e.type === 'checkpoint' && e.step > (d.checkpointStep ?? 0)));
    if (d.checkpointStep !== null) {
      const { model, tokenizer } = openRun(join(dir, 'diverged'));
      assert.ok(Number.isFinite(evaluateFile(model, tokenizer, corpus).loss), 'the kept checkpoint evaluates to a finite loss');
    }
  });
});
