// PEER: product-key retrieval against brute force over all N experts, the expert kernels native vs
// reference, finite-difference gradients of the layer (x, query, keys, u and v through the sparse
// gradient chunks, BatchNorm and product-key-memory variants), sparse Adam against dense Adam, bf16
// moments, the PyTorch goldens (loss, eval logits, every gradient, BatchNorm buffers), and bad
// arguments to the native PEER functions. Runs on the reference and on the native backend.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { ref, nativeKernels, setBackend, PeerAct, type Kernels } from '../src/backend/index.js';
import { loadNative } from '../src/backend/native.js';
import { Tensor, tensor, noGrad } from '../src/tensor/index.js';
import { PEER, type PEEROptions, splitSparseParams } from '../src/nn/peer.js';
import { MLP } from '../src/nn/mlp.js';
import { GPT } from '../src/nn/gpt.js';
import type { FeedForward } from '../src/nn/ffn.js';
import { SparseAdam } from '../src/optim/sparse_adam.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { Rng } from '../src/util/random.js';
import { assertClose, randn, randint, rng } from './util.js';

/** The native kernels, or null where the addon is not built. */
function maybeNative(): Kernels | null {
  return loadNative();
}

/** Both backends; MOELAB_TEST_BACKEND=ref|native restricts the run to one. */
function backends(): [string, () => Kernels][] {
  const only = process.env.MOELAB_TEST_BACKEND;
  const all: [string, () => Kernels][] = [['ref', () => ref], ['native', nativeKernels]];
  return all.filter(([n]) => !only || n === only);
}

const GOLDEN = fileURLToPath(new URL('../../fixtures/golden/', import.meta.url));

function opts(o: Partial<PEEROptions> = {}): PEEROptions {
  return { nSub: 6, heads: 2, k: 3, dKey: 6, bn: false, activation: 'gelu', pkm: false, ...o };
}

/** A PEER layer with random weights (keys from the constructor, u/v/query as initGPT scales them). */
function makePeer(d: number, o: PEEROptions, seed: number): PEER {
  const r = new Rng(seed);
  const m = new PEER(d, o, r);
  r.fillNormal(m.query.weight.f32, 0, 0.5);
  if (m.u) r.fillNormal(m.u.weight.f32, 0, 1 / Math.sqrt(d));
  r.fillNormal(m.v.weight.f32, 0, 0.5);
  if (m.bn) {
    r.fillNormal(m.bn.weight.f32, 1, 0.2);
    r.fillNormal(m.bn.bias.f32, 0, 0.2);
  }
  return m;
}

/** Dense copy of a parameter's gradient: .grad plus every sparse chunk scattered in. */
function materialise(p: Tensor): Float32Array {
  const out = p.grad ? p.grad.f32.slice() : new Float32Array(p.size);
  const d = p.shape[p.ndim - 1];
  for (const c of p.sparseGrad ?? []) {
    for (let i = 0; i < c.ids.length; i++) for (let j = 0; j < d; j++) out[c.ids[i] * d + j] += c.values[i * d + j];
  }
  return out;
}

// ------------------------------------------------------------------------------ retrieval helpers

interface Problem { T: number; h: number; nSub: number; half: number; k: number; q: Float32Array; keys: Float32Array }

function problem(T: number, h: number, nSub: number, half: number, k: number, seed: number): Problem {
  return { T, h, nSub, half, k, q: randn(T * h * 2 * half, seed), keys: randn(2 * nSub * half, seed + 1) };
}

/** Exact (float64) score of expert id for row r. */
function trueScore(P: Problem, r: number, id: number): number {
  const { nSub, half, q, keys } = P;
  const i1 = Math.floor(id / nSub), i2 = id % nSub;
  let s = 0;
  for (let c = 0; c < half; c++) {
    s += q[r * 2 * half + c] * keys[i1 * half + c];
    s += q[r * 2 * half + half + c] * keys[nSub * half + i2 * half + c];
  }
  return s;
}

/**
 * Checks retrieval output against brute force over all N = nSub^2 experts: k distinct ids per row,
 * scores descending and equal to the ids' true scores, and every id within tol of the true top-k
 * (so only near-ties at the k-th place may differ). Returns the number of rows whose ids equal the
 * brute-force order exactly.
 */
function checkRetrieval(what: string, P: Problem, ids: Int32Array, scores: Float32Array, tol = 1e-4): number {
  const { T, h, nSub, k } = P, N = nSub * nSub;
  let exact = 0;
  const all = new Float64Array(N), order = new Int32Array(N);
  for (let r = 0; r < T * h; r++) {
    for (let id = 0; id < N; id++) {
      all[id] = trueScore(P, r, id);
      order[id] = id;
    }
    order.sort((a, b) => all[b] - all[a] || a - b);
    const kth = all[order[k - 1]];
    const seen = new Set<number>();
    let same = true;
    for (let j = 0; j < k; j++) {
      const id = ids[r * k + j];
      assert.ok(id >= 0 && id < N && !seen.has(id), `${what}: row ${r}: bad or repeated id ${id}`);
      seen.add(id);
      const s = scores[r * k + j];
      assert.ok(Math.abs(s - all[id]) <= tol, `${what}: row ${r} slot ${j}: score ${s} vs true ${all[id]}`);
      assert.ok(all[id] >= kth - tol, `${what}: row ${r}: id ${id} (score ${all[id]}) is not in the top ${k} (k-th ${kth})`);
      if (j > 0) assert.ok(s <= scores[r * k + j - 1], `${what}: row ${r}: scores not descending`);
      if (id !== order[j]) same = false;
    }
    if (same) exact++;
  }
  return exact;
}

function runRetrieve(K: Kernels, P: Problem): { ids: Int32Array; scores: Float32Array } {
  const ids = new Int32Array(P.T * P.h * P.k), scores = new Float32Array(P.T * P.h * P.k);
  K.peerRetrieve(P.T, P.h, P.nSub, P.half, P.k, P.q, P.keys, ids, scores);
  return { ids, scores };
}

// ------------------------------------------------------------------------------ layer gradient check

