// The thread count changes speed, never the numbers: train.threads is left out of a run's identity,
// and a run resumed with other --threads (a queue worker on a machine with more cores) must train
// the same bits as an uninterrupted one. Every sum that spans threads is cut by the problem's shape
// alone (native/threadpool.h, sumSlices): layerNorm's gamma/beta gradients, split-k GEMMs (a
// router's weight gradient over all tokens), attention's dq when there are few heads, PEER's key
// and gx gradients; and no kernel lets an element's value depend on its neighbours in a vector.
// Checked here on whole training steps at 1, 2, 3 and 5 threads (3 and 5 leave remainders that
// powers of two hide), and on the kernels at the shapes that take the sliced paths.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, train } from '../src/index.js';
import { checkpointWeights } from './train_util.js';
import { nativeKernels } from '../src/backend/index.js';
import { setComputeThreads, setPeerDispatch, withArithmetic, type PeerDispatch } from '../src/tensor/index.js';
import { buildTraining } from '../src/train/setup.js';
import { trainStep } from '../src/train/step.js';
import { Rng } from '../src/util/random.js';
import { UnaryOp } from '../src/backend/op_codes.js';

const nat = nativeKernels();
const before = nat.getThreads();
after(() => setComputeThreads(before));
const THREADS = [1, 2, 3, 5];

/** Parameters after two training steps on fixed batches, at `threads` threads, as one byte string. */
function twoSteps(preset: string, over: Record<string, unknown>, threads: number): Buffer {
  setComputeThreads(threads);
  const cfg = loadConfig({ preset, overrides: { 'train.steps': 2, ...over } });
  const { model, optimizer } = buildTraining(cfg);
  const { batch: B } = cfg.train, S = cfg.model.seq;
  const rng = new Rng(5, 1);
  const nextBatch = () => {
    const x = new Int32Array(B * S), y = new Int32Array(B * S);
    for (let i = 0; i < B * S; i++) { x[i] = rng.int(256); y[i] = rng.int(256); }
    return { x, y, batch: B, seq: S };
  };
  for (let step = 0; step < 2; step++) withArithmetic(cfg.train, () => trainStep({ model, optimizer, train: cfg.train, nextBatch }, step));
  // the bytes as stored (bf16 tables are 16-bit)
  return Buffer.concat(model.namedParameters().map(([, p]) => { const d = p.contiguous().data as ArrayBufferView; return Buffer.from(d.buffer, d.byteOffset, d.byteLength); }));
}

describe('training steps give the same bits at any thread count', () => {
  const cases: [string, string, Record<string, unknown>, PeerDispatch?][] = [
    ['dense', 'tiny', {}],
    ['dense, batch 1 (attention backward on few heads)', 'tiny', { 'train.batch': 1 }],
    ['MoE (split-k router gradient)', 'tiny-moe', {}],
    ['MoE, expert choice', 'tiny-moe', { 'model.ffn.routing': 'expert-choice', 'model.ffn.capacityFactor': 1 }],
    ['PEER, row kernels', 'tiny-peer', {}, 'rows'],
    ['PEER, union path', 'tiny-peer', {}, 'union'],
    ['PEER, query BatchNorm, bf16 tables', 'tiny-peer', { 'model.ffn.bn': true, 'model.ffn.bf16Tables': true }],
  ];
  if (nat.cpuInfo().bf16) cases.push(['dense, bf16 GEMMs', 'tiny', { 'train.precision': 'bf16' }], ['MoE, bf16 GEMMs', 'tiny-moe', { 'train.precision': 'bf16' }]);
  for (const [name, preset, over, dispatch] of cases) {
    test(name, () => {
      const prev = setPeerDispatch(dispatch ?? 'auto');
      try {
        const [one, ...rest] = THREADS.map((t) => twoSteps(preset, over, t));
        rest.forEach((w, i) => assert.ok(w.equals(one), `${THREADS[i + 1]} threads differ from 1`));
      } finally {
        setPeerDispatch(prev);
      }
    });
  }
});

test('a run resumed with other threads equals the run trained straight through', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'moelab-threads-'));
  writeFileSync(join(dir, 'corpus.txt'), 'experts route tokens to the model, and the model learns. '.repeat(400));
  const config = (threads: number) => loadConfig({ preset: 'tiny-moe', overrides: { 'train.steps': 6, 'train.evalEvery': 3, 'train.threads': threads, 'data.paths': [join(dir, 'corpus.txt')] } });
  await train({ config: config(1), dir: join(dir, 'straight') });
  await train({ config: config(2), dir: join(dir, 'split'), stopAt: 3 });
  await train({ config: config(3), dir: join(dir, 'split'), resume: true });
  assert.ok(checkpointWeights(join(dir, 'straight')).equals(checkpointWeights(join(dir, 'split'))));
});

describe('the sliced kernels at any thread count', () => {
  const rng = new Rng(3, 2);
  const rand = (n: number) => Float32Array.from({ length: n }, () => rng.uniform() * 2 - 1);
  const at = <T>(threads: number, fn: () => T): T => { setComputeThreads(threads); return fn(); };

  test('gemm with few output tiles and a long depth (split-k) equals itself at 1..8 threads', () => {
    for (const [m, n, k] of [[4, 128, 4096], [8, 64, 1000], [64, 16, 3000]]) {
      const a = rand(k * m), b = rand(k * n), c0 = rand(m * n), bias = rand(n);
      const run = (t: number) => at(t, () => {
        const c = c0.slice();
        nat.gemm(true, false, m, n, k, 0.5, a, m, b, n, 0.25, c, n, bias); // C = 0.5 A^T B + 0.25 C + bias
        return Buffer.from(c.buffer);
      });
      const one = run(1);
      for (const t of [2, 3, 8]) assert.ok(run(t).equals(one), `[${m}, ${n}, ${k}] at ${t} threads`);
    }
  });

  test('tanh-GELU forward and backward, whose fast path is picked per lane, equal themselves at 1..8 threads', () => {
    // values around -3 put lanes below the fast path's z >= -6 next to lanes above it
    const n = 200_003, x = Float32Array.from({ length: n }, () => rng.uniform() * 8 - 5), gy = rand(n);
    const run = (t: number) => at(t, () => {
      const y = new Float32Array(n), gx = new Float32Array(n);
      nat.unary(UnaryOp.gelu_tanh, x, y);
      nat.unaryBackward(UnaryOp.gelu_tanh, x, y, gy, gx);
      return Buffer.concat([Buffer.from(y.buffer), Buffer.from(gx.buffer)]);
    });
    const one = run(1);
    for (const t of [2, 3, 8]) assert.ok(run(t).equals(one), `${t} threads`);
  });

  test('attentionBackward with few heads (key-block slices) and with many equals itself at 1..8 threads', () => {
    for (const [B, S, H, hd] of [[1, 300, 2, 16], [3, 130, 4, 8]]) {
      const qkv = rand(B * S * 3 * H * hd), out = new Float32Array(B * S * H * hd), lse = new Float32Array(B * H * S);
      nat.attention(B, S, H, hd, 1 / Math.sqrt(hd), qkv, out, lse);
      const gout = rand(B * S * H * hd);
      const run = (t: number) => at(t, () => {
        const g = new Float32Array(qkv.length);
        nat.attentionBackward(B, S, H, hd, 1 / Math.sqrt(hd), qkv, out, lse, gout, g);
        return Buffer.from(g.buffer);
      });
      const one = run(1);
      for (const t of [2, 3, 8]) assert.ok(run(t).equals(one), `B ${B} H ${H} at ${t} threads`);
    }
  });
});
