/**
 * The fused causal attention kernels alone, fp32 against bf16, forward and backward, interleaved
 * (one call of each per round, order rotating): median ms per call and GFLOP/s counting only the
 * causal half of each product (forward 2 products, backward 5 with the score recomputation).
 *
 *   node dist/bench/attention_ab.js [B S H hd rounds threads]   (default 8 256 4 64 30 2)
 */
import { nativeKernels } from '../src/backend/index.js';

const [B, S, H, hd, rounds, threads] = (process.argv.slice(2).map(Number).concat([]) as number[]);
const b = B || 8, s = S || 256, h = H || 4, e = hd || 64, n = rounds || 30;
const k = nativeKernels();
k.setThreads(threads || 2);
const d = h * e, scale = 1 / Math.sqrt(e);
const qkv = new Float32Array(b * s * 3 * d), g = new Float32Array(b * s * d);
let seed = 1;
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5);
for (let i = 0; i < qkv.length; i++) qkv[i] = rnd();
for (let i = 0; i < g.length; i++) g[i] = rnd();
const out = new Float32Array(b * s * d), lse = new Float32Array(b * h * s), gq = new Float32Array(qkv.length);
const sides = {
  fwd: () => k.attention(b, s, h, e, scale, qkv, out, lse),
  bwd: () => k.attentionBackward(b, s, h, e, scale, qkv, out, lse, g, gq),
  fwdBf16: () => k.attentionBf16(b, s, h, e, scale, qkv, out, lse),
  bwdBf16: () => k.attentionBackwardBf16(b, s, h, e, scale, qkv, out, lse, g, gq),
};
// SIDES=fwd,bwd runs only those (e.g. under perf)
const names = (Object.keys(sides) as (keyof typeof sides)[]).filter((x) => !process.env.SIDES || process.env.SIDES.split(',').includes(x));
const t: Record<string, number[]> = Object.fromEntries(names.map((x) => [x, []]));
k.attention(b, s, h, e, scale, qkv, out, lse);
for (let r = 0; r < n + 3; r++) {
  for (let j = 0; j < names.length; j++) {
    const name = names[(r + j) % names.length];
    if (name.startsWith('bwd')) k.attention(b, s, h, e, scale, qkv, out, lse); // its own out/lse
    const t0 = performance.now();
    sides[name]();
    if (r >= 3) t[name].push(performance.now() - t0);
  }
}
const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
const prod = 2 * b * h * (s * (s + 1) / 2) * e; // one causal product's FLOPs
const res = Object.fromEntries(names.map((x) => {
  const ms = med(t[x]);
  return [x, { ms: +ms.toFixed(3), gflops: +((x.startsWith('fwd') ? 2 : 5) * prod / ms / 1e6).toFixed(1) }];
}));
console.log(JSON.stringify({ B: b, S: s, H: h, hd: e, threads: threads || 2, rounds: n, ...res }));