/**
 * Central differences of L = sum(y * R) against backward for every parameter of the layer and x
 * (u, v from their sparse chunks when sparseGrads). Samples whose perturbation changes the chosen
 * experts (a top-k discontinuity) are skipped; at most a quarter may be.
 */
function layerGradcheck(name: string, layer: PEER, T: number, seed: number, eps = 1e-2): void {
  const d = layer.d;
  const x = tensor(randn(T * d, seed), [T, d], { requiresGrad: true });
  const R = randn(T * d, seed + 1);
  const params: [string, Tensor][] = [['x', x], ...layer.namedParameters()];
  for (const [, p] of params) {
    p.grad = null;
    p.sparseGrad = null;
  }
  const y = layer.forward(x);
  const ids0 = layer.lastIds!.slice();
  y.backward(R.slice());
  const f = (): { v: number; same: boolean } => noGrad(() => {
    const out = layer.forward(x).f32;
    let s = 0;
    for (let i = 0; i < out.length; i++) s += out[i] * R[i];
    const ids = layer.lastIds!;
    return { v: s, same: ids.every((id, i) => id === ids0[i]) };
  });
  const pick = rng(seed + 2);
  for (const [pname, p] of params) {
    const analytic = materialise(p);
    let scale = 0;
    for (const v of analytic) scale = Math.max(scale, Math.abs(v));
    const n = p.size, samples = 30;
    const idx = n <= samples ? [...Array(n).keys()] : Array.from({ length: samples }, () => Math.floor(pick() * n));
    let skipped = 0;
    for (const i of idx) {
      const data = p.data as Float32Array, pos = p.offset + i, orig = data[pos];
      data[pos] = orig + eps;
      const fp = f();
      data[pos] = orig - eps;
      const fm = f();
      data[pos] = orig;
      if (!fp.same || !fm.same) {
        skipped++;
        continue;
      }
      const numeric = (fp.v - fm.v) / (2 * eps);
      const err = Math.abs(numeric - analytic[i]);
      const tol = 2e-3 * scale + 1e-2 * Math.abs(numeric) + 1e-4;
      assert.ok(err <= tol, `${name}: ${pname}[${i}]: analytic ${analytic[i]} vs numeric ${numeric} (err ${err.toExponential(2)} > ${tol.toExponential(2)})`);
    }
    assert.ok(skipped <= idx.length / 4, `${name}: ${pname}: ${skipped} of ${idx.length} samples hit a top-k switch`);
    if (pname === 'u.weight' || pname === 'v.weight') {
      if (layer.sparseGrads) {
        assert.equal(p.grad, null, `${name}: ${pname} got a dense gradient`);
        assert.ok(p.sparseGrad && p.sparseGrad.length === 1, `${name}: ${pname} has no sparse chunk`);
      }
    }
  }
}

// ------------------------------------------------------------------------------ goldens

interface GoldenConfig {
  d: number; layers: number; heads: number; seq: number; n_sub: number; peer_heads: number; peer_k: number;
  d_key: number; peer_bn: boolean; peer_layers: string;
}

function runGolden(name: string, sparseGrads: boolean): void {
  const { tensors, metadata } = readSafetensors(GOLDEN + `${name}.safetensors`);
  const cfg = JSON.parse(metadata.config) as GoldenConfig;
  const get = (n: string): Float32Array => {
    const t = tensors.get(n);
    assert.ok(t, `${name}: golden has no tensor '${n}'`);
    return t.data as Float32Array;
  };
  const peerLayers = cfg.peer_layers === 'all' ? null : cfg.peer_layers.split(',').map(Number);
  const peers: PEER[] = [];
  const makeFfn = (i: number): FeedForward => {
    if (peerLayers && !peerLayers.includes(i)) return new MLP(cfg.d, 4 * cfg.d);
    const p = new PEER(cfg.d, {
      nSub: cfg.n_sub, heads: cfg.peer_heads, k: cfg.peer_k, dKey: cfg.d_key, bn: cfg.peer_bn, activation: 'gelu', pkm: false, sparseGrads,
    });
    peers.push(p);
    return p;
  };
  const model = new GPT({ vocabSize: 256, d: cfg.d, layers: cfg.layers, heads: cfg.heads, seq: cfg.seq, dropout: 0, lnEps: 1e-5 }, makeFfn);
  assert.ok(peers.length > 0, `${name}: no PEER layer`);
  const stateNames = [...tensors.keys()].filter((n) => !n.startsWith('input.') && !n.startsWith('out.') && !n.startsWith('grad.'));
  const ours = [...model.namedParameters(), ...model.namedBuffers()];
  assert.deepEqual(ours.map(([n]) => n).sort(), stateNames.slice().sort(), `${name}: parameter/buffer names differ from the state_dict`);
  // parameters in state_dict order (buffers interleave there, so compare the parameter subsequence)
  const paramNames = new Set(model.namedParameters().map(([n]) => n));
  assert.deepEqual(model.namedParameters().map(([n]) => n), stateNames.filter((n) => paramNames.has(n)), `${name}: parameter order`);
  for (const [n, p] of ours) {
    const t = tensors.get(n)!;
    if (p.dtype === 'i32') (p.data as Int32Array)[p.offset] = Number((t.data as BigInt64Array | Int32Array)[0]);
    else p.f32.set(t.data as Float32Array);
  }
  const xt = tensors.get('input.x')!, yt = tensors.get('input.y')!;
  const x = new Tensor(xt.data as Int32Array, xt.shape), y = new Tensor(yt.data as Int32Array, yt.shape);

  model.train();
  const res = model.forward(x, y);
  const loss = res.loss!.item(), lossRef = get('out.loss')[0];
  assert.ok(Math.abs(loss - lossRef) <= 1e-5 * Math.abs(lossRef), `${name}: loss ${loss} vs ${lossRef}`);
  model.zeroGrad();
  res.loss!.backward();
  for (const [n, p] of model.namedParameters()) {
    const gRef = get(`grad.${n}`);
    let scale = 0;
    for (const v of gRef) scale = Math.max(scale, Math.abs(v));
    const g = materialise(p);
    const sparse = n.endsWith('.u.weight') || n.endsWith('.v.weight');
    if (sparse && sparseGrads) assert.equal(p.grad, null, `${name}: ${n} has a dense gradient`);
    else assert.ok(p.grad, `${name}: no gradient for ${n}`);
    assertClose(g, gRef, 0, 1e-4 * Math.max(scale, 1e-6), `${name}: grad.${n}`);
  }
  if (cfg.peer_bn) {
    // one training forward moved the running statistics as torch's did before its eval pass
    for (const p of peers) {
      assert.ok(p.bn);
      assert.equal(p.bn.num_batches_tracked.data[0], 1);
    }
  }

  model.eval();
  const logits = noGrad(() => model.forward(x).logits);
  const lRef = get('out.logits');
  let lscale = 0;
  for (const v of lRef) lscale = Math.max(lscale, Math.abs(v));
  assertClose(logits.f32, lRef, 0, 1e-5 * lscale, `${name}: eval logits`);
}

