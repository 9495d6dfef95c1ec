// The dense union path of the PEER expert mixture (src/tensor/ops/peer_union.ts): its gate kernels
// (peerUnionForward / peerUnionBackward) native against the reference and against a direct
// computation, their argument checks, and the whole path against the gathered-row kernels (same
// y, gx, gscores and row gradients up to summation order), with finite-difference gradients
// while the union path is forced, on both backends.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ref, nativeKernels, setBackend, PeerAct, type Kernels } from '../src/backend/index.js';
import { loadNative } from '../src/backend/native.js';
import { Tensor, tensor, intTensor, peerExperts, RowGradPool } from '../src/tensor/index.js';
import { setPeerDispatch, unionWins, type PeerDispatch } from '../src/tensor/ops/peer_union.js';
import { geluErf, geluErfGrad } from '../src/backend/ref/math.js';
import { gradcheck } from './gradcheck.js';
import { assertClose, randn, rng } from './util.js';

function backends(): [string, () => Kernels][] {
  const all: [string, () => Kernels][] = [['ref', () => ref]];
  if (loadNative()) all.push(['native', nativeKernels]);
  const only = process.env.MOELAB_TEST_BACKEND;
  return all.filter(([n]) => !only || n === only);
}

/** Ids [T, h*k] drawn from `pool` experts (distinct within a head), so experts repeat across tokens and heads. */
function pickIds(T: number, h: number, k: number, experts: number[], seed: number): Int32Array {
  const r = rng(seed), ids = new Int32Array(T * h * k);
  for (let row = 0; row < T * h; row++) {
    const seen = new Set<number>();
    for (let j = 0; j < k; j++) {
      let e: number;
      do e = experts[Math.floor(r() * experts.length)]; while (seen.has(e));
      seen.add(e);
      ids[row * k + j] = e;
    }
  }
  return ids;
}

function withDispatch<T>(d: PeerDispatch, f: () => T): T {
  const prev = setPeerDispatch(d);
  try {
    return f();
  } finally {
    setPeerDispatch(prev);
  }
}

