// The MoE layer: routing and outputs against a brute-force per-token loop (float64), dropless vs
// capacity mode and the reference's drop rule, finite-difference gradients through router, gates,
// experts and the router losses, and the PyTorch goldens (loss, aux, logits, every parameter
// gradient), on both the reference and the native backend.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { setBackend } from '../src/backend/index.js';
import { Tensor, tensor, add, mul, noGrad, sumAll, planRoute } from '../src/tensor/index.js';
import { MoE, type MoEOptions } from '../src/nn/moe.js';
import { MLP } from '../src/nn/mlp.js';
import { GPT } from '../src/nn/gpt.js';
import type { FeedForward } from '../src/nn/ffn.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { gradcheck } from './gradcheck.js';
import { assertClose, randn } from './util.js';
import { backends, makeMoE, checkAgainstBrute } from './moe_brute.js';

// ------------------------------------------------------------------------------ goldens

const GOLDEN = fileURLToPath(new URL('../../fixtures/golden/', import.meta.url));

interface GoldenConfig {
  d: number; layers: number; heads: number; seq: number; experts: number; topk: number; expert_hidden: number;
  moe_every: number; capacity_factor: number; aux_coef: number;
  /** Routing variants (scripts/make_goldens.py RoutedMoE); absent in the reference's own goldens. */
  gate?: 'softmax' | 'sigmoid'; routing?: 'token-choice' | 'expert-choice'; eval_capacity_factor?: number;
}

function runGolden(name: string): void {
  const { tensors, metadata } = readSafetensors(GOLDEN + `${name}.safetensors`);
  const cfg = JSON.parse(metadata.config) as GoldenConfig;
  const get = (n: string): Float32Array => {
    const t = tensors.get(n);
    assert.ok(t, `${name}: golden has no tensor '${n}'`);
    return t.data as Float32Array;
  };
  const moes: MoE[] = [];
  const makeFfn = (i: number): FeedForward => {
    if (i % cfg.moe_every !== cfg.moe_every - 1) return new MLP(cfg.d, 4 * cfg.d);
    const m = new MoE(cfg.d, {
      experts: cfg.experts, topk: cfg.topk, hidden: cfg.expert_hidden, granularity: 1, sharedExperts: 0,
      capacityFactor: cfg.capacity_factor, evalCapacityFactor: cfg.eval_capacity_factor ?? cfg.capacity_factor, renormalize: true, jitter: 0,
      auxCoef: cfg.aux_coef, zCoef: 0, gate: cfg.gate, routing: cfg.routing,
    });
    moes.push(m);
    return m;
  };
  const model = new GPT({ vocabSize: 256, d: cfg.d, layers: cfg.layers, heads: cfg.heads, seq: cfg.seq, dropout: 0, lnEps: 1e-5 }, makeFfn);
  assert.ok(moes.length > 0, `${name}: no MoE layer`);
  const names = model.namedParameters().map(([n]) => n);
  const stateNames = [...tensors.keys()].filter((n) => !n.startsWith('input.') && !n.startsWith('out.') && !n.startsWith('grad.'));
  assert.deepEqual(names, stateNames, `${name}: parameter names/order differ from the state_dict`);
  for (const [n, p] of model.namedParameters()) p.f32.set(get(n));
  const xt = tensors.get('input.x')!, yt = tensors.get('input.y')!;
  const x = new Tensor(xt.data as Int32Array, xt.shape), y = new Tensor(yt.data as Int32Array, yt.shape);

  model.train();
  const res = model.forward(x, y);
  const loss = res.loss!.item(), lossRef = get('out.loss')[0];
  assert.ok(Math.abs(loss - lossRef) <= 1e-5 * Math.abs(lossRef), `${name}: loss ${loss} vs ${lossRef}`);
  const aux = moes.reduce((s, m) => s + m.routerLossValues()!.balance, 0), auxRef = get('out.aux')[0];
  assert.ok(Math.abs(aux - auxRef) <= 1e-5 * Math.max(1, Math.abs(auxRef)), `${name}: aux ${aux} vs ${auxRef}`);
  const weighted = res.aux ? res.aux.item() : 0; // no balancing term (expert choice): no aux loss
  assert.ok(Math.abs(weighted - cfg.aux_coef * auxRef) <= 1e-7, `${name}: weighted aux ${weighted}`);
  model.zeroGrad();
  (res.aux ? add(res.loss!, res.aux) : res.loss!).backward();
  for (const [n, p] of model.namedParameters()) {
    const gRef = get(`grad.${n}`);
    let scale = 0;
    for (const v of gRef) scale = Math.max(scale, Math.abs(v));
    assert.ok(p.grad, `${name}: no gradient for ${n}`);
    assertClose(p.grad.f32, gRef, 0, 1e-4 * Math.max(scale, 1e-6), `${name}: grad.${n}`);
  }

  model.eval();
  const logits = noGrad(() => model.forward(x).logits);
  const lRef = get('out.logits');
  let lscale = 0;
  for (const v of lRef) lscale = Math.max(lscale, Math.abs(v));
  assertClose(logits.f32, lRef, 0, 1e-5 * lscale, `${name}: eval logits`);
}

