// SGEMM benchmark: GFLOP/s of the native gemm on the shapes the models use, plain and in the
// transposed forms backward uses, at each thread count; optionally against numpy/OpenBLAS timed
// in the same run (bench/openblas_sgemm.py). `moelab bench gemm` prints the returned object.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeKernels, type Kernels } from '../src/backend/index.js';

export type Trans = 'NN' | 'NT' | 'TN';
export interface GemmShape { m: number; n: number; k: number; trans: Trans }

export interface GemmBenchOptions {
  threads?: number[];
  shapes?: GemmShape[];
  vsOpenblas?: boolean;
  /** timing budget per case, in seconds (default 1) */
  seconds?: number;
}

export interface GemmBenchResult {
  m: number; n: number; k: number; trans: Trans; threads: number; gflops: number;
  openblas_gflops?: number; ratio?: number;
}

const PYTHON = '/usr/bin/python3';
const OPENBLAS_LIB = '/usr/lib/x86_64-linux-gnu/openblas-openmp';

/**
 * Default shapes (m x n x k): the square case, expert/FFN-sized products (a 64-row MoE expert to
 * 8192 tokens), each as NN, NT and TN; then a transformer layer at 2048 tokens for each (N, K)
 * weight: forward Y = X W (NN, 2048 x N x K), input grad dX = dY W^T (NT, 2048 x K x N) and weight
 * grad dW = X^T dY (TN, K x N x 2048).
 */
export function defaultGemmShapes(): GemmShape[] {
  const out: GemmShape[] = [];
  for (const [m, n, k] of [[1024, 1024, 1024], [2048, 256, 1024], [8192, 256, 1024], [64, 256, 1024]])
    for (const trans of ['NN', 'NT', 'TN'] as Trans[]) out.push({ m, n, k, trans });
  for (const [N, K] of [[768, 256], [256, 256], [1024, 256], [256, 1024]]) {
    out.push({ m: 2048, n: N, k: K, trans: 'NN' });
    out.push({ m: 2048, n: K, k: N, trans: 'NT' });
    out.push({ m: K, n: N, k: 2048, trans: 'TN' });
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function randomArray(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    a[i] = x / 4294967296 - 0.5;
  }
  return a;
}

/** Median seconds per call of fn: a short warm-up, then repeats until the budget is spent (>= 5). */
function timeIt(fn: () => void, seconds: number): number {
  fn();
  const warmEnd = performance.now() + 100 * seconds;
  while (performance.now() < warmEnd) fn();
  const times: number[] = [];
  const end = performance.now() + 1000 * seconds;
  while (times.length < 5 || (performance.now() < end && times.length < 10000)) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return median(times) / 1000;
}

function benchOurs(K: Kernels, s: GemmShape, seconds: number): number {
  const { m, n, k, trans } = s;
  const tA = trans === 'TN', tB = trans === 'NT';
  const a = randomArray(m * k, 1), b = randomArray(k * n, 2), c = new Float32Array(m * n);
  const lda = tA ? m : k, ldb = tB ? k : n;
  const sec = timeIt(() => K.gemm(tA, tB, m, n, k, 1, a, lda, b, ldb, 0, c, n, null), seconds);
  return (2 * m * n * k) / sec / 1e9;
}

/** Median microseconds of a trivial addon call (a 1x1x1 gemm: argument checks plus dispatch). */
function napiOverheadUs(K: Kernels): number {
  const a = new Float32Array(1), b = new Float32Array(1), c = new Float32Array(1);
  const batch = 2000, samples: number[] = [];
  for (let r = 0; r < 30; r++) {
    const t0 = performance.now();
    for (let i = 0; i < batch; i++) K.gemm(false, false, 1, 1, 1, 1, a, 1, b, 1, 0, c, 1, null);
    samples.push(((performance.now() - t0) * 1000) / batch);
  }
  return median(samples);
}

type OpenblasRun = { ok: true; gflops: number[]; blas: string } | { ok: false; reason: string };

function runOpenblas(shapes: GemmShape[], threads: number, seconds: number): OpenblasRun {
  if (!existsSync(PYTHON)) return { ok: false, reason: `${PYTHON} not found` };
  const script = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'openblas_sgemm.py');
  if (!existsSync(script)) return { ok: false, reason: `${script} not found` };
  const r = spawnSync(PYTHON, [script], {
    input: JSON.stringify({ shapes, seconds }),
    encoding: 'utf8',
    env: {
      ...process.env, LD_LIBRARY_PATH: OPENBLAS_LIB,
      OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads),
    },
    maxBuffer: 1 << 24,
  });
  if (r.error) return { ok: false, reason: r.error.message };
  if (r.status !== 0) return { ok: false, reason: (r.stderr || `exit ${r.status}`).trim().split('\n').slice(-1)[0] };
  try {
    const out = JSON.parse(r.stdout) as { results: number[]; blas: string };
    if (!out.blas.includes('openblas')) return { ok: false, reason: `numpy is not using OpenBLAS (${out.blas})` };
    return { ok: true, gflops: out.results, blas: out.blas };
  } catch (e) {
    return { ok: false, reason: `bad output from ${script}: ${(e as Error).message}` };
  }
}

export async function benchGemm(opts: GemmBenchOptions = {}): Promise<object> {
  const K = nativeKernels();
  const threadCounts = opts.threads?.length ? opts.threads : [1, 2];
  const shapes = opts.shapes?.length ? opts.shapes : defaultGemmShapes();
  const seconds = opts.seconds && opts.seconds > 0 ? opts.seconds : 1;
  const oldThreads = K.getThreads();
  const results: GemmBenchResult[] = [];
  let openblas: string | undefined;
  try {
    for (const t of threadCounts) {
      K.setThreads(t);
      sleepMs(50);  // let new pool workers start before the first parallel call
      const ours = shapes.map((s) => benchOurs(K, s, seconds));
      let ob: OpenblasRun | null = null;
      if (opts.vsOpenblas) {
        ob = runOpenblas(shapes, t, seconds);
        if (ob.ok) openblas = ob.blas;
        else openblas = `unavailable: ${ob.reason}`;
      }
      shapes.forEach((s, i) => {
        const r: GemmBenchResult = { m: s.m, n: s.n, k: s.k, trans: s.trans, threads: t, gflops: round(ours[i]) };
        if (ob?.ok) {
          r.openblas_gflops = round(ob.gflops[i]);
          r.ratio = Math.round((ours[i] / ob.gflops[i]) * 1000) / 1000;
        }
        results.push(r);
      });
    }
  } finally {
    K.setThreads(oldThreads);
  }
  const out: Record<string, unknown> = {
    results,
    napi_overhead_us: Math.round(napiOverheadUs(K) * 1000) / 1000,
    isa: K.cpuInfo().isa,
    cpu: cpus()[0]?.model ?? 'unknown',
  };
  if (opts.vsOpenblas) out.openblas = openblas ?? 'unavailable: no thread counts';
  return out;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