describe('PEER union gate kernels', () => {
  // T tokens, hk picks each, columns into a union of U rows (repeats within a token included)
  const T = 7, h = 3, k = 4, hk = h * k, U = 9;
  const r = rng(4), cols = Int32Array.from({ length: T * hk }, () => Math.floor(r() * U));
  const scores = randn(T * hk, 1), A = randn(T * U, 2), GW = randn(T * U, 3);

  function direct(act: number, pkm: boolean) {
    const f = (z: number) => (act === PeerAct.gelu ? geluErf(z) : Math.max(z, 0));
    const fd = (z: number) => (act === PeerAct.gelu ? geluErfGrad(z) : z > 0 ? 1 : 0);
    const g = new Float64Array(T * hk), W = new Float64Array(T * U), C = new Float64Array(T * U), gs = new Float64Array(T * hk);
    for (let row = 0; row < T * h; row++) {
      const s = scores.subarray(row * k, row * k + k), mx = Math.max(...s);
      const z = [...s].reduce((acc, x) => acc + Math.exp(x - mx), 0);
      for (let j = 0; j < k; j++) g[row * k + j] = Math.exp(s[j] - mx) / z;
    }
    for (let t = 0; t < T; t++) {
      const dg: number[] = [];
      for (let j = 0; j < hk; j++) {
        const e = t * hk + j, c = cols[e], a = Math.fround(A[t * U + c]), gw = GW[t * U + c];
        W[t * U + c] += pkm ? g[e] : g[e] * f(a);
        if (!pkm) C[t * U + c] += gw * g[e] * fd(a);
        dg.push(pkm ? gw : gw * f(a));
      }
      for (let j0 = 0; j0 < hk; j0 += k) {
        let s = 0;
        for (let j = j0; j < j0 + k; j++) s += g[t * hk + j] * dg[j];
        for (let j = j0; j < j0 + k; j++) gs[t * hk + j] = g[t * hk + j] * (dg[j] - s);
      }
    }
    return { g, W, C, gs };
  }

  for (const [name, make] of backends()) {
    test(`${name}: gates, scattered weights and their backward equal a direct computation (gelu, relu, pkm)`, () => {
      const K = make();
      for (const [act, pkm] of [[PeerAct.gelu, false], [PeerAct.relu, false], [PeerAct.gelu, true]] as const) {
        const want = direct(act, pkm), tag = `${name} act${act} pkm${pkm}`;
        const g = new Float32Array(T * hk), a = pkm ? null : new Float32Array(T * hk), W = new Float32Array(T * U).fill(NaN);
        K.peerUnionForward(T, hk, k, act, U, cols, scores, pkm ? null : A, g, a, W);
        assertClose(g, want.g, 1e-6, 1e-7, `${tag} g`);
        assertClose(W, want.W, 1e-5, 1e-6, `${tag} W (every entry written)`);
        if (a) for (let e = 0; e < T * hk; e++) assert.equal(a[e], A[Math.floor(e / hk) * U + cols[e]], `${tag} a[${e}]`);
        const gs = new Float32Array(T * hk), C = pkm ? null : new Float32Array(T * U).fill(NaN);
        K.peerUnionBackward(T, hk, k, act, U, cols, g, a, GW, gs, C);
        assertClose(gs, want.gs, 1e-5, 1e-6, `${tag} gscores`);
        if (C) assertClose(C, want.C, 1e-5, 1e-6, `${tag} C (every entry written)`);
      }
    });
  }

  test('bad arguments throw instead of crashing', { skip: !loadNative() && 'native addon not built' }, () => {
    for (const K of [loadNative()!, ref] as unknown as Record<string, (...a: unknown[]) => unknown>[]) {
      const f32 = (n: number) => new Float32Array(n);
      const g = f32(T * hk), a = f32(T * hk), W = f32(T * U), gs = f32(T * hk), C = f32(T * U);
      const fwd = (o: Partial<Record<string, unknown>>) => K.peerUnionForward(T, hk, o.k ?? k, o.act ?? 0, o.U ?? U, o.cols ?? cols,
        scores, 'A' in o ? o.A : A, o.g ?? g, 'a' in o ? o.a : a, o.W ?? W);
      const bwd = (o: Partial<Record<string, unknown>>) => K.peerUnionBackward(T, hk, k, 0, U, o.cols ?? cols, g, 'a' in o ? o.a : a,
        o.GW ?? GW, o.gs ?? gs, 'C' in o ? o.C : C);
      fwd({});
      bwd({});
      const bad = (what: string, fn: () => unknown) => assert.throws(fn, (e: Error) => e instanceof TypeError || e instanceof RangeError, what);
      bad('col out of range', () => fwd({ cols: Int32Array.from(cols, (c, i) => (i === 5 ? U : c)) }));
      bad('negative col', () => bwd({ cols: Int32Array.from(cols, (c, i) => (i === 0 ? -1 : c)) }));
      bad('k not dividing hk', () => fwd({ k: 5 }));
      bad('unknown activation', () => fwd({ act: 7 }));
      bad('U = 0', () => fwd({ U: 0 }));
      bad('W short', () => fwd({ W: f32(T * U - 1) }));
      bad('A without a', () => fwd({ a: null }));
      bad('GW short', () => bwd({ GW: f32(3) }));
      bad('a without C', () => bwd({ C: null }));
      bad('W aliases g', () => { const b = new ArrayBuffer(4 * T * U); fwd({ W: new Float32Array(b), g: new Float32Array(b, 0, T * hk) }); });
    }
  });
});

