// Opening a run for evaluation builds the model without its random init (loadWeights overwrites
// every tensor), and the opened model holds exactly the saved weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, buildModel, openRun, train } from '../src/index.js';
import { loadCheckpoint } from '../src/train/checkpoint.js';

const SMALL = { 'model.d': 32, 'model.layers': 2, 'model.heads': 2, 'model.seq': 32, 'train.batch': 2, 'train.steps': 2, 'train.warmup': 1, 'train.evalEvery': 100, 'train.evalBatches': 1 };

test('buildModel init: false draws nothing; openRun loads every saved tensor', async () => {
  const config = loadConfig({ preset: 'tiny-moe', overrides: SMALL });
  const bare = buildModel(config.model, 1, { init: false });
  const inited = buildModel(config.model, 1);
  const w = (m: typeof bare) => m.namedParameters().find(([n]) => n === 'blocks.0.attn.qkv.weight')![1].f32;
  assert.ok(w(bare).every((v) => v === 0), 'no random init');
  assert.ok(w(inited).some((v) => v !== 0));
  const dir = mkdtempSync(join(tmpdir(), 'moelab-load-'));
  try {
    await train({ config, dir: join(dir, 'run') });
    const saved = loadCheckpoint(join(dir, 'run'), { loadOptimizer: false }).model;
    const { model } = openRun(join(dir, 'run'));
    for (const [name, t] of [...model.namedParameters(), ...model.namedBuffers()]) {
      assert.deepEqual(Array.from(t.data as Float32Array), Array.from(saved.get(name)!.data as Float32Array), name);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
