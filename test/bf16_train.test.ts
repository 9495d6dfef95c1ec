// train.precision: config validation and identity, a tiny model trained in bf16 tracking the same
// run in fp32, resume of a bf16 run equal to an uninterrupted one, fp32 checkpoints, and the
// refusal on a CPU without AVX512_BF16 (MOELAB_ISA=avx2 in a child process).
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { train, configHash, configIdentity, loadConfig, ConfigError, type TrainEvent } from '../src/index.js';
import { nativeKernels } from '../src/backend/index.js';
import { bf16Centering, matmulPrecision, setMatmulPrecision } from '../src/tensor/index.js';
import { tinyTrainConfig, checkpointWeights } from './train_util.js';

const CHILD = process.env.MOELAB_BF16_TRAIN_CHILD === '1';
const HAS_BF16 = nativeKernels().cpuInfo().bf16;
let dir = '';
let corpus = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'moelab-bf16-'));
  corpus = join(dir, 'corpus.txt');
  const words = ['alpha', 'beta', 'gamma', 'delta', 'experts', 'route', 'tokens', 'to', 'the', 'model'];
  let text = '';
  for (let i = 0; i < 3000; i++) text += words[(i * 7 + (i >> 2)) % words.length] + (i % 9 === 8 ? '.\n' : ' ');
  writeFileSync(corpus, text);
});

async function losses(precision: string, run: string, over: Record<string, unknown> = {}): Promise<number[]> {
  const out: number[] = [];
  await train({
    config: tinyTrainConfig(corpus, { 'train.precision': precision, 'train.steps': 20, 'train.evalEvery': 0, ...over }),
    dir: join(dir, run),
    listeners: [(e: TrainEvent) => { if (e.type === 'step') out.push(e.loss); }],
  });
  return out;
}

describe('train.precision', { skip: CHILD }, () => {
  test('config: fp32 by default, bf16 accepted, anything else refused naming the choices', () => {
    assert.equal(tinyTrainConfig(corpus).train.precision, 'fp32');
    assert.equal(tinyTrainConfig(corpus, { 'train.precision': 'bf16' }).train.precision, 'bf16');
    assert.throws(() => tinyTrainConfig(corpus, { 'train.precision': 'fp16' }), (e: Error) =>
      e instanceof ConfigError && /train\.precision/.test(e.message) && /'fp32' \| 'bf16'|fp32.*bf16/.test(e.message));
  });

  test('identity: bf16 changes the config hash, fp32 leaves the hash every earlier config had', () => {
    const fp32 = tinyTrainConfig(corpus), bf16 = tinyTrainConfig(corpus, { 'train.precision': 'bf16' });
    assert.notEqual(configHash(fp32), configHash(bf16));
    assert.equal((configIdentity(fp32).train as Record<string, unknown>).precision, undefined);
    assert.equal((configIdentity(bf16).train as Record<string, unknown>).precision, 'bf16');
    // a config written before train.precision existed hashes as it did
    const { precision: _drop, ...oldTrain } = fp32.train;
    const old = loadConfig({ preset: 'tiny', overrides: { 'data.paths': [corpus] } });
    assert.equal(configHash({ ...fp32, train: { ...oldTrain } } as typeof fp32), configHash(fp32));
    assert.equal(configHash(old), configHash(loadConfig({ preset: 'tiny', overrides: { 'data.paths': [corpus], 'train.precision': 'fp32' } })));
  });

  test('train.bf16Centering: on by default; off enters the identity only under bf16; not a boolean is refused', () => {
    const on = tinyTrainConfig(corpus, { 'train.precision': 'bf16' }), off = tinyTrainConfig(corpus, { 'train.precision': 'bf16', 'train.bf16Centering': false });
    assert.equal(on.train.bf16Centering, true);
    assert.notEqual(configHash(on), configHash(off));
    assert.equal((configIdentity(on).train as Record<string, unknown>).bf16Centering, undefined, 'the default keeps earlier hashes');
    assert.equal(configHash(tinyTrainConfig(corpus, { 'train.bf16Centering': false })), configHash(tinyTrainConfig(corpus)), 'no effect in fp32');
    assert.throws(() => tinyTrainConfig(corpus, { 'train.bf16Centering': 'no' }), (e: Error) => e instanceof ConfigError && /bf16Centering/.test(e.message));
  });

  test('setMatmulPrecision rejects unknown values and returns the previous setting', () => {
    assert.throws(() => setMatmulPrecision('fp16' as 'fp32'), RangeError);
    assert.equal(matmulPrecision(), 'fp32');
  });
});

