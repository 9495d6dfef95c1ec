// The buffer pool: hand-out and release rules, the debug checks, and training through it (bitwise the
// same as without it, and allocating nothing new in steady state).
import { describe, it, beforeEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, buildTraining, trainStep, validationLoss } from '../src/index.js';
import { Tensor, tensor, linear, gelu, add, mul, slice, sumAll, configurePool, poolStats, resetPoolStats, clearPool, stepScope } from '../src/tensor/index.js';
import { alloc, allocZeroed, scratch, release, sizeClass, MIN_POOLED, poolEnabled, poolDebug } from '../src/tensor/pool.js';
import { getTokenizer } from '../src/data/tokenizer.js';
import { Rng } from '../src/util/random.js';

// each test sets its own mode; the environment's (MOELAB_POOL, MOELAB_POOL_DEBUG) is restored after
const envMode = { enabled: poolEnabled(), debug: poolDebug() };
beforeEach(() => configurePool({ enabled: true, debug: false }));
after(() => configurePool(envMode));

const N = 3000; // above MIN_POOLED

describe('buffer pool: hand-out and release', () => {
  it('outside a step scope alloc is a fresh zeroed array that is never recycled', () => {
    resetPoolStats();
    const a = alloc(N);
    assert.equal(a.length, N);
    assert.ok(a.every((v) => v === 0));
    release(a); // not pooled: ignored
    stepScope(() => {
      const b = alloc(N);
      assert.notEqual(b.buffer, a.buffer);
    });
    assert.equal(poolStats().releases, 1); // only b
  });

  it('inside a scope a released buffer comes back dirty from alloc and zeroed from allocZeroed', () => {
    stepScope(() => {
      const a = alloc(N);
      a.fill(7);
      release(a);
      const b = alloc(N);
      assert.equal(b.buffer, a.buffer);
      assert.equal(b.length, N);
      assert.equal(b[N - 1], 7); // handed out dirty: the caller overwrites it
      release(b);
      const c = allocZeroed(N);
      assert.equal(c.buffer, a.buffer);
      assert.ok(c.every((v) => v === 0));
    });
  });

  it('size classes: 8 per power of two, a request within the class reuses the buffer', () => {
    for (const n of [MIN_POOLED, 1025, 3000, 4097, 123457, 2 ** 20 + 1]) {
      const c = sizeClass(n);
      assert.ok(c >= n && c < n * 9 / 8, `class of ${n} is ${c}`);
    }
    stepScope(() => {
      const a = alloc(4100);
      release(a);
      const b = alloc(4200); // same class (4096 + 512)
      assert.equal(b.buffer, a.buffer);
      assert.equal(b.length, 4200);
    });
  });

  it('closing a scope releases what it took, and the next scope reuses it (counts)', () => {
    clearPool();
    resetPoolStats();
    stepScope(() => { alloc(N); alloc(2 * N); scratch(4 * N); });
    const s1 = poolStats();
    assert.equal(s1.misses, 3);
    assert.equal(s1.liveBytes, 0);
    stepScope(() => { alloc(N); alloc(2 * N); scratch(4 * N); });
    const s2 = poolStats();
    assert.equal(s2.misses, 3);
    assert.equal(s2.hits, 3);
  });

  it('with the pool off (MOELAB_POOL=0) nothing is reused', () => {
    configurePool({ enabled: false });
    resetPoolStats();
    stepScope(() => {
      const a = alloc(N);
      release(a);
      assert.notEqual(alloc(N).buffer, a.buffer);
    });
    assert.deepEqual([poolStats().hits, poolStats().misses], [0, 0]);
  });

  it('backward outside a scope leaves the activations a caller holds intact', () => {
    const { x, w, b } = smallLayer();
    const h = linear(x, w, b);
    const before = h.f32.slice();
    sumAll(gelu(h)).backward();
    assert.deepEqual(h.f32, before);
    assert.ok(w.grad);
  });
});

