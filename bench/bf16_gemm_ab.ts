/**
 * Short interleaved A/B of the bf16 GEMM against the fp32 one on the GEMMs of one dense-d256
 * training step (a ratio, not a benchmark): for each shape, rounds alternate fp32 and bf16 calls on
 * the same operands; prints the median microseconds of each and fp32/bf16, then the totals over the
 * step's GEMMs (each shape weighted by how often a step runs it).
 *
 *   node dist/bench/bf16_gemm_ab.js [threads=2] [rounds=15]
 */
import { nativeKernels } from '../src/backend/index.js';
import { randomArray } from './random_array.js';

const [threadsArg = '2', roundsArg = '15'] = process.argv.slice(2);
const K = nativeKernels();
K.setThreads(Number(threadsArg));
const rounds = Number(roundsArg);

type Trans = 'NN' | 'NT' | 'TN';
// m, n, k, trans, calls per step (4 layers; the LM head's 257-column products once), what it is
const M = 2048;
const SHAPES: [number, number, number, Trans, number, string][] = [
  [M, 768, 256, 'NT', 4, 'qkv fwd'], [M, 256, 768, 'NN', 4, 'qkv dX'], [768, 256, M, 'TN', 4, 'qkv dW'],
  [M, 256, 256, 'NT', 4, 'proj fwd'], [M, 256, 256, 'NN', 4, 'proj dX'], [256, 256, M, 'TN', 4, 'proj dW'],
  [M, 1024, 256, 'NT', 4, 'fc1 fwd'], [M, 256, 1024, 'NN', 4, 'fc1 dX'], [1024, 256, M, 'TN', 4, 'fc1 dW'],
  [M, 256, 1024, 'NT', 4, 'fc2 fwd'], [M, 1024, 256, 'NN', 4, 'fc2 dX'], [256, 1024, M, 'TN', 4, 'fc2 dW'],
  [M, 257, 256, 'NT', 1, 'head fwd'], [M, 256, 257, 'NN', 1, 'head dX'], [257, 256, M, 'TN', 1, 'head dW'],
];

const stat = process.env.AB_STAT === 'min' ? 0 : 0.5; // AB_STAT=min: the fastest round (robust on a loaded host)
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * stat + 0.5)];
let tot32 = 0, tot16 = 0;
const rows: string[] = [];
for (const [m, n, k, trans, calls, what] of SHAPES) {
  const tA = trans === 'TN', tB = trans === 'NT';
  const a = randomArray(m * k, 1), b = randomArray(k * n, 2), c = new Float32Array(m * n);
  const lda = tA ? m : k, ldb = tB ? k : n;
  const run = (bf16: boolean) => {
    const t0 = performance.now();
    (bf16 ? K.gemmBf16 : K.gemm)(tA, tB, m, n, k, 1, a, lda, b, ldb, 0, c, n, null);
    return (performance.now() - t0) * 1000;
  };
  for (let i = 0; i < 3; i++) { run(false); run(true); }
  const t32: number[] = [], t16: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2) { t16.push(run(true)); t32.push(run(false)); } else { t32.push(run(false)); t16.push(run(true)); }
  }
  const u32 = med(t32), u16 = med(t16);
  tot32 += calls * u32; tot16 += calls * u16;
  const gf = (us: number) => ((2 * m * n * k) / us / 1e3).toFixed(0);
  rows.push(`${what.padEnd(9)} ${`${m}x${n}x${k} ${trans}`.padEnd(18)} fp32 ${u32.toFixed(0).padStart(6)} us (${gf(u32).padStart(4)} GF/s)  bf16 ${u16.toFixed(0).padStart(6)} us (${gf(u16).padStart(4)} GF/s)  x${(u32 / u16).toFixed(2)}`);
}
console.log(rows.join('\n'));
console.log(`step GEMMs: fp32 ${(tot32 / 1000).toFixed(1)} ms, bf16 ${(tot16 / 1000).toFixed(1)} ms, fp32/bf16 ${(tot32 / tot16).toFixed(2)}`);
