// Worker for native_threads.test.ts: runs the kernel workload `rounds` times (optionally changing
// the pool size between calls) and posts the outputs of every round. The test runner also runs
// every file in dist/test/ on its own: on the main thread this file does nothing.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { loadNative } from '../src/backend/native.js';
import { runWorkload, type NativeAddon } from './native_workload.js';

if (!isMainThread) {
  const { seed, rounds, resizeTo } = workerData as { seed: number; rounds: number; resizeTo: number[] };
  const K = loadNative() as NativeAddon | null;
  if (!K) throw new Error('native addon not loadable in a worker');
  const results: Float32Array[][] = [];
  for (let i = 0; i < rounds; i++) {
    if (resizeTo.length) K.setThreads(resizeTo[i % resizeTo.length]);
    results.push(runWorkload(K, seed));
  }
  parentPort!.postMessage(results);
}