for (const [bname, make] of backends()) {
  describe(`PEER union path on ${bname}`, () => {
    test.beforeEach(() => setBackend(make()));
    test.after(() => setBackend(ref));

    test('y, gx, gscores and the u/v row gradients equal the row kernels (gelu, relu, pkm; dense and row-sparse)', () => {
      const T = 24, d = 20, h = 3, k = 4, N = 300;
      const experts = Array.from({ length: 10 }, (_, i) => i * 29 + 3); // 10 distinct experts over the table
      for (const [act, pkm, sparse] of [['gelu', false, true], ['relu', false, false], ['gelu', true, true], ['gelu', false, false]] as const) {
        const ids = intTensor(pickIds(T, h, k, experts, 7), [T, h * k]);
        const run = (mode: PeerDispatch) => withDispatch(mode, () => {
          const x = tensor(randn(T * d, 1), [T, d], { requiresGrad: true }), s = tensor(randn(T * h * k, 2), [T, h * k], { requiresGrad: true });
          const u = tensor(randn(N * d, 3, 0.5), [N, d], { requiresGrad: true }), v = tensor(randn(N * d, 4, 0.5), [N, d], { requiresGrad: true });
          const y = peerExperts(x, ids, s, pkm ? null : u, v, { k, activation: act, rowGrads: sparse ? new RowGradPool() : null });
          y.backward(randn(T * d, 5));
          const rowsOf = (t: Tensor) => {
            if (!sparse) return t.grad?.f32.slice() ?? null;
            const c = t.sparseGrad?.[0];
            return c ? { ids: [...c.ids], values: c.values.slice() } : null;
          };
          return { y: y.f32.slice(), gx: x.grad?.f32.slice(), gs: s.grad!.f32.slice(), gu: rowsOf(u), gv: rowsOf(v) };
        });
        const R = run('rows'), Un = run('union'), tag = `${act} pkm${pkm} sparse${sparse}`;
        assertClose(Un.y, R.y, 1e-5, 1e-6, `${tag} y`);
        assertClose(Un.gs, R.gs, 1e-5, 1e-6, `${tag} gscores`);
        if (!pkm) assertClose(Un.gx!, R.gx!, 1e-5, 1e-6, `${tag} gx`);
        else assert.equal(Un.gx, undefined);
        for (const key of pkm ? ['gv'] as const : ['gu', 'gv'] as const) {
          const a = Un[key], b = R[key];
          assert.ok(a && b, `${tag} ${key} missing`);
          if (sparse) {
            const ca = a as { ids: number[]; values: Float32Array }, cb = b as typeof ca;
            assert.deepEqual(ca.ids, experts.slice().sort((p, q) => p - q), `${tag} ${key} row ids = the union, ascending`);
            assert.deepEqual(ca.ids, cb.ids);
            assertClose(ca.values, cb.values, 1e-5, 1e-6, `${tag} ${key} rows`);
          } else {
            assertClose(a as Float32Array, b as Float32Array, 1e-5, 1e-6, `${tag} ${key} dense`);
          }
        }
      }
    });

    test('finite-difference gradients with the union path forced (gelu, relu, pkm)', () => {
      for (const [act, pkm, seed] of [['gelu', false, 1], ['relu', false, 2], ['gelu', true, 3]] as const) {
        const T = 4, d = 5, h = 2, k = 3, N = 16;
        const ids = intTensor(pickIds(T, h, k, [1, 4, 6, 9, 15], seed), [T, h * k]);
        const x = tensor(randn(T * d, seed + 10), [T, d]), scores = tensor(randn(T * h * k, seed + 11), [T, h * k]);
        const u = tensor(randn(N * d, seed + 12, 0.5), [N, d]), v = tensor(randn(N * d, seed + 13, 0.5), [N, d]);
        withDispatch('union', () => {
          if (pkm) gradcheck('union pkm', (s, vv) => peerExperts(x, ids, s, null, vv, { k, activation: act }), [scores, v], { samples: 40 });
          else gradcheck(`union ${act}`, (xx, s, uu, vv) => peerExperts(xx, ids, s, uu, vv, { k, activation: act }),
            [x, scores, u, v], { eps: act === 'relu' ? 1e-3 : 1e-2, samples: 40 });
        });
      }
    });
  });
}

test('auto dispatch takes the union while U stays within 6 hk', () => {
  assert.equal(unionWins(128, 128), true);
  assert.equal(unionWins(768, 128), true);
  assert.equal(unionWins(769, 128), false);
  assert.equal(unionWins(65536, 128), false);
});