describe('autograd: shared gradients (copy on write)', () => {
  const leaf = (v: number) => tensor(new Float32Array(N).fill(v), [N], { requiresGrad: true });

  it("add's backward hands g to both inputs without a copy: 3 hand-outs for sum(gelu(a) + gelu(b))", () => {
    const a = leaf(0.5), b = leaf(-0.25);
    stepScope(() => {
      const s = sumAll(add(gelu(a), gelu(b)));
      resetPoolStats();
      s.backward();
      const st = poolStats();
      assert.equal(st.hits + st.misses, 3); // sum's spread and the two gelu gradients; add copies nothing
    });
    assert.ok(a.grad && b.grad && a.grad.data.buffer !== b.grad.data.buffer);
  });

  it('a slice over the whole axis passes g through (no hand-out); a partial one zero-fills the rest', () => {
    const x = tensor(Float32Array.from({ length: 4 * N }, (_, i) => i % 7), [4, N], { requiresGrad: true });
    const w = tensor(Float32Array.from({ length: 4 * N }, (_, i) => (i % 5) - 2), [4, N]);
    stepScope(() => {
      const s = sumAll(mul(slice(x, 0, 0, 4), w));
      resetPoolStats();
      s.backward();
      assert.equal(poolStats().hits + poolStats().misses, 2); // sum's spread and mul's x gradient only
    });
    assert.deepEqual(x.grad!.f32, w.f32);
    x.grad = null;
    sumAll(mul(slice(x, 0, 1, 3), slice(w, 0, 1, 3).contiguous())).backward();
    const want = w.f32.map((v, i) => (i >= N && i < 3 * N ? v : 0));
    assert.deepEqual(x.grad!.f32, want);
  });

  it('leaves sharing one gradient each get their own array, and add(x, x) doubles', () => {
    for (const scoped of [false, true]) {
      const a = leaf(1), b = leaf(2), x = leaf(3);
      const run = () => {
        sumAll(add(a, b)).backward();
        sumAll(add(x, x)).backward();
      };
      if (scoped) stepScope(run);
      else run();
      assert.notEqual(a.grad!.data, b.grad!.data);
      a.grad!.f32[0] = 7; // writing one must not change the other
      assert.equal(b.grad!.f32[0], 1);
      assert.ok(x.grad!.f32.every((v) => v === 2));
    }
  });
});

describe('buffer pool: debug mode (MOELAB_POOL_DEBUG=1)', () => {
  it('a tensor used after backward released its storage throws, and its raw array reads NaN', () => {
    configurePool({ debug: true });
    const { x, w, b } = smallLayer();
    stepScope(() => {
      const h = linear(x, w, b);
      const raw = h.f32;
      sumAll(gelu(h)).backward();
      assert.throws(() => h.f32, /released/);
      assert.ok(Number.isNaN(raw[0]) && Number.isNaN(raw[raw.length - 1]));
      w.grad = b.grad = null;
    });
  });

  it('a tensor kept past its step scope throws', () => {
    configurePool({ debug: true });
    const { x, w, b } = smallLayer();
    let kept: Tensor | null = null;
    stepScope(() => { kept = gelu(linear(x, w, b)); });
    assert.throws(() => kept!.f32, /released/);
    assert.throws(() => sumAll(kept!), /released/);
  });

  it('releasing a buffer twice throws', () => {
    configurePool({ debug: true });
    stepScope(() => {
      const a = alloc(N);
      release(a);
      assert.throws(() => release(a), /twice/);
    });
  });

  it('dirty hand-outs are NaN-filled, so a kernel that read its output would show it', () => {
    configurePool({ debug: true });
    stepScope(() => {
      release(alloc(N));
      assert.ok(alloc(N).every(Number.isNaN));
      assert.ok(allocZeroed(N).every((v) => v === 0));
    });
  });
});

function smallLayer(): { x: Tensor; w: Tensor; b: Tensor } {
  const r = new Rng(3);
  const x = tensor(r.fillUniform(new Float32Array(64 * 48), -1, 1), [64, 48]);
  const w = tensor(r.fillUniform(new Float32Array(40 * 48), -0.2, 0.2), [40, 48], { requiresGrad: true });
  const b = tensor(r.fillUniform(new Float32Array(40), -0.1, 0.1), [40], { requiresGrad: true });
  return { x, w, b };
}

interface Run {
  losses: number[];
  weights: Buffer;
  misses: number[];
  hits: number;
}

