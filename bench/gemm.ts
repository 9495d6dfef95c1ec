// SGEMM benchmark: GFLOP/s of the native gemm on the shapes the models use, plain and in the
// transposed forms backward uses, at each thread count; optionally against numpy/OpenBLAS timed
// in the same run (bench/openblas_sgemm.py). `moelab bench gemm` prints the returned object.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { nativeKernels, type Kernels } from '../src/backend/index.js';
import { randomArray } from './random_array.js';

export type Trans = 'NN' | 'NT' | 'TN';
export interface GemmShape { m: number; n: number; k: number; trans: Trans }

export interface GemmBenchOptions {
  threads?: number[];
  shapes?: GemmShape[];
  vsOpenblas?: boolean;
  /** timing budget per case and library, in seconds (default 1) */
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

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Our gemm on one shape, with operands allocated once. */
class OurGemm {
  private readonly run: () => void;

  constructor(K: Kernels, s: GemmShape) {
    const { m, n, k, trans } = s;
    const tA = trans === 'TN', tB = trans === 'NT';
    const a = randomArray(m * k, 1), b = randomArray(k * n, 2), c = new Float32Array(m * n);
    const lda = tA ? m : k, ldb = tB ? k : n;
    this.run = () => K.gemm(tA, tB, m, n, k, 1, a, lda, b, ldb, 0, c, n, null);
    this.run();
  }

  /** Seconds per call: a short warm-up, then repeats for about `seconds` (at least 3). */
  time(seconds: number): number[] {
    const warmEnd = performance.now() + 100 * seconds;
    do this.run(); while (performance.now() < warmEnd);
    const times: number[] = [];
    const end = performance.now() + 1000 * seconds;
    while (times.length < 3 || (performance.now() < end && times.length < 10000)) {
      const t0 = performance.now();
      this.run();
      times.push((performance.now() - t0) / 1000);
    }
    return times;
  }
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

/** A numpy/OpenBLAS timing worker (bench/openblas_sgemm.py) fixed to one thread count. */
class BlasWorker {
  blas = '';
  private lines: string[] = [];
  private waiters: Array<(line: string | null) => void> = [];
  private closed = false;
  private stderr = '';

  private constructor(private readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (l) => this.push(l)).on('close', () => this.end());
    proc.stderr!.on('data', (d) => { this.stderr = (this.stderr + String(d)).slice(-4000); });
    proc.on('error', (e) => { this.stderr += e.message; this.end(); });
  }

  /** Starts the worker; resolves to a reason string when python/numpy/OpenBLAS are not usable. */
  static async start(threads: number): Promise<BlasWorker | string> {
    if (!existsSync(PYTHON)) return `${PYTHON} not found`;
    const script = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'openblas_sgemm.py');
    if (!existsSync(script)) return `${script} not found`;
    const proc = spawn(PYTHON, [script], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: {
        ...process.env, LD_LIBRARY_PATH: OPENBLAS_LIB,
        OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads),
      },
    });
    const w = new BlasWorker(proc);
    const first = await w.next();
    if (first === null) return w.failure();
    try {
      const hello = JSON.parse(first) as { ready: boolean; blas: string };
      w.blas = hello.blas;
    } catch {
      w.close();
      return `unexpected output from ${script}: ${first.slice(0, 200)}`;
    }
    if (!w.blas.includes('openblas')) {
      w.close();
      return `numpy is not using OpenBLAS (${w.blas})`;
    }
    return w;
  }

  /** Seconds per call of numpy matmul on this shape, timed for about `seconds`. */
  async time(s: GemmShape, seconds: number): Promise<number[]> {
    this.proc.stdin!.write(JSON.stringify({ m: s.m, n: s.n, k: s.k, trans: s.trans, seconds }) + '\n');
    const line = await this.next();
    if (line === null) throw new Error(`openblas worker: ${this.failure()}`);
    return (JSON.parse(line) as { times: number[] }).times;
  }

  close(): void {
    if (!this.closed) this.proc.stdin!.end();
    this.proc.kill();
  }

  private push(line: string): void {
    const w = this.waiters.shift();
    if (w) w(line);
    else this.lines.push(line);
  }

  private end(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w(null);
  }

  private next(): Promise<string | null> {
    if (this.lines.length) return Promise.resolve(this.lines.shift()!);
    if (this.closed) return Promise.resolve(null);
    return new Promise((res) => this.waiters.push(res));
  }

  private failure(): string {
    const last = this.stderr.trim().split('\n').slice(-1)[0];
    return (last || 'python worker exited').slice(0, 300);
  }
}

/**
 * Runs the benchmark. For every thread count and shape, ours and OpenBLAS (when asked) are timed
 * in alternating rounds so both see the same machine load; each reports the median per-call time
 * over all its rounds, as GFLOP/s (2mnk / time).
 */
export async function benchGemm(opts: GemmBenchOptions = {}): Promise<object> {
  const K = nativeKernels();
  const threadCounts = opts.threads?.length ? opts.threads : [1, 2];
  const shapes = opts.shapes?.length ? opts.shapes : defaultGemmShapes();
  const seconds = opts.seconds && opts.seconds > 0 ? opts.seconds : 1;
  const rounds = 5;
  const oldThreads = K.getThreads();
  const results: GemmBenchResult[] = [];
  let openblas: string | undefined;
  try {
    for (const t of threadCounts) {
      K.setThreads(t);
      sleepMs(50);  // let new pool workers start before the first parallel call
      let worker: BlasWorker | null = null;
      if (opts.vsOpenblas && !openblas?.startsWith('unavailable')) {
        const w = await BlasWorker.start(t);
        if (typeof w === 'string') openblas = `unavailable: ${w}`;
        else {
          worker = w;
          openblas = w.blas;
        }
      }
      try {
        for (const s of shapes) {
          const ours = new OurGemm(K, s);
          const mine: number[] = [], theirs: number[] = [];
          for (let r = 0; r < rounds; r++) {
            mine.push(...ours.time(seconds / rounds));
            if (worker) theirs.push(...(await worker.time(s, seconds / rounds)));
          }
          const flop = 2 * s.m * s.n * s.k;
          const gf = flop / median(mine) / 1e9;
          const row: GemmBenchResult = { m: s.m, n: s.n, k: s.k, trans: s.trans, threads: t, gflops: round(gf) };
          if (theirs.length) {
            const ob = flop / median(theirs) / 1e9;
            row.openblas_gflops = round(ob);
            row.ratio = Math.round((gf / ob) * 1000) / 1000;
          }
          results.push(row);
        }
      } finally {
        worker?.close();
      }
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
