// Shared by the MoE tests: both backends, a MoE with random weights, and a brute-force float64
// per-token / per-expert loop over a MoE's own weights for every routing variant (gates, bias,
// token / expert choice / uniform, capacity drops, shared experts, balance per batch or sequence,
// z-loss), checked against the layer's output, stats and loss values.
import assert from 'node:assert/strict';
import { ref, nativeKernels, type Kernels } from '../src/backend/index.js';
import { Tensor, noGrad } from '../src/tensor/index.js';
import { MoE, type MoEOptions } from '../src/nn/moe.js';
import { assertClose, randn } from './util.js';

/** Both backends; MOELAB_TEST_BACKEND=ref|native restricts the run to one (e.g. while native kernels are missing). */
export function backends(): [string, Kernels][] {
  const only = process.env.MOELAB_TEST_BACKEND;
  const all: [string, () => Kernels][] = [['ref', () => ref], ['native', nativeKernels]];
  return all.filter(([n]) => !only || n === only).map(([n, k]) => [n, k()]);
}

export const BASE: MoEOptions = {
  experts: 4, topk: 2, hidden: 12, granularity: 1, sharedExperts: 0, capacityFactor: 0, evalCapacityFactor: 0,
  renormalize: true, jitter: 0, auxCoef: 0.01, zCoef: 0,
};

/** A MoE with random weights; the router is wide so that top-k choices are far from ties. */
export function makeMoE(d: number, over: Partial<MoEOptions>, seed = 1): MoE {
  const m = new MoE(d, { ...BASE, ...over });
  let s = seed * 100;
  for (const [name, p] of m.namedParameters()) {
    const scale = name === 'router.weight' ? 1 : name.endsWith('b1') || name.endsWith('b2') || name.endsWith('bias') ? 0.3 : 0.5;
    p.f32.set(randn(p.size, s++, scale));
  }
  return m;
}