/** `steps` training steps of a shrunk preset with the pool configured as given. */
function trainRun(preset: string, over: Record<string, unknown>, steps: number, pool: { enabled: boolean; debug: boolean }): Run {
  configurePool(pool);
  clearPool();
  resetPoolStats();
  const cfg = loadConfig({
    preset,
    overrides: { 'model.d': 32, 'model.layers': 2, 'model.heads': 2, 'model.seq': 32, 'train.batch': 4, 'train.warmup': 1, ...over },
  });
  const { model, optimizer } = buildTraining(cfg);
  const B = cfg.train.batch, S = cfg.model.seq, V = getTokenizer(cfg.model.vocab).vocabSize;
  const rng = new Rng(7, 1);
  const nextBatch = () => {
    const x = new Int32Array(B * S), y = new Int32Array(B * S);
    for (let i = 0; i < B * S; i++) { x[i] = rng.int(V); y[i] = rng.int(V); }
    return { x, y, batch: B, seq: S };
  };
  const losses: number[] = [], misses: number[] = [];
  for (let it = 0; it < steps; it++) {
    const m0 = poolStats().misses;
    losses.push(trainStep({ model, optimizer, train: cfg.train, nextBatch }, it).loss);
    misses.push(poolStats().misses - m0);
  }
  const weights = Buffer.concat(model.namedParameters().map(([, t]) => Buffer.from(t.f32.slice().buffer)));
  return { losses, weights, misses, hits: poolStats().hits };
}

const MODELS: [string, string, Record<string, unknown>][] = [
  ['dense (dropout, 2 micro-batches)', 'tiny', { 'model.dropout': 0.1, 'train.accum': 2 }],
  ['MoE (dropless)', 'tiny-moe', {}],
  ['MoE (capacity drops, jitter)', 'tiny-moe', { 'model.ffn.capacityFactor': 1, 'model.ffn.jitter': 0.1 }],
  ['PEER', 'tiny-peer', { 'model.ffn.bn': true }],
];

describe('buffer pool: training', () => {
  for (const [what, preset, over] of MODELS) {
    it(`${what}: bitwise the same with the pool off, on, and in debug mode`, () => {
      const off = trainRun(preset, over, 4, { enabled: false, debug: false });
      const on = trainRun(preset, over, 4, { enabled: true, debug: false });
      const dbg = trainRun(preset, over, 4, { enabled: true, debug: true });
      assert.ok(on.hits > 0, 'the pool was used');
      assert.deepEqual(on.losses, off.losses);
      assert.deepEqual(dbg.losses, off.losses);
      assert.ok(on.weights.equals(off.weights), 'weights after 4 steps differ with the pool on');
      assert.ok(dbg.weights.equals(off.weights), 'weights after 4 steps differ in debug mode');
    });
  }

  it('steady state allocates nothing new: zero pool misses after the first step (dense, dropless MoE, PEER)', () => {
    for (const [, preset, over] of [MODELS[0], MODELS[1], MODELS[3]]) {
      const r = trainRun(preset, over, 6, { enabled: true, debug: false });
      assert.ok(r.misses[0] > 10, `${preset}: first step fills the pool (${r.misses[0]} misses)`);
      assert.deepEqual(r.misses.slice(1), [0, 0, 0, 0, 0], `${preset}: misses per step ${r.misses}`);
    }
  });

  it('validation (noGrad) reuses buffers batch to batch and gives the same loss as without the pool', () => {
    const cfg = loadConfig({ preset: 'tiny', overrides: { 'model.d': 32, 'model.layers': 2, 'model.heads': 2, 'model.seq': 32 } });
    const { model } = buildTraining(cfg);
    const rng = new Rng(5, 1);
    const batches = Array.from({ length: 3 }, () => {
      const x = new Int32Array(4 * 32), y = new Int32Array(4 * 32);
      for (let i = 0; i < x.length; i++) { x[i] = rng.int(256); y[i] = rng.int(256); }
      return { x, y, batch: 4, seq: 32 };
    });
    configurePool({ enabled: false });
    const off = validationLoss(model, batches);
    configurePool({ enabled: true });
    clearPool();
    resetPoolStats();
    const on = validationLoss(model, batches.slice(0, 1));
    const firstMisses = poolStats().misses;
    assert.ok(firstMisses > 0);
    assert.equal(validationLoss(model, batches), off);
    assert.equal(poolStats().misses, firstMisses, 'later batches took no new buffers');
    assert.ok(Number.isFinite(on));
  });
});
