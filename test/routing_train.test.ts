// Routing in training runs: the loss-free balancing bias is checkpointed (model.safetensors) and a
// resumed run equals an uninterrupted one, also after kill -9 of the CLI; evaluations write per-layer routing statistics to
// metrics.jsonl; on a short run loss-free balancing leaves fewer dead experts than no balancing.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { train, openRun } from '../src/index.js';
import type { Config } from '../src/index.js';
import { tinyTrainConfig, checkpointWeights } from './train_util.js';

let dir = '';
let corpus = '';

const config = (over: Record<string, unknown> = {}): Config => tinyTrainConfig(corpus, over);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'moelab-routing-'));
  corpus = join(dir, 'corpus.txt');
  const words = ['alpha', 'beta', 'gamma', 'delta', 'experts', 'route', 'tokens', 'to', 'the', 'model', 'choice', 'bias'];
  let text = '';
  for (let i = 0; i < 4000; i++) text += words[(i * 7 + (i >> 2)) % words.length] + (i % 9 === 8 ? '.\n' : ' ');
  writeFileSync(corpus, text);
});

const weights = (run: string): Buffer => checkpointWeights(join(dir, run));

interface EvalLine { type: 'eval'; step: number; ffn: Record<string, Record<string, number | number[]>> | null }
const evals = (run: string): EvalLine[] => readFileSync(join(dir, run, 'metrics.jsonl'), 'utf8').trim().split('\n')
  .map((l) => JSON.parse(l) as EvalLine).filter((l) => l.type === 'eval');

describe('routing in training', () => {
  test('the loss-free bias is checkpointed and a resumed run equals an uninterrupted one', async () => {
    const over = {
      'model.ffn': { type: 'moe', experts: 8, topk: 2, every: 1, expertBias: true, biasRate: 0.01, gate: 'sigmoid', balance: 'seq-aux', jitter: 0.05 },
      'train.accum': 2, 'train.saveEvery': 5,
    };
    await train({ config: config(over), dir: join(dir, 'straight') });
    await train({ config: config(over), dir: join(dir, 'split'), stopAt: 7 });
    const { model: mid } = openRun(join(dir, 'split'));
    const midBias = mid.namedBuffers().find(([n]) => n === 'blocks.0.ffn.expert_bias');
    assert.ok(midBias, 'the checkpoint holds blocks.0.ffn.expert_bias');
    assert.ok([...midBias[1].f32].some((v) => v !== 0), 'the bias moved in 7 steps');
    await train({ config: config(over), dir: join(dir, 'split'), resume: true });
    assert.ok(weights('straight').equals(weights('split')), 'weights or bias differ after resume');
    // the bias is what made the difference: a run without the update (rate 0) ends elsewhere
    const still = { ...over, 'model.ffn': { ...over['model.ffn'], biasRate: 0 } };
    await train({ config: config(still), dir: join(dir, 'still') });
    const { model } = openRun(join(dir, 'still'));
    assert.ok(model.namedBuffers().every(([, b]) => [...b.f32].every((v) => v === 0)));
  });

  test('the bias survives kill -9: a resumed CLI run equals the uninterrupted one', async () => {
    const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
    const ffn = JSON.stringify({ type: 'moe', experts: 8, topk: 2, every: 1, auxCoef: 0, expertBias: true, biasRate: 0.01 });
    const args = (out: string) => ['train', '--data', corpus, '--out', out, '--steps', '30', '--no-progress', '--no-sample',
      '--set', 'model.d=32', '--set', 'model.layers=2', '--set', 'model.heads=2', '--set', 'model.seq=32', '--set', 'train.batch=4',
      '--set', 'train.warmup=2', '--set', 'train.evalEvery=10', '--set', 'train.evalBatches=2', '--set', 'train.saveEvery=5', '--set', `model.ffn=${ffn}`];
    const full = spawnSync(process.execPath, [CLI, ...args('cli-straight')], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    assert.equal(full.status, 0, full.stderr);
    const child = spawn(process.execPath, [CLI, ...args('cli-killed')], { cwd: dir, stdio: 'ignore' });
    const state = join(dir, 'cli-killed', 'state.json');
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (existsSync(state) || child.exitCode !== null) {
          clearInterval(poll);
          child.kill('SIGKILL');
          resolve();
        }
      }, 2);
    });
    await new Promise((r) => child.once('exit', r).once('close', r));
    const saved = JSON.parse(readFileSync(state, 'utf8')).state.step as number;
    assert.ok(saved >= 5 && saved < 30, `killed after the checkpoint of step ${saved}`);
    const resumed = spawnSync(process.execPath, [CLI, 'train', '--resume', '--out', 'cli-killed', '--no-progress', '--no-sample'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.ok(weights('cli-straight').equals(weights('cli-killed')), 'weights or bias differ after kill -9 and resume');
    assert.deepEqual(evals('cli-killed').at(-1)!.ffn!.layer0.bias, evals('cli-straight').at(-1)!.ffn!.layer0.bias);
  });

  test('evaluations write per-layer routing statistics to metrics.jsonl', async () => {
    await train({ config: config({ 'model.ffn': { type: 'moe', experts: 4, topk: 2, every: 2, expertBias: true } }), dir: join(dir, 'stats') });
    const lines = evals('stats');
    assert.deepEqual(lines.map((l) => l.step), [4, 8, 12]);
    for (const l of lines) {
      assert.deepEqual(Object.keys(l.ffn!), ['layer1'], 'only the MoE layer reports');
      const s = l.ffn!.layer1;
      for (const k of ['tokens', 'load', 'utilisation', 'imbalance', 'deadExperts', 'dropRate', 'unroutedTokens', 'routerEntropy', 'balanceLoss', 'zLoss', 'bias', 'biasMin', 'biasMax']) {
        assert.ok(k in s, `${k} in the eval statistics`);
      }
      assert.equal(s.tokens, 2 * 4 * 32, 'the window is the whole evaluation (2 batches of 4 x 32 tokens)');
      assert.equal((s.load as number[]).length, 4);
    }
  });

  test('loss-free balancing leaves fewer dead experts than no balancing on a short run', async () => {
    const ffn = { type: 'moe', experts: 16, topk: 1, every: 1, auxCoef: 0, zCoef: 0 };
    const dead = async (name: string, extra: object): Promise<number> => {
      await train({ config: config({ 'model.ffn': { ...ffn, ...extra }, 'train.steps': 40, 'train.evalEvery': 40, 'train.lr': 3e-3 }), dir: join(dir, name) });
      const s = evals(name).at(-1)!.ffn!;
      return Object.values(s).reduce((a, l) => a + (l.deadExperts as number), 0);
    };
    const none = await dead('dead-none', {}), free = await dead('dead-free', { expertBias: true });
    assert.ok(free < none, `dead experts over both layers: loss-free ${free} vs none ${none}`);
  });
});
