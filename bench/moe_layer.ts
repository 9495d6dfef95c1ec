// Times one MoE layer's forward + backward at T=2048, d=256, k=2 for E=8 (h=1024) and E=64 (h=128),
// next to the dense MLP d -> 4d -> d and a dense MLP with the MoE's active width (k*h), round-robin
// (each rep runs every layer once), and prints JSON (median and best). GFLOP/s = 6 * forward MACs per token * T / time (fwd 2 flops/MAC, bwd twice the forward).
//   node dist/bench/moe_layer.js [--reps 10] [--tokens 2048] [--only <label substring>] [--profile]   (--profile: time per kernel function)
import { backend, setBackend, type Kernels } from '../src/backend/index.js';
import { Tensor, add, meanAll, mul } from '../src/tensor/index.js';
import { MoE } from '../src/nn/moe.js';
import { MLP } from '../src/nn/mlp.js';
import type { FeedForward } from '../src/nn/ffn.js';
import { Rng } from '../src/util/random.js';

const args = process.argv.slice(2);
const reps = Number(args[args.indexOf('--reps') + 1]) || 10;
const profile = args.includes('--profile');
const T = Number(args[args.indexOf('--tokens') + 1]) || 2048, d = 256, k = 2;

const kernelTime = new Map<string, number>();
if (profile) {
  const base = backend();
  const wrapped = Object.create(null) as Record<string, unknown>;
  for (const name of Object.keys(base) as (keyof Kernels)[]) {
    const f = base[name];
    if (typeof f !== 'function') { wrapped[name] = f; continue; }
    wrapped[name] = (...a: unknown[]) => {
      const t0 = performance.now();
      const r = (f as (...x: unknown[]) => unknown).apply(base, a);
      kernelTime.set(name, (kernelTime.get(name) ?? 0) + performance.now() - t0);
      return r;
    };
  }
  wrapped.name = base.name;
  setBackend(wrapped as unknown as Kernels);
}

function init(m: FeedForward, rng: Rng): void {
  for (const [name, p] of m.namedParameters()) {
    if (p.ndim >= 2) rng.fillNormal(p.f32, 0, name.includes('router') ? 0.5 : 0.02);
  }
}

interface Bench {
  label: string;
  m: FeedForward;
  step: () => [number, number];
  fwd: number[];
  bwd: number[];
  kernels: Map<string, number>;
}

function setup(label: string, m: FeedForward): Bench {
  const rng = new Rng(1);
  init(m, rng);
  const x = new Tensor(rng.fillNormal(new Float32Array(T * d)), [T, d], { requiresGrad: true });
  const w = new Tensor(rng.fillNormal(new Float32Array(T * d)), [T, d]);
  const step = (): [number, number] => {
    m.zeroGrad();
    x.grad = null;
    const t0 = performance.now();
    const y = m.forward(x);
    const aux = m.auxLoss();
    const t1 = performance.now();
    const loss = meanAll(mul(y, w));
    (aux ? add(loss, aux) : loss).backward();
    return [t1 - t0, performance.now() - t1];
  };
  return { label, m, step, fwd: [], bwd: [], kernels: new Map() };
}

/** Forward multiply-accumulates per token (the reference's convention: router + active experts). */
function macsPerToken(m: FeedForward): number {
  if (m instanceof MoE) return m.experts * d + (m.topk + m.o.sharedExperts) * 2 * d * m.hidden;
  if (m instanceof MLP) return 2 * d * m.hidden;
  throw new Error('macsPerToken: unknown layer');
}

function report(b: Bench): Record<string, unknown> {
  const tot = b.fwd.map((f, i) => f + b.bwd[i]);
  const med = (a: number[]) => a.slice().sort((p, q) => p - q)[a.length >> 1];
  const flops = 6 * macsPerToken(b.m) * T;
  const r: Record<string, unknown> = {
    layer: b.label, T, d, macsPerToken: macsPerToken(b.m), fwd_ms: +med(b.fwd).toFixed(2), bwd_ms: +med(b.bwd).toFixed(2),
    total_ms: +med(tot).toFixed(2), best_ms: +Math.min(...tot).toFixed(2),
    gflops: +(flops / med(tot) / 1e6).toFixed(2), gflops_best: +(flops / Math.min(...tot) / 1e6).toFixed(2),
  };
  if (b.m instanceof MoE) r.stats = { dropRate: b.m.stats()!.dropRate, maxLoad: Math.max(...(b.m.stats()!.load as number[])) };
  if (profile) {
    r.kernels_ms_per_step = Object.fromEntries([...b.kernels].sort((p, q) => q[1] - p[1]).map(([n, t]) => [n, +(t / reps).toFixed(2)]));
  }
  return r;
}

const moe = (E: number, h: number) => new MoE(d, {
  experts: E, topk: k, hidden: h, granularity: 1, sharedExperts: 0, capacityFactor: 0, evalCapacityFactor: 0,
  renormalize: true, jitter: 0, auxCoef: 0.01, zCoef: 0.001,
});
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : '';
const layers: [string, () => FeedForward][] = [
  ['dense d->4d', () => new MLP(d, 4 * d)],
  ['moe E=8 h=1024 k=2', () => moe(8, 1024)],
  ['dense d->2048 (E=8 active)', () => new MLP(d, k * 1024)],
  ['moe E=64 h=128 k=2', () => moe(64, 128)],
  ['dense d->256 (E=64 active)', () => new MLP(d, k * 128)],
];
// Round-robin: every rep runs each layer once, so a disturbance from other processes hits all alike.
const benches = layers.filter(([l]) => l.includes(only)).map(([l, make]) => setup(l, make()));
for (const b of benches) for (let i = 0; i < 2; i++) b.step();
for (let i = 0; i < reps; i++) {
  for (const b of benches) {
    kernelTime.clear();
    const [f, bw] = b.step();
    b.fwd.push(f);
    b.bwd.push(bw);
    for (const [n, t] of kernelTime) b.kernels.set(n, (b.kernels.get(n) ?? 0) + t);
  }
}
const results = benches.map(report);
console.log(JSON.stringify({ backend: backend().name, threads: backend().getThreads(), reps, results }, null, 1));