function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax > 3.5) { // asymptotic erfc
    const x2 = ax * ax;
    const erfc = (Math.exp(-x2) / (ax * Math.sqrt(Math.PI))) * (1 - 1 / (2 * x2) + 3 / (4 * x2 * x2));
    return Math.sign(x) * (1 - erfc);
  }
  let term = x, s = x; // Taylor: 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
  for (let n = 1; n < 80; n++) {
    term *= (-x * x) / n;
    const t = term / (2 * n + 1);
    s += t;
    if (Math.abs(t) < 1e-17 * Math.abs(s)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * s;
}
const geluD = (v: number) => 0.5 * v * (1 + erf(v / Math.SQRT2));

export interface Brute {
  y: Float64Array;
  /** Processed assignments (token, expert, gate), in the order they were made. */
  kept: { t: number; e: number; g: number }[];
  counts: number[]; // assignments per expert before drops
  dropped: number; // assignments dropped by capacity
  balance: number | null;
  z: number;
}

/** Descending by value, ties by the lower index (the kernels' order; no NaN in these tests). */
const ranked = (v: number[]): number[] => v.map((_, i) => i).sort((a, b) => v[b] - v[a] || a - b);

/**
 * The MoE of `m` on x [T, d] (T/S sequences of S tokens), in m's current mode, by loops in float64.
 * Float32 rounding of the scores before ranking mirrors the layer (it ranks float32 scores).
 */
export function bruteForce(m: MoE, x: Float32Array, T: number, S = T): Brute {
  const d = m.d, E = m.experts, k = m.topk, h = m.hidden, r = m.routing, mode = m.routingMode;
  const Wr = m.router.weight.f32, W1 = m.w1.f32, B1 = m.b1.f32, W2 = m.w2.f32, B2 = m.b2.f32;
  const bias = m.bias ? [...m.bias.f32] : new Array<number>(E).fill(0);
  const scores: number[][] = [], probs: number[][] = [], lses: number[] = [];
  for (let t = 0; t < T; t++) {
    const l: number[] = [];
    for (let e = 0; e < E; e++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += x[t * d + i] * Wr[e * d + i];
      l.push(Math.fround(s));
    }
    const mx = Math.max(...l);
    const se = l.reduce((a, v) => a + Math.exp(v - mx), 0);
    lses.push(mx + Math.log(se));
    const soft = l.map((v) => Math.exp(v - mx) / se);
    const sc = r.gate === 'sigmoid' ? l.map((v) => 1 / (1 + Math.exp(-v))) : soft;
    scores.push(sc.map(Math.fround));
    const sum = sc.reduce((a, v) => a + v, 0);
    probs.push(r.gate === 'sigmoid' ? sc.map((v) => v / sum) : soft);
  }
  // routing decisions: (token, expert, gate) assignments; token choice keeps slot order t*k + j
  const assign: { t: number; e: number; g: number }[] = [];
  const choice: number[][] = [];
  if (mode === 'expert-choice') {
    const C = m.capacity(T);
    for (let e = 0; e < E; e++) {
      for (const t of ranked(scores.map((s) => s[e])).slice(0, C)) assign.push({ t, e, g: scores[t][e] });
    }
  } else {
    for (let t = 0; t < T; t++) {
      const ord = mode === 'uniform'
        ? Array.from({ length: k }, (_, j) => (t * k + j) % E)
        : ranked(scores[t].map((v, e) => Math.fround(v + bias[e]))).slice(0, k);
      let g = ord.map((e) => scores[t][e]);
      if (m.o.renormalize) {
        const s = g.reduce((a, v) => a + v, 0);
        g = g.map((v) => v / s);
      }
      choice.push(ord);
      ord.forEach((e, j) => assign.push({ t, e, g: g[j] }));
    }
  }
  // the reference's capacity rule (token choice): assignments in (token, rank) order, the first C of each expert kept
  const counts = new Array<number>(E).fill(0);
  const C = mode === 'expert-choice' ? Infinity : m.capacity(T);
  const kept = assign.filter(({ e }) => counts[e]++ < C);
  const y = new Float64Array(T * d);
  for (const { t, e, g } of kept) {
    const a = new Float64Array(h);
    for (let u = 0; u < h; u++) {
      let s = B1[e * h + u];
      for (let i = 0; i < d; i++) s += x[t * d + i] * W1[(e * d + i) * h + u];
      a[u] = geluD(s);
    }
    for (let o = 0; o < d; o++) {
      let s = B2[e * d + o];
      for (let u = 0; u < h; u++) s += a[u] * W2[(e * h + u) * d + o];
      y[t * d + o] += g * s;
    }
  }
  for (const mlp of m.shared ? m.shared.items : []) {
    const F1 = mlp.fc1.weight.f32, C1 = mlp.fc1.bias!.f32, F2 = mlp.fc2.weight.f32, C2 = mlp.fc2.bias!.f32;
    for (let t = 0; t < T; t++) {
      const a = new Float64Array(h);
      for (let u = 0; u < h; u++) {
        let s = C1[u];
        for (let i = 0; i < d; i++) s += x[t * d + i] * F1[u * d + i];
        a[u] = geluD(s);
      }
      for (let o = 0; o < d; o++) {
        let s = C2[o];
        for (let u = 0; u < h; u++) s += a[u] * F2[o * h + u];
        y[t * d + o] += s;
      }
    }
  }
  // balance per group of G tokens (the batch for 'aux', each sequence for 'seq-aux')
  let balance: number | null = null;
  if (mode !== 'expert-choice' && r.balance !== 'none') {
    const G = r.balance === 'seq-aux' ? S : T, B = T / G;
    balance = 0;
    for (let b = 0; b < B; b++) {
      for (let e = 0; e < E; e++) {
        let n = 0, pm = 0;
        for (let t = b * G; t < (b + 1) * G; t++) {
          n += choice[t].filter((c) => c === e).length;
          pm += probs[t][e];
        }
        balance += (E * (n / (G * k)) * (pm / G)) / B;
      }
    }
  }
  const z = lses.reduce((a, v) => a + v * v, 0) / T;
  return { y, kept, counts, dropped: assign.length - kept.length, balance, z };
}

/** Runs m on random x (noGrad, fresh stats window) and checks output, load, drops and losses against bruteForce. */
export function checkAgainstBrute(label: string, m: MoE, T: number, seed: number, S = T): Brute {
  const x = randn(T * m.d, seed);
  m.resetStats();
  const y = noGrad(() => m.forward(new Tensor(x.slice(), [T, m.d]), undefined, S));
  const b = bruteForce(m, x, T, S);
  assertClose(y.f32, b.y, 1e-4, 1e-5, `${label}: output`);
  const st = m.stats()!;
  const A = b.counts.reduce((a, v) => a + v, 0);
  assertClose(st.load as number[], b.counts.map((c) => c / A), 0, 1e-12, `${label}: load`);
  assert.equal(st.dropRate, b.dropped / A, `${label}: drop rate`);
  const lv = m.routerLossValues()!;
  assertClose([lv.balance, lv.z], [b.balance ?? 0, b.z], 1e-5, 1e-6, `${label}: router losses`);
  assert.equal(st.balanceLoss === undefined, b.balance === null, `${label}: balanceLoss reported iff computed`);
  return b;
}
