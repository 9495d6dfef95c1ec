// Picks the kernels the tensor layer runs on: the native addon unless MOELAB_BACKEND=ref asks for
// the pure-TypeScript reference (or the addon is missing and MOELAB_BACKEND is not 'native').
import type { Kernels } from './kernels.js';
import { loadNative, nativeLoadError } from './native.js';
import { ref } from './ref/index.js';
import { profiled } from './profile.js';

export * from './kernels.js';
export { ref };

let active: Kernels | null = null;

export function backend(): Kernels {
  if (active) return active;
  active = pick();
  if (process.env.MOELAB_PROFILE) active = profiled(active);
  return active;
}

function pick(): Kernels {
  const want = process.env.MOELAB_BACKEND ?? 'auto';
  if (want === 'ref') return ref;
  const nat = loadNative();
  if (nat) return nat;
  if (want === 'native') throw nativeLoadError() ?? new Error('moelab: native backend unavailable');
  return ref;
}

/** Swap the active backend (tests compare native and reference through the same tensor code). */
export function setBackend(k: Kernels): void {
  active = k;
}

export function nativeKernels(): Kernels {
  const nat = loadNative();
  if (!nat) throw nativeLoadError() ?? new Error('moelab: native backend unavailable');
  return nat;
}