// ------------------------------------------------------------------------------ sparse Adam reference

/** SparseAdam (PyTorch) on a dense table, rows of `touched` only, float64 math. */
function sparseAdamLoop(p: Float64Array, m: Float64Array, v: Float64Array, d: number, rows: Map<number, Float64Array>,
  lr: number, b1: number, b2: number, eps: number, step: number): void {
  const bc1 = 1 - b1 ** step, bc2 = 1 - b2 ** step, ss = (lr * Math.sqrt(bc2)) / bc1;
  for (const [r, g] of rows) {
    for (let c = 0; c < d; c++) {
      const o = r * d + c;
      m[o] += (1 - b1) * (g[c] - m[o]);
      v[o] += (1 - b2) * (g[c] * g[c] - v[o]);
      p[o] -= (ss * m[o]) / (Math.sqrt(v[o]) + eps);
    }
  }
}

/** Random sparse chunks over `rows` rows (ids repeat within and across chunks). */
function randomChunks(rows: number, d: number, seed: number): { ids: Int32Array; values: Float32Array }[] {
  const r = rng(seed);
  const out = [];
  for (let c = 0; c < 3; c++) {
    const n = 1 + Math.floor(r() * rows);
    const ids = randint(n, rows, seed * 7 + c);
    out.push({ ids, values: randn(n * d, seed * 11 + c, 0.1) });
  }
  return out;
}

// ------------------------------------------------------------------------------ tests

describe('PEER retrieval (reference)', () => {
  test('product-key top-k equals brute force over all N experts', () => {
    for (const [T, h, nSub, half, k, seed] of [[5, 2, 8, 4, 4, 1], [3, 3, 11, 3, 5, 2], [4, 1, 6, 5, 6, 3], [2, 2, 9, 4, 1, 4], [3, 2, 16, 8, 9, 5]]) {
      const P = problem(T, h, nSub, half, k, seed);
      const { ids, scores } = runRetrieve(ref, P);
      const exact = checkRetrieval(`ref T${T} h${h} nSub${nSub} k${k}`, P, ids, scores);
      assert.ok(exact >= T * h - 1, `ref: only ${exact} of ${T * h} rows in exact brute-force order`);
    }
  });

  test('ties keep the lower index', () => {
    // all sub-keys equal: every candidate ties; expect ids in flattened candidate order
    const nSub = 5, half = 2, k = 3;
    const keys = new Float32Array(2 * nSub * half).fill(0.5), q = Float32Array.from([1, 1, 1, 1]);
    const ids = new Int32Array(k), scores = new Float32Array(k);
    ref.peerRetrieve(1, 1, nSub, half, k, q, keys, ids, scores);
    assert.deepEqual([...ids], [0, 1, 2]);
    const nat = maybeNative();
    if (nat) {
      const ids2 = new Int32Array(k);
      nat.peerRetrieve(1, 1, nSub, half, k, q, keys, ids2, scores);
      assert.deepEqual([...ids2], [0, 1, 2]);
    }
  });
});

