// The native addon used from several worker_threads at once: every worker loads the addon, runs a
// mix of pooled kernels (GEMM, elementwise, reduce, attention, PEER, gather) repeatedly, one of them
// resizing the pool between calls, and every output must equal the single-threaded run. Before the
// pool serialised its submitters this segfaulted or hung (issue 9, item 1). Equal means bit for bit:
// the thread count changes no result (thread_invariance.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { loadNative } from '../src/backend/native.js';
import { runWorkload, type NativeAddon } from './native_workload.js';

const K = loadNative() as NativeAddon | null;
const WORKER = new URL('./native_threads_worker.js', import.meta.url);

function runWorker(seed: number, rounds: number, resizeTo: number[]): Promise<Float32Array[][]> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { workerData: { seed, rounds, resizeTo } });
    const timer = setTimeout(() => { void w.terminate(); reject(new Error(`worker ${seed} hung`)); }, 60_000);
    w.once('message', (m: Float32Array[][]) => { clearTimeout(timer); resolve(m); });
    w.once('error', (e) => { clearTimeout(timer); reject(e); });
    w.once('exit', (code) => { if (code !== 0) { clearTimeout(timer); reject(new Error(`worker ${seed} exited with ${code}`)); } });
  });
}

test('kernels called from 4 worker threads at once (one resizing the pool) equal the single-thread results', { skip: !K }, async () => {
  const nat = K!;
  const before = nat.getThreads();
  try {
    nat.setThreads(1);
    const seeds = [11, 22, 33, 44];
    const expected = seeds.map((s) => runWorkload(nat, s));
    nat.setThreads(Math.max(2, before));
    const rounds = 6;
    const got = await Promise.all(seeds.map((s, i) => runWorker(s, rounds, i === 3 ? [1, 3, 2, 4] : [])));
    for (let w = 0; w < seeds.length; w++)
      for (let r = 0; r < rounds; r++)
        for (let j = 0; j < expected[w].length; j++)
          assert.ok(Buffer.from(got[w][r][j].buffer).equals(Buffer.from(expected[w][j].buffer)), `worker ${w} round ${r} output ${j}: not the single-thread bits`);
  } finally {
    nat.setThreads(before);
  }
});

test('the main thread keeps computing correctly while workers hammer the pool', { skip: !K }, async () => {
  const nat = K!;
  const before = nat.getThreads();
  try {
    nat.setThreads(Math.max(2, before));
    const expected = runWorkload(nat, 5);
    const workers = [runWorker(6, 4, [2, 1]), runWorker(7, 4, [])];
    for (let r = 0; r < 4; r++) {
      const got = runWorkload(nat, 5);
      for (let j = 0; j < expected.length; j++) assert.ok(Buffer.from(got[j].buffer).equals(Buffer.from(expected[j].buffer)), `main round ${r} output ${j}: not the same bits`);
      await new Promise((res) => setImmediate(res));
    }
    await Promise.all(workers);
  } finally {
    nat.setThreads(before);
  }
});