// ------------------------------------------------------------------------------ tests

for (const [bname, kern] of backends()) {
  describe(`MoE on ${bname}`, () => {
    test.beforeEach(() => setBackend(kern));

    test('routing and outputs equal a per-token loop', () => {
      const d = 8, T = 13;
      checkAgainstBrute('top-2', makeMoE(d, {}), T, 1);
      checkAgainstBrute('top-1', makeMoE(d, { topk: 1, experts: 3 }, 2), T, 2);
      checkAgainstBrute('top-1 no renorm', makeMoE(d, { topk: 1, experts: 5, renormalize: false }, 3), T, 3);
      checkAgainstBrute('top-2 no renorm', makeMoE(d, { renormalize: false }, 4), T, 4);
      checkAgainstBrute('top-3 of 6', makeMoE(d, { topk: 3, experts: 6 }, 5), T, 5);
      const g2 = makeMoE(d, { experts: 3, topk: 1, granularity: 2 }, 6);
      assert.deepEqual([g2.experts, g2.topk, g2.hidden], [6, 2, 6]);
      assert.deepEqual(g2.namedParameters().map(([n, p]) => `${n}:${p.shape.join('x')}`),
        ['w1:6x8x6', 'b1:6x6', 'w2:6x6x8', 'b2:6x8', 'router.weight:6x8']);
      checkAgainstBrute('granularity 2', g2, T, 6);
      const sh = makeMoE(d, { sharedExperts: 2, granularity: 2 }, 7);
      assert.deepEqual(sh.namedParameters().map(([n]) => n).slice(5),
        ['shared.0.fc1.weight', 'shared.0.fc1.bias', 'shared.0.fc2.weight', 'shared.0.fc2.bias',
          'shared.1.fc1.weight', 'shared.1.fc1.bias', 'shared.1.fc2.weight', 'shared.1.fc2.bias']);
      checkAgainstBrute('shared experts', sh, T, 7);
      // one token and an expert nobody picks
      checkAgainstBrute('T=1', makeMoE(d, { experts: 8 }, 8), 1, 8);
    });

    test('planRoute: stable grouping by expert, overflow dropped in token order', () => {
      // T=5, k=2, E=3; expert 0 gets slots 0,2,4,7, expert 1 gets 1,5,6,9, expert 2 gets 3,8
      const idx = Int32Array.of(0, 1, 0, 2, 0, 1, 1, 0, 2, 1);
      const free = planRoute(idx, 5, 2, 3, Infinity);
      assert.deepEqual([...free.slots], [0, 2, 4, 7, 1, 5, 6, 9, 3, 8]);
      assert.deepEqual([...free.offsets], [0, 4, 8, 10]);
      assert.deepEqual([...free.counts], [4, 4, 2]);
      assert.deepEqual([...free.tok], [0, 1, 2, 3, 0, 2, 3, 4, 1, 4]);
      const capped = planRoute(idx, 5, 2, 3, 2);
      assert.deepEqual([...capped.slots], [0, 2, 1, 5, 3, 8]);
      assert.deepEqual([...capped.offsets], [0, 2, 4, 6]);
      assert.deepEqual([...capped.counts], [4, 4, 2], 'counts are taken before drops');
      assert.deepEqual([...capped.tok], [0, 1, 0, 2, 1, 4]);
      assert.deepEqual([...planRoute(idx, 5, 2, 3, 4).slots], [...free.slots], 'capacity >= every count drops nothing');
    });

    test('capacity: unbounded == dropless; small factors drop exactly the reference slots', () => {
      const d = 8, T = 17;
      const m = makeMoE(d, {}, 11);
      const x = new Tensor(randn(T * d, 12), [T, d]);
      const y0 = noGrad(() => m.forward(x)).f32.slice();
      assert.equal(m.stats()!.dropRate, 0);
      m.o.capacityFactor = 100;
      m.resetStats();
      const y1 = noGrad(() => m.forward(x)).f32.slice();
      assert.equal(m.stats()!.dropRate, 0);
      assertClose(y1, y0, 0, 0, 'cf=100 vs dropless');
      for (const cf of [1, 0.75, 0.5, 0.25]) {
        m.o.capacityFactor = cf;
        const b = checkAgainstBrute(`cf=${cf}`, m, T, 12);
        assert.equal(m.capacity(T), Math.ceil((cf * T * 2) / 4));
        if (cf <= 0.5) assert.ok(b.dropped > 0, `cf=${cf} should drop slots`);
      }
      // evaluation uses its own factor
      m.o.capacityFactor = 0.25;
      m.o.evalCapacityFactor = 0;
      m.eval();
      m.resetStats();
      const y2 = noGrad(() => m.forward(x)).f32;
      assert.equal(m.stats()!.dropRate, 0);
      assertClose(y2, y0, 0, 0, 'eval dropless');
      m.o.evalCapacityFactor = 0.5;
      checkAgainstBrute('eval cf=0.5', m, T, 12);
      assert.ok((m.stats()!.dropRate as number) > 0);
      m.train();
      // fine-grained experts: C = ceil(cf * T * kG / EG)
      const g = makeMoE(d, { experts: 2, topk: 1, granularity: 3, capacityFactor: 0.6 }, 13);
      assert.equal(g.capacity(T), Math.ceil((0.6 * T * 3) / 6));
      checkAgainstBrute('granularity 3 cf=0.6', g, T, 13);
    });

    test('finite-difference gradients through router, gates, experts and router losses', () => {
      const d = 5, T = 7;
      const cases: [string, Partial<MoEOptions>][] = [
        ['dropless top-2', { hidden: 6 }],
        ['capacity 0.75', { hidden: 6, capacityFactor: 0.75 }],
        ['top-1 no renorm', { hidden: 6, topk: 1, renormalize: false }],
        ['top-1 renorm', { hidden: 6, topk: 1, experts: 3 }],
        ['granularity 2 + shared', { hidden: 6, granularity: 2, sharedExperts: 1, experts: 2, topk: 1 }],
      ];
      for (const [label, over] of cases) {
        const m = makeMoE(d, { ...over, auxCoef: 0.7, zCoef: 0.3 }, 21);
        const x = tensor(randn(T * d, 22), [T, d]);
        const w = new Tensor(randn(T * d, 23), [T, d]); // a random linear functional of the outputs, plus the losses
        const fn = (xi: Tensor): Tensor => add(sumAll(mul(m.forward(xi), w)), m.auxLoss()!);
        const params = m.parameters();
        gradcheck(`MoE ${label}`, fn, [x, ...params], { eps: 1e-3, rtol: 1e-2, atol: 2e-3, samples: 16 });
        // the losses alone, so their gradients are not drowned by the outputs'
        gradcheck(`MoE ${label} losses`, (xi: Tensor) => {
          m.forward(xi);
          return m.auxLoss()!;
        }, [x, m.router.weight], { eps: 1e-3, rtol: 1e-2, atol: 1e-3 });
      }
    });

    test('recycled scratch buffers: interleaved forwards and backwards give the same gradients', () => {
      const d = 8, T = 11;
      const m = makeMoE(d, { auxCoef: 0.1, zCoef: 0.1 }, 41);
      const xa = randn(T * d, 42), xb = randn(T * d, 43);
      const grads = (): Float32Array[] => m.parameters().map((p) => p.grad!.f32.slice());
      const run = (x: Float32Array): Tensor => add(sumAll(mul(m.forward(new Tensor(x.slice(), [T, d])), new Tensor(randn(T * d, 44), [T, d]))), m.auxLoss()!);
      m.zeroGrad();
      run(xa).backward();
      const ga = grads();
      m.zeroGrad();
      run(xb).backward();
      const gb = grads();
      // two graphs alive at once, an inference forward in between, backwards in reverse order
      m.zeroGrad();
      const la = run(xa), lb = run(xb);
      noGrad(() => m.forward(new Tensor(randn(T * d, 45), [T, d])));
      lb.backward();
      const gb2 = grads();
      la.backward();
      const gab = grads();
      gb2.forEach((g, i) => assertClose(g, gb[i], 1e-6, 1e-7, `param ${i} (b)`));
      gab.forEach((g, i) => assertClose(g, ga[i].map((v, j) => v + gb[i][j]), 1e-5, 1e-6, `param ${i} (a+b)`));
    });

    test('stats; jitter is a pure function of the seed passed in', () => {
      const d = 8, T = 9;
      const m = makeMoE(d, { experts: 4, topk: 2, hidden: 12, sharedExperts: 1, granularity: 2 }, 31);
      const x = new Tensor(randn(T * d, 32), [T, d]);
      noGrad(() => m.forward(x));
      const st = m.stats()!;
      assert.equal((st.load as number[]).length, 8);
      assert.ok(Math.abs((st.load as number[]).reduce((a, v) => a + v, 0) - 1) < 1e-12);
      assert.ok((st.routerEntropy as number) > 0 && (st.routerEntropy as number) < Math.log(8));
      // jitter: same seed -> same noise (across layers and calls), another seed -> other noise, eval has none
      const mk = () => makeMoE(d, { jitter: 0.5 }, 33);
      const a = mk(), b = mk();
      const ya1 = noGrad(() => a.forward(x, 7)).f32.slice();
      const z1 = a.routerLossValues()!.z;
      const ya2 = noGrad(() => a.forward(x, 8)).f32.slice();
      const z2 = a.routerLossValues()!.z;
      const yb1 = noGrad(() => b.forward(x, 7)).f32.slice();
      assertClose(ya1, yb1, 0, 0, 'same seed, same jitter');
      assertClose(noGrad(() => a.forward(x, 7)).f32, ya1, 0, 0, 'a repeated call replays its noise');
      assert.notEqual(z1, z2, 'another seed, other noise');
      assert.ok(ya1.some((v, i) => v !== ya2[i]));
      assert.throws(() => a.forward(x), /needs a random seed/);
      a.eval();
      const ye = noGrad(() => a.forward(x)).f32.slice();
      const ref0 = makeMoE(d, {}, 33).eval();
      assertClose(ye, noGrad(() => ref0.forward(x)).f32, 0, 0, 'no jitter in eval');
      assertClose(noGrad(() => a.train().forward(x, 7)).f32, ya1, 0, 0, 'jitter depends on nothing but the seed');
    });

    for (const g of ['moe', 'moe_capacity', 'moe_top1', 'moe_sigmoid', 'moe_expert_choice']) {
      test(`golden ${g}`, () => runGolden(g));
    }
  });
}
