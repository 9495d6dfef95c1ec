/**
 * Where the PEER expert mixture's dense union path (src/tensor/ops/peer_union.ts) beats the
 * gathered-row kernels: forward + backward of peerExperts on T tokens x hk picks whose experts are
 * drawn from U distinct ones, timed on both paths alternately (median of `rounds`), for a range of
 * U. Prints JSON: per U, rows ms, union ms and rows/union, plus the dispatcher's choice (unionWins).
 *
 *   node dist/bench/peer_union.js [T=2048] [d=256] [heads=8] [k=16] [rounds=7]
 */
import { tensor, intTensor, peerExperts, RowGradPool, stepScope } from '../src/tensor/index.js';
import { setPeerDispatch, unionWins } from '../src/tensor/ops/peer_union.js';
import { Rng } from '../src/util/random.js';

const [T = 2048, d = 256, h = 8, k = 16, rounds = 7] = process.argv.slice(2).map(Number);
const hk = h * k, N = 65536, rng = new Rng(1, 0);
const randn = (n: number, s: number) => Float32Array.from({ length: n }, () => rng.normal() * s);
const x = tensor(randn(T * d, 1), [T, d]);
const u = tensor(randn(N * d, 0.05), [N, d], { requiresGrad: true }), v = tensor(randn(N * d, 0.05), [N, d], { requiresGrad: true });
const gy = randn(T * d, 1);

function picks(U: number): Int32Array {
  // U experts spread over the table; each head picks k distinct ones (as retrieval does)
  const experts = Array.from({ length: U }, (_, i) => Math.floor((i * N) / U));
  const ids = new Int32Array(T * hk);
  for (let r = 0; r < T * h; r++) {
    const seen = new Set<number>();
    for (let j = 0; j < k; j++) {
      let e: number;
      do e = experts[rng.int(U)]; while (seen.has(e) && seen.size < U);
      seen.add(e);
      ids[r * k + j] = e;
    }
  }
  return ids;
}

function time(ids: Int32Array, scores: Float32Array, pool: RowGradPool): number {
  const t = performance.now();
  stepScope(() => {
    const s = tensor(scores, [T, hk], { requiresGrad: true });
    peerExperts(x, intTensor(ids, [T, hk]), s, u, v, { k, activation: 'gelu', rowGrads: pool }).backward(gy);
  });
  u.sparseGrad = v.sparseGrad = null;
  return performance.now() - t;
}

const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const rows: Record<string, unknown>[] = [];
for (const U of [32, 64, 128, 256, 512, 1024, 2048, 4096].filter((U) => U >= k)) {
  const ids = picks(U), scores = randn(T * hk, 1), pool = new RowGradPool();
  const t = { rows: [] as number[], union: [] as number[] };
  for (let r = 0; r < rounds + 1; r++)
    for (const m of r % 2 ? (['union', 'rows'] as const) : (['rows', 'union'] as const)) {
      setPeerDispatch(m);
      const ms = time(ids, scores, pool);
      if (r > 0) t[m].push(ms); // round 0 warms the pools
    }
  setPeerDispatch('auto');
  const r = med(t.rows), un = med(t.union);
  rows.push({ U, U_over_hk: +(U / hk).toFixed(2), rowsMs: +r.toFixed(2), unionMs: +un.toFixed(2), rowsOverUnion: +(r / un).toFixed(2), autoPicksUnion: unionWins(U, hk) });
}
console.log(JSON.stringify({ T, d, heads: h, k, rounds, results: rows }, null, 1));