describe('PEER native kernels vs reference', { skip: !maybeNative() }, () => {
  const N = () => maybeNative()!;
  const R = ref;

  test('retrieval equals brute force (odd sizes, AVX tails)', () => {
    for (const [T, h, nSub, half, k, seed] of [[5, 2, 8, 4, 4, 1], [3, 3, 11, 3, 5, 2], [7, 2, 37, 13, 7, 3], [2, 2, 9, 4, 1, 4],
      [3, 2, 16, 8, 16, 5], [9, 4, 64, 32, 16, 6], [4, 1, 100, 64, 16, 7]]) {
      const P = problem(T, h, nSub, half, k, seed);
      const a = runRetrieve(N(), P), b = runRetrieve(R, P);
      const exact = checkRetrieval(`native T${T} h${h} nSub${nSub} k${k}`, P, a.ids, a.scores);
      assert.ok(exact >= T * h - 1, `native: only ${exact} of ${T * h} rows in exact order`);
      assertClose(a.scores, b.scores, 1e-5, 1e-5, 'native vs ref scores');
    }
  });

  test('retrieval with heavy ties equals the reference exactly; NaN/inf inputs give valid ids', () => {
    // integer queries and keys: every score is an exact small integer, so ties are everywhere and
    // both implementations must apply the same rule (descending, lower index first)
    for (const [T, h, nSub, half, k, seed] of [[6, 3, 40, 4, 16, 1], [5, 2, 33, 3, 7, 2], [4, 2, 100, 2, 16, 3], [3, 1, 27, 5, 20, 4]]) {
      const q = Float32Array.from(randint(T * h * 2 * half, 3, seed), (v) => v - 1);
      const keys = Float32Array.from(randint(2 * nSub * half, 3, seed + 1), (v) => v - 1);
      const P: Problem = { T, h, nSub, half, k, q, keys };
      const a = runRetrieve(N(), P), b = runRetrieve(R, P);
      assert.deepEqual([...a.ids], [...b.ids], `tied ids T${T} nSub${nSub} k${k}`);
      assert.deepEqual([...a.scores], [...b.scores], 'tied scores');
    }
    const P = problem(4, 2, 32, 4, 16, 9);
    P.q[3] = NaN;
    P.q[20] = Infinity;
    P.keys[5] = -Infinity;
    for (let i = 0; i < 4 * 32; i++) P.keys[32 * 4 + i] = -Infinity; // second table all -inf
    const { ids } = runRetrieve(N(), P);
    for (const id of ids) assert.ok(id >= 0 && id < 32 * 32, `invalid id ${id} from non-finite inputs`);
  });

  test('retrieval selection equals the reference exactly on every ISA path (sizes, tails, tie densities)', () => {
    // integer queries and keys make every score exact, so native and reference must agree bit for
    // bit; the value range sets how many scores tie (few at +-20, most at +-1), which moves rows
    // between the AVX-512 rank path and its insertion fallback (many survivors)
    const cases: [number, number, number, number, number, number][] = [];
    for (const [nSub, k] of [[17, 16], [37, 5], [64, 16], [100, 16], [256, 16], [256, 1], [50, 20], [16, 16]])
      for (const range of [1, 3, 20]) cases.push([nSub, k, range, 4, 3, nSub * 7 + range]);
    const results: string[] = [];
    for (const [nSub, k, range, T, h, seed] of cases) {
      const half = 6;
      const q = Float32Array.from(randint(T * h * 2 * half, 2 * range + 1, seed), (v) => v - range);
      const keys = Float32Array.from(randint(2 * nSub * half, 2 * range + 1, seed + 1), (v) => v - range);
      const P: Problem = { T, h, nSub, half, k, q, keys };
      const a = runRetrieve(N(), P), b = runRetrieve(R, P);
      const tag = `nSub${nSub} k${k} range${range}`;
      assert.deepEqual([...a.ids], [...b.ids], `${tag} ids`);
      assert.deepEqual([...a.scores], [...b.scores], `${tag} scores`);
      results.push([...a.ids].join(','));
    }
    // the same problems through the AVX2 selection (a child process; on an AVX-512 CPU the parent ran the AVX-512 one)
    if (process.env.MOELAB_ISA) return;
    const script = `
      const { nativeKernels } = await import(${JSON.stringify(new URL('../src/backend/index.js', import.meta.url).href)});
      const { randint } = await import(${JSON.stringify(new URL('./util.js', import.meta.url).href)});
      const K = nativeKernels(), out = [];
      for (const [nSub, k, range, T, h, seed] of ${JSON.stringify(cases)}) {
        const half = 6;
        const q = Float32Array.from(randint(T * h * 2 * half, 2 * range + 1, seed), (v) => v - range);
        const keys = Float32Array.from(randint(2 * nSub * half, 2 * range + 1, seed + 1), (v) => v - range);
        const ids = new Int32Array(T * h * k), sc = new Float32Array(T * h * k);
        K.peerRetrieve(T, h, nSub, half, k, q, keys, ids, sc);
        out.push([...ids].join(','));
      }
      process.stdout.write(JSON.stringify(out));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, MOELAB_ISA: 'avx2' }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), results, 'AVX2 selection differs');
  });

  test('expert forward/backward, retrieval backward, coalesce, row grads', () => {
    for (const [T, d, nSub, h, k, half, pkm, act] of [[7, 13, 5, 2, 3, 3, 0, 0], [9, 40, 8, 3, 4, 4, 0, 1], [5, 16, 6, 2, 2, 5, 1, 0],
      [33, 64, 16, 4, 8, 8, 0, 0]] as const) {
      const Nn = nSub * nSub, hk = h * k, seed = T * 100 + d;
      const P = problem(T, h, nSub, half, k, seed);
      const { ids, scores } = runRetrieve(R, P);
      const x = randn(T * d, seed + 2), u = pkm ? null : randn(Nn * d, seed + 3, 0.3), v = randn(Nn * d, seed + 4, 0.3);
      const out = (K: Kernels) => {
        const g = new Float32Array(T * hk), a = u ? new Float32Array(T * hk) : null, y = new Float32Array(T * d);
        K.peerForward(T, d, Nn, hk, k, act, x, u, v, ids, scores, g, a, y);
        const gy = randn(T * d, seed + 5);
        const gx = u ? new Float32Array(T * d) : null, gs = new Float32Array(T * hk), cu = u ? new Float32Array(T * hk) : null, cv = new Float32Array(T * hk);
        K.peerBackward(T, d, Nn, hk, k, act, x, u, v, ids, g, a, gy, gx, gs, cu, cv);
        const gq = new Float32Array(T * h * 2 * half), gk = randn(2 * nSub * half, seed + 6); // accumulates
        K.peerRetrieveBackward(T, h, nSub, half, k, P.q, P.keys, ids, gs, gq, gk);
        const n = T * hk, uniq = new Int32Array(n), off = new Int32Array(n + 1), ord = new Int32Array(n);
        const U = K.peerCoalesce(n, Nn, ids, uniq, off, ord);
        const rv = new Float32Array(U * d);
        K.peerRowGrad(U, d, hk, off, ord, cv, gy, rv);
        const ru = new Float32Array(U * d);
        if (u) K.peerRowGrad(U, d, hk, off, ord, cu, x, ru);
        return { g, a, y, gx, gs, cu, cv, gq, gk, U, uniq: uniq.slice(0, U), off: off.slice(0, U + 1), ord, rv, ru };
      };
      const A = out(N()), B = out(R);
      const tag = `T${T} d${d} pkm${pkm} act${act}`;
      // the fused expert-major backward gives the same gx, gscores and row gradients
      for (const K of [N(), R]) {
        const gy = randn(T * d, seed + 5);
        const gx = u ? new Float32Array(T * d) : null, gs = new Float32Array(T * hk);
        const gu = u ? new Float32Array(A.U * d) : null, gv = new Float32Array(A.U * d);
        K.peerBackwardRows(T, d, Nn, hk, k, act, x, u, v, ids, B.g, B.a, gy, A.U, A.uniq, A.off, A.ord, gx, gs, gu, gv);
        if (u) assertClose(gx!, B.gx!, 1e-4, 1e-5, `${tag} ${K.name} fused gx`);
        assertClose(gs, B.gs, 1e-4, 1e-5, `${tag} ${K.name} fused gscores`);
        assertClose(gv, B.rv, 1e-4, 1e-5, `${tag} ${K.name} fused v rows`);
        if (u) assertClose(gu!, B.ru, 1e-4, 1e-5, `${tag} ${K.name} fused u rows`);
      }
      assertClose(A.g, B.g, 1e-5, 1e-6, `${tag} g`);
      if (u) assertClose(A.a!, B.a!, 1e-4, 1e-5, `${tag} a`);
      assertClose(A.y, B.y, 1e-4, 1e-5, `${tag} y`);
      if (u) assertClose(A.gx!, B.gx!, 1e-4, 1e-5, `${tag} gx`);
      assertClose(A.gs, B.gs, 1e-4, 1e-5, `${tag} gscores`);
      if (u) assertClose(A.cu!, B.cu!, 1e-4, 1e-5, `${tag} cu`);
      assertClose(A.cv, B.cv, 1e-4, 1e-6, `${tag} cv`);
      assertClose(A.gq, B.gq, 1e-4, 1e-5, `${tag} gq`);
      assertClose(A.gk, B.gk, 1e-4, 1e-5, `${tag} gkeys`);
      assert.equal(A.U, B.U);
      assert.deepEqual([...A.uniq], [...B.uniq]);
      assert.deepEqual([...A.off], [...B.off]);
      assert.deepEqual([...A.ord], [...B.ord]);
      assertClose(A.rv, B.rv, 1e-4, 1e-5, `${tag} v rows`);
      assertClose(A.ru, B.ru, 1e-4, 1e-5, `${tag} u rows`);
    }
  });

  test('query BatchNorm kernels (train and eval)', () => {
    for (const [T, C, training] of [[37, 19, true], [5, 70, true], [9, 33, false], [2, 3, true]] as const) {
      const x = randn(T * C, T + C, 2), w = randn(C, 3), b = randn(C, 4), gy = randn(T * C, 5);
      const run = (K: Kernels) => {
        const rm = randn(C, 6, 0.1), rv = randn(C, 7).map((t) => 0.5 + Math.abs(t));
        const y = new Float32Array(T * C), mean = new Float32Array(C), rstd = new Float32Array(C);
        K.peerBatchNorm(T, C, training, 1e-5, 0.1, x, w, b, rm, rv, y, mean, rstd);
        const gx = new Float32Array(T * C), gw = new Float32Array(C), gb = new Float32Array(C);
        K.peerBatchNormBackward(T, C, training, x, w, mean, rstd, gy, gx, gw, gb);
        return { rm, rv, y, mean, rstd, gx, gw, gb };
      };
      const A = run(N()), B = run(R);
      for (const key of ['rm', 'rv', 'y', 'mean', 'rstd', 'gx', 'gw', 'gb'] as const) assertClose(A[key], B[key], 1e-5, 1e-5, `bn T${T} C${C} ${key}`);
    }
    const K = N() as unknown as Record<string, (...a: unknown[]) => unknown>;
    const f = (n: number) => new Float32Array(n);
    assert.throws(() => K.peerBatchNorm(1, 4, true, 1e-5, 0.1, f(4), f(4), f(4), f(4), f(4), f(4), f(4), f(4)), RangeError, 'T = 1 in training');
    assert.throws(() => K.peerBatchNorm(2, 4, true, 1e-5, 0.1, f(7), f(4), f(4), f(4), f(4), f(8), f(4), f(4)), RangeError, 'x short');
    assert.throws(() => K.peerBatchNorm(2, 4, 1, 1e-5, 0.1, f(8), f(4), f(4), f(4), f(4), f(8), f(4), f(4)), TypeError, 'training not boolean');
    const xx = f(8);
    assert.throws(() => K.peerBatchNorm(2, 4, true, 1e-5, 0.1, xx, f(4), f(4), f(4), f(4), xx, f(4), f(4)), RangeError, 'y aliases x');
    assert.throws(() => K.peerBatchNormBackward(2, 4, true, f(8), f(4), f(4), f(4), f(8), f(8), f(3), f(4)), RangeError, 'gw short');
  });

  test('sparse Adam kernel (fp32 and bf16 moments)', () => {
    const rows = 40, d = 19, U = 17;
    const ids = Int32Array.from([...new Set(randint(60, rows, 3))].sort((a, b) => a - b).slice(0, U));
    const g = randn(ids.length * d, 4, 0.1);
    for (const bf of [false, true]) {
      const run = (K: Kernels) => {
        const p = randn(rows * d, 5), m = bf ? new Uint16Array(rows * d) : randn(rows * d, 6, 0.01);
        const v = bf ? new Uint16Array(rows * d) : randn(rows * d, 7, 0.01).map(Math.abs);
        for (let s = 1; s <= 3; s++) K.sparseAdam(ids.length, d, ids, g, p, m, v, 1e-2, 0.9, 0.999, 1e-8, 1 - 0.9 ** s, 1 - 0.999 ** s);
        return { p, m, v };
      };
      const A = run(N()), B = run(R);
      assertClose(A.p, B.p, 1e-5, 1e-6, `sparseAdam bf16=${bf} p`);
      if (bf) {
        let diff = 0;
        for (let i = 0; i < A.m.length; i++) diff += A.m[i] !== B.m[i] || A.v[i] !== B.v[i] ? 1 : 0;
        assert.ok(diff <= A.m.length / 100, `bf16 moments differ in ${diff} places`);
      } else {
        assertClose(A.m as Float32Array, B.m as Float32Array, 1e-5, 1e-7, 'm');
        assertClose(A.v as Float32Array, B.v as Float32Array, 1e-5, 1e-7, 'v');
      }
    }
  });

  test('bad arguments throw instead of crashing', () => {
    const K = N() as unknown as Record<string, (...a: unknown[]) => unknown>;
    const f32 = (n: number) => new Float32Array(n), i32 = (n: number) => new Int32Array(n);
    const T = 2, h = 2, nSub = 4, half = 2, k = 2, dk = 4;
    const q = f32(T * h * dk), keys = f32(2 * nSub * half), ids = i32(T * h * k), sc = f32(T * h * k);
    const ok = () => K.peerRetrieve(T, h, nSub, half, k, q, keys, ids, sc);
    ok();
    const bad = (what: string, fn: () => unknown) => assert.throws(fn, (e: Error) => e instanceof TypeError || e instanceof RangeError, what);
    bad('too few args', () => K.peerRetrieve(T, h, nSub));
    bad('q short', () => K.peerRetrieve(T, h, nSub, half, k, f32(3), keys, ids, sc));
    bad('keys wrong type', () => K.peerRetrieve(T, h, nSub, half, k, q, new Float64Array(16), ids, sc));
    bad('k > nSub', () => K.peerRetrieve(T, h, nSub, half, 5, q, keys, i32(100), f32(100)));
    bad('k = 0', () => K.peerRetrieve(T, h, nSub, half, 0, q, keys, ids, sc));
    bad('nSub^2 overflow', () => K.peerRetrieve(T, h, 50000, half, k, q, keys, ids, sc));
    bad('fractional T', () => K.peerRetrieve(1.5, h, nSub, half, k, q, keys, ids, sc));
    bad('ids aliases scores', () => { const b = new ArrayBuffer(64); K.peerRetrieve(T, h, nSub, half, k, q, keys, new Int32Array(b), new Float32Array(b)); });

    const d = 3, Nn = nSub * nSub, hk = h * k;
    const x = f32(T * d), u = f32(Nn * d), v = f32(Nn * d), g = f32(T * hk), a = f32(T * hk), y = f32(T * d);
    const goodIds = i32(T * hk);
    K.peerForward(T, d, Nn, hk, k, PeerAct.gelu, x, u, v, goodIds, sc, g, a, y);
    bad('id out of range', () => K.peerForward(T, d, Nn, hk, k, 0, x, u, v, Int32Array.from(goodIds, (_, i) => (i === 3 ? Nn : 0)), sc, g, a, y));
    bad('negative id', () => K.peerForward(T, d, Nn, hk, k, 0, x, u, v, Int32Array.from(goodIds, (_, i) => (i === 3 ? -1 : 0)), sc, g, a, y));
    bad('bad act', () => K.peerForward(T, d, Nn, hk, k, 7, x, u, v, goodIds, sc, g, a, y));
    bad('hk not multiple of k', () => K.peerForward(T, d, Nn, 3, 2, 0, x, u, v, goodIds, sc, g, a, y));
    bad('u short', () => K.peerForward(T, d, Nn, hk, k, 0, x, f32(5), v, goodIds, sc, g, a, y));
    bad('a missing with u', () => K.peerForward(T, d, Nn, hk, k, 0, x, u, v, goodIds, sc, g, null, y));
    bad('y aliases x', () => K.peerForward(T, d, Nn, hk, k, 0, x, u, v, goodIds, sc, g, a, x));
    const gx = f32(T * d), gs = f32(T * hk), cu = f32(T * hk), cv = f32(T * hk);
    K.peerBackward(T, d, Nn, hk, k, 0, x, u, v, goodIds, g, a, y, gx, gs, cu, cv);
    bad('backward gx short', () => K.peerBackward(T, d, Nn, hk, k, 0, x, u, v, goodIds, g, a, y, f32(1), gs, cu, cv));
    bad('backward id range', () => K.peerBackward(T, d, Nn, hk, k, 0, x, u, v, Int32Array.from(goodIds, () => 1 << 30), g, a, y, gx, gs, cu, cv));
    bad('backward cv aliases gs', () => K.peerBackward(T, d, Nn, hk, k, 0, x, u, v, goodIds, g, a, y, gx, gs, cu, gs));
    const gq = f32(T * h * dk), gk = f32(2 * nSub * half);
    K.peerRetrieveBackward(T, h, nSub, half, k, q, keys, goodIds, gs, gq, gk);
    bad('retrieve bwd id range', () => K.peerRetrieveBackward(T, h, nSub, half, k, q, keys, Int32Array.from(goodIds, () => Nn), gs, gq, gk));
    bad('retrieve bwd gkeys short', () => K.peerRetrieveBackward(T, h, nSub, half, k, q, keys, goodIds, gs, gq, f32(3)));
    {
      const n2 = T * hk, uq2 = i32(n2), off2 = i32(n2 + 1), ord2 = i32(n2);
      const U2 = K.peerCoalesce(n2, Nn, goodIds, uq2, off2, ord2) as number;
      const gu2 = f32(U2 * d), gv2 = f32(U2 * d);
      const call = (o: Partial<Record<string, unknown>>) => K.peerBackwardRows(T, d, Nn, hk, k, 0, x, u, v, o.ids ?? goodIds, g, a, y,
        o.U ?? U2, uq2, o.off ?? off2, o.ord ?? ord2, o.gx ?? gx, gs, o.gu ?? gu2, gv2);
      call({});
      bad('rows: order mismatch', () => call({ ord: Int32Array.from(ord2, (t, i) => (i === 0 ? ord2[1] : t)) }));
      bad('rows: offsets do not span', () => call({ off: Int32Array.from(off2, (t, i) => (i === U2 ? t - 1 : t)) }));
      bad('rows: U too large', () => call({ U: U2 + 5 }));
      bad('rows: gu short', () => call({ gu: f32(1) }));
      bad('rows: gx aliases x', () => call({ gx: x }));
      bad('rows: gu without u', () => K.peerBackwardRows(T, d, Nn, hk, k, 0, x, null, v, goodIds, g, null, y, U2, uq2, off2, ord2, null, gs, gu2, gv2));
    }
    const addon = loadNative() as unknown as Record<string, (...a: unknown[]) => unknown>;
    bad('advise non-array', () => addon.peerAdviseHugePages(42));
    bad('advise no args', () => addon.peerAdviseHugePages());
    assert.equal(typeof addon.peerAdviseHugePages(new Float32Array(8)), 'boolean');
    const n = 6, cids = Int32Array.of(3, 1, 3, 0, 9, 1), uq = i32(n), off = i32(n + 1), ord = i32(n);
    assert.equal(K.peerCoalesce(n, 10, cids, uq, off, ord), 4);
    bad('coalesce id range', () => K.peerCoalesce(n, 5, cids, uq, off, ord));
    bad('coalesce offsets short', () => K.peerCoalesce(n, 10, cids, uq, i32(n), ord));
    bad('coalesce N = 0', () => K.peerCoalesce(n, 0, cids, uq, off, ord));
    const src = f32(n * 2), outR = f32(4 * 2);
    K.peerRowGrad(4, 2, 1, off, ord, null, src, outR);
    bad('rowgrad order out of range', () => K.peerRowGrad(4, 2, 1, off, Int32Array.of(0, 1, 2, 3, 4, 99), null, src, outR));
    bad('rowgrad offsets decreasing', () => K.peerRowGrad(2, 2, 1, Int32Array.of(0, 3, 1), ord, null, src, outR));
    bad('rowgrad offsets past order', () => K.peerRowGrad(1, 2, 1, Int32Array.of(0, 7), ord, null, src, outR));
    bad('rowgrad coef short', () => K.peerRowGrad(4, 2, 1, off, ord, f32(2), src, outR));
    const P = f32(10 * 2), M = f32(20), V = f32(20), G = f32(3 * 2);
    K.sparseAdam(3, 2, Int32Array.of(1, 4, 9), G, P, M, V, 1e-3, 0.9, 0.999, 1e-8, 0.1, 0.001);
    bad('adam ids not increasing', () => K.sparseAdam(3, 2, Int32Array.of(1, 1, 9), G, P, M, V, 1e-3, 0.9, 0.999, 1e-8, 0.1, 0.001));
    bad('adam id range', () => K.sparseAdam(3, 2, Int32Array.of(1, 4, 10), G, P, M, V, 1e-3, 0.9, 0.999, 1e-8, 0.1, 0.001));
    bad('adam mixed moment types', () => K.sparseAdam(3, 2, Int32Array.of(1, 4, 9), G, P, M, new Uint16Array(20), 1e-3, 0.9, 0.999, 1e-8, 0.1, 0.001));
    bad('adam bc = 0', () => K.sparseAdam(3, 2, Int32Array.of(1, 4, 9), G, P, M, V, 1e-3, 0.9, 0.999, 1e-8, 0, 0.001));
    bad('adam m short', () => K.sparseAdam(3, 2, Int32Array.of(1, 4, 9), G, P, f32(4), V, 1e-3, 0.9, 0.999, 1e-8, 0.1, 0.001));
    bad('adam g aliases p', () => K.sparseAdam(3, 2, Int32Array.of(1, 4, 9), P, P, M, V, 1e-3, 0.9, 0.999, 1e-8, 0.1, 0.001));
  });
});

for (const [bname, makeKern] of backends()) {
  describe(`PEER layer on ${bname}`, () => {
    let kern: Kernels;
    test.before(() => { kern = makeKern(); });
    test.beforeEach(() => setBackend(kern));
    test.after(() => setBackend(ref));

    test('finite-difference gradients (gelu, relu, bn, pkm; sparse and dense u/v)', () => {
      layerGradcheck('gelu', makePeer(8, opts(), 1), 5, 10);
      layerGradcheck('relu', makePeer(8, opts({ activation: 'relu' }), 2), 5, 20, 3e-3);
      layerGradcheck('bn', makePeer(8, opts({ bn: true }), 3), 6, 30);
      layerGradcheck('pkm', makePeer(8, opts({ pkm: true }), 4), 5, 40);
      layerGradcheck('dense u/v', makePeer(8, opts({ sparseGrads: false, heads: 3, k: 2 }), 5), 4, 50);
      const ev = makePeer(8, opts({ bn: true }), 6);
      ev.bn!.running_mean.f32.set(randn(12, 7, 0.3));
      ev.bn!.running_var.f32.set(randn(12, 8).map((t) => 0.5 + Math.abs(t)));
      ev.eval();
      layerGradcheck('bn eval', ev, 4, 60);
    });

    test('sparse chunks equal the dense gradient; repeated experts coalesce', () => {
      const o = opts({ nSub: 3, k: 3, heads: 3 }); // 9 experts, 9 picks per token: heavy repetition
      const a = makePeer(8, o, 9), b = makePeer(8, { ...o, sparseGrads: false }, 9);
      const x = randn(7 * 8, 3), R = randn(7 * 8, 4);
      for (const m of [a, b]) m.forward(tensor(x, [7, 8])).backward(R.slice());
      for (const n of ['u.weight', 'v.weight']) {
        const pa = a.namedParameters().find(([k]) => k === n)![1], pb = b.namedParameters().find(([k]) => k === n)![1];
        assert.equal(pa.sparseGrad!.length, 1);
        const ids = pa.sparseGrad![0].ids;
        for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], 'chunk ids strictly increasing');
        assertClose(materialise(pa), pb.grad!.f32, 1e-6, 1e-7, n);
      }
      // a second backward before the optimizer (gradient accumulation) gets its own buffers; after
      // zeroGrad the layer reuses them
      const first = a.v.weight.sparseGrad![0].values;
      const snapshot = first.slice();
      a.forward(tensor(x, [7, 8])).backward(R.slice());
      assert.equal(a.v.weight.sparseGrad!.length, 2);
      const second = a.v.weight.sparseGrad![1].values;
      assert.notEqual(second.buffer, first.buffer);
      assert.deepEqual([...first], [...snapshot], 'first chunk overwritten by the second backward');
      const twice = materialise(a.v.weight);
      assertClose(twice, b.v.weight.grad!.f32.map((t) => 2 * t), 1e-6, 1e-6, 'accumulated chunks');
      a.v.weight.sparseGrad = null;
      a.forward(tensor(x, [7, 8])).backward(R.slice());
      assert.ok([first.buffer, second.buffer].includes(a.v.weight.sparseGrad![0].values.buffer), 'pooled buffer reused');
      assertClose(materialise(a.v.weight), b.v.weight.grad!.f32, 1e-6, 1e-7, 'after reuse');
      assert.deepEqual(a.sparseParameters(), [a.u!.weight, a.v.weight]);
      assert.deepEqual(b.sparseParameters(), []);
      const { sparse, dense } = splitSparseParams(a.namedParameters());
      assert.deepEqual(sparse.map(([n]) => n), ['u.weight', 'v.weight']);
      assert.deepEqual(dense.map(([n]) => n), ['keys', 'query.weight']);
      assert.equal(a.stats(), null, 'training forwards are not counted');
      a.eval();
      a.forward(tensor(x, [7, 8]));
      const st = a.stats()!;
      assert.ok((st.peerUniqueExperts as number) >= 1 && (st.peerUniqueExperts as number) <= 9);
    });

    test('sparse Adam equals dense Adam on touched rows, leaves the rest alone', () => {
      const rows = 23, d = 5, lr = 0.05, b1 = 0.9, b2 = 0.999, eps = 1e-8;
      const init = randn(rows * d, 1);
      const p = tensor(init.slice(), [rows, d], { requiresGrad: true });
      const opt = new SparseAdam([['t', p]], { beta1: b1, beta2: b2, eps });
      const P = Float64Array.from(init), M = new Float64Array(rows * d), V = new Float64Array(rows * d);
      const touchedEver = new Set<number>();
      for (let s = 1; s <= 4; s++) {
        const chunks = randomChunks(rows, d, s);
        p.sparseGrad = chunks.map((c) => ({ ids: c.ids, values: c.values.slice() }));
        const coalesced = new Map<number, Float64Array>();
        for (const c of chunks) {
          for (let i = 0; i < c.ids.length; i++) {
            const g = coalesced.get(c.ids[i]) ?? new Float64Array(d);
            for (let j = 0; j < d; j++) g[j] += c.values[i * d + j];
            coalesced.set(c.ids[i], g);
            touchedEver.add(c.ids[i]);
          }
        }
        let sq = 0;
        for (const g of coalesced.values()) for (const t of g) sq += t * t;
        assert.ok(Math.abs(opt.gradSquaredNorm() - sq) <= 1e-6 * sq, 'gradSquaredNorm of coalesced chunks');
        opt.scaleGrads(0.5);
        assert.ok(Math.abs(opt.gradSquaredNorm() - sq / 4) <= 1e-6 * sq, 'scaleGrads');
        opt.scaleGrads(2);
        opt.step(lr);
        opt.zeroGrad();
        assert.equal(p.sparseGrad, null);
        sparseAdamLoop(P, M, V, d, coalesced, lr, b1, b2, eps, s);
        assertClose(p.f32, P, 1e-5, 1e-6, `params after step ${s}`);
      }
      for (let r = 0; r < rows; r++) {
        if (touchedEver.has(r)) continue;
        for (let j = 0; j < d; j++) assert.equal(p.f32[r * d + j], init[r * d + j], `untouched row ${r} changed`);
      }
      const sd = opt.stateDict();
      assert.equal(sd.get('t.step')!.data[0], 4);
      const m = sd.get('t.exp_avg')!.data as Float32Array;
      assertClose(m, M, 1e-5, 1e-7, 'exp_avg');

      // every row touched every step: same as dense Adam (our adamw kernel with wd 0); eps = 0 because
      // SparseAdam adds eps to sqrt(v) and Adam to sqrt(v / bc2), which differ where |g| ~ eps
      const q = tensor(init.slice(), [rows, d], { requiresGrad: true });
      const opt2 = new SparseAdam([['q', q]], { beta1: b1, beta2: b2, eps: 0 });
      const Pd = init.slice(), Md = new Float32Array(rows * d), Vd = new Float32Array(rows * d);
      for (let s = 1; s <= 4; s++) {
        const g = randn(rows * d, 100 + s, 0.1);
        q.sparseGrad = [{ ids: Int32Array.from({ length: rows }, (_, i) => i), values: g.slice() }];
        opt2.step(lr);
        opt2.zeroGrad();
        kern.adamw(Pd, g, Md, Vd, lr, b1, b2, 0, 0, 1 - b1 ** s, 1 - b2 ** s);
      }
      assertClose(q.f32, Pd, 1e-5, 1e-6, 'sparse Adam (all rows) vs adamw wd=0');

      // state round trip, and a dense gradient is refused
      const opt3 = new SparseAdam([['t', p]], { beta1: b1, beta2: b2, eps });
      opt3.loadStateDict(opt.stateDict());
      assert.equal(opt3.stateDict().get('t.step')!.data[0], 4);
      assert.throws(() => opt3.loadStateDict(new Map()), /missing 't.exp_avg'/);
      p.grad = tensor(new Float32Array(rows * d), [rows, d]);
      assert.throws(() => opt3.step(lr), /dense gradient/);
      p.grad = null;
    });

    test('bf16 moments stay close to fp32 and halve the state', () => {
      const rows = 64, d = 16, lr = 1e-2;
      const init = randn(rows * d, 2);
      const a = tensor(init.slice(), [rows, d], { requiresGrad: true }), b = tensor(init.slice(), [rows, d], { requiresGrad: true });
      const oa = new SparseAdam([['a', a]]), ob = new SparseAdam([['b', b]], { bf16Moments: true });
      assert.equal(ob.stateBytes() * 2, oa.stateBytes());
      for (let s = 1; s <= 10; s++) {
        const ids = Int32Array.from([...new Set(randint(40, rows, s))].sort((x, y) => x - y));
        const g = randn(ids.length * d, 50 + s, 0.1);
        a.sparseGrad = [{ ids, values: g.slice() }];
        b.sparseGrad = [{ ids, values: g.slice() }];
        oa.step(lr);
        ob.step(lr);
        oa.zeroGrad();
        ob.zeroGrad();
      }
      // parameters moved by up to ~10 lr; bf16 moments perturb each update by < 1%
      let maxMove = 0, maxDiff = 0;
      for (let i = 0; i < init.length; i++) {
        maxMove = Math.max(maxMove, Math.abs(a.f32[i] - init[i]));
        maxDiff = Math.max(maxDiff, Math.abs(a.f32[i] - b.f32[i]));
      }
      assert.ok(maxMove > 5 * lr, `parameters barely moved (${maxMove})`);
      assert.ok(maxDiff < 0.02 * maxMove, `bf16 vs fp32 moments: max param difference ${maxDiff} vs movement ${maxMove}`);
      const sd = ob.stateDict();
      assert.equal(sd.get('b.exp_avg')!.dtype, 'BF16');
    });

    test('golden: PEER in both layers (sparse and dense u/v gradients)', () => {
      runGolden('peer', true);
      runGolden('peer', false);
    });

    test('golden: query BatchNorm, PEER in layer 1 only', () => {
      runGolden('peer_bn', true);
    });
  });
}