describe('bf16 training', { skip: CHILD || !HAS_BF16 }, () => {
  test('a tiny model trained 20 steps in bf16 tracks the fp32 run', async () => {
    const f = await losses('fp32', 'track-fp32'), b = await losses('bf16', 'track-bf16');
    assert.equal(f.length, 20);
    assert.equal(b.length, 20);
    assert.equal(matmulPrecision(), 'fp32', 'the trainer restores the precision after the run');
    // Step 1 sees the same weights: only the GEMM operands' rounding (relative <= 2^-8 each) differs,
    // and the loss, a mean over 128 tokens of sums over many products, averages those errors out
    // (measured: 3e-6 relative). Later steps add the drift of weights updated from bf16 gradients
    // (measured: <= 9e-5 relative over 20 steps). 2e-3 (half of 2^-8) leaves 20x headroom, yet is far
    // below the 20% the loss falls, so a bf16 path that computed something else cannot pass.
    assert.ok(Math.abs(b[0] - f[0]) <= 1e-3 * f[0], `step 1: bf16 ${b[0]} vs fp32 ${f[0]}`);
    for (let i = 0; i < 20; i++) assert.ok(Math.abs(b[i] - f[i]) <= 2e-3 * f[i], `step ${i + 1}: bf16 ${b[i]} vs fp32 ${f[i]}`);
    assert.ok(f[19] < 0.8 * f[0], `the fp32 run learns (${f[0]} -> ${f[19]})`);
    assert.ok(b.some((x, i) => x !== f[i]), 'bf16 changed nothing: the precision switch is not reaching the GEMMs');
  });

  test('train.bf16Centering false reaches the GEMMs for the run only', async () => {
    const on = await losses('bf16', 'centred'), off = await losses('bf16', 'uncentred', { 'train.bf16Centering': false });
    assert.ok(off.some((x, i) => x !== on[i]), 'turning centring off changed nothing');
    for (let i = 0; i < 20; i++) assert.ok(Math.abs(off[i] - on[i]) <= 2e-3 * on[i], `step ${i + 1}: ${off[i]} vs ${on[i]}`);
    assert.equal(bf16Centering(), true, 'the trainer restores the setting after the run');
  });

  test('an MoE model (expert FFNs on the grouped bf16 GEMMs) trained 20 steps in bf16 tracks fp32', async () => {
    const moe = { 'model.ffn': { type: 'moe', experts: 4, topk: 2, expertHidden: 64 } };
    const f = await losses('fp32', 'moe-fp32', moe), b = await losses('bf16', 'moe-bf16', moe);
    // the same tolerance and reasoning as the dense model above
    for (let i = 0; i < 20; i++) assert.ok(Math.abs(b[i] - f[i]) <= 2e-3 * f[i], `step ${i + 1}: bf16 ${b[i]} vs fp32 ${f[i]}`);
    assert.ok(b.some((x, i) => x !== f[i]), 'bf16 changed nothing');
  });

  test('runs trained at once in one process keep their own precision and centring: each equals the run trained alone', async () => {
    // a queue worker with --concurrency 2, or a program with Promise.all: the runs' steps alternate
    const cfgs = [
      tinyTrainConfig(corpus, { 'train.precision': 'bf16', 'train.steps': 12, 'train.evalEvery': 4 }),
      tinyTrainConfig(corpus, { 'train.steps': 12, 'train.evalEvery': 4 }),
      tinyTrainConfig(corpus, { 'train.precision': 'bf16', 'train.bf16Centering': false, 'train.steps': 12, 'train.evalEvery': 4 }),
    ];
    for (const [i, config] of cfgs.entries()) await train({ config, dir: join(dir, `alone-${i}`) });
    let turns = 0, last = -1;
    await Promise.all(cfgs.map((config, i) => train({
      config, dir: join(dir, `together-${i}`),
      listeners: [(e: TrainEvent) => { if (e.type === 'step' && last !== i) { turns++; last = i; } }],
    })));
    assert.ok(turns > cfgs.length, `the runs took turns (${turns} switches)`);
    for (let i = 0; i < cfgs.length; i++) {
      assert.ok(checkpointWeights(join(dir, `alone-${i}`)).equals(checkpointWeights(join(dir, `together-${i}`))), `run ${i} (${cfgs[i].train.precision}) differs when trained beside the others`);
    }
    assert.equal(matmulPrecision(), 'fp32');
    assert.equal(bf16Centering(), true);
  });

  test('a resumed bf16 run equals an uninterrupted one; checkpoints stay fp32 and config.json records bf16', async () => {
    const cfg = tinyTrainConfig(corpus, { 'train.precision': 'bf16', 'train.steps': 10, 'train.evalEvery': 5 });
    await train({ config: cfg, dir: join(dir, 'straight') });
    const first = await train({ config: cfg, dir: join(dir, 'split'), stopAt: 6 });
    assert.equal(first.stoppedBy, 'stopAt');
    await train({ config: cfg, dir: join(dir, 'split'), resume: true });
    assert.ok(checkpointWeights(join(dir, 'straight')).equals(checkpointWeights(join(dir, 'split'))), 'weights differ after resume');
    const saved = JSON.parse(readFileSync(join(dir, 'split', 'config.json'), 'utf8'));
    assert.equal(saved.train.precision, 'bf16');
    const file = readFileSync(join(dir, 'split', 'model.safetensors'));
    const header = JSON.parse(file.subarray(8, 8 + Number(file.readBigUInt64LE(0))).toString('utf8')) as Record<string, { dtype?: string }>;
    const dtypes = new Set(Object.entries(header).filter(([k]) => k !== '__metadata__').map(([, v]) => v.dtype));
    assert.deepEqual([...dtypes], ['F32']);
  });
});

if (!CHILD && HAS_BF16) {
  test('without AVX512_BF16 (MOELAB_ISA=avx2, child process) bf16 training is refused before the run folder exists', () => {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
      env: { ...process.env, MOELAB_ISA: 'avx2', MOELAB_BF16_TRAIN_CHILD: '1' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, `child failed:\n${r.stdout}\n${r.stderr}`);
  });
}

if (CHILD || !HAS_BF16) {
  test('bf16 training is refused with what to do, fp32 still trains', async () => {
    const run = join(dir, 'refused');
    await assert.rejects(train({ config: tinyTrainConfig(corpus, { 'train.precision': 'bf16', 'train.steps': 2 }), dir: run }),
      /train\.precision "bf16" needs a CPU with AVX512_BF16 .*"fp32"/s);
    assert.equal(existsSync(run), false);
    assert.equal(matmulPrecision(), 'fp32');
    const r = await train({ config: tinyTrainConfig(corpus, { 'train.steps': 2, 'train.evalEvery': 0 }), dir: join(dir, 'fp32') });
    assert.equal(r.step, 2);
  });
}
