// The compute runtime as the layers above tensor/ see it: which kernels run, on which instruction
// set, with how many threads. Trainers and benchmarks ask here instead of reaching into backend/.
import { backend } from '../backend/index.js';

export interface ComputeInfo {
  /** 'native' (C++ kernels) or 'ref' (the TypeScript oracle). */
  backend: string;
  isa: string;
  threads: number;
}

export function computeInfo(): ComputeInfo {
  const k = backend();
  return { backend: k.name, isa: k.cpuInfo().isa, threads: k.getThreads() };
}

/** Kernel threads for this process (all JS threads share the native pool). */
export function setComputeThreads(n: number): void {
  backend().setThreads(n);
}

/** Under MOELAB_PROFILE=1, starts the kernel table afresh, e.g. after a benchmark's warm-up. */
export { restartKernelProfile } from '../backend/index.js';
