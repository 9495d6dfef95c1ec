// Picks the kernels the tensor layer runs on: the native addon unless MOELAB_BACKEND=ref asks for
// the pure-TypeScript reference (or the addon is missing and MOELAB_BACKEND is not 'native'). An
// addon that loads but lacks kernels is refused loudly in every mode: falling back to the slow
// reference would hide a stale build.
import type { Kernels } from './kernels.js';
import { loadNative, nativeLoadError, IncompleteAddonError } from './native.js';
import { ref } from './ref/index.js';
import { profiled, reportProfileAtExit, resetProfile, type KernelStats } from './profile.js';

export * from './kernels.js';
export { ref };
export { kernelsFromAddon, IncompleteAddonError } from './native.js';
export { profiled, type KernelStats } from './profile.js';

let active: Kernels | null = null;
let profileStats: KernelStats | null = null;

export function backend(): Kernels {
  if (active) return active;
  active = pick();
  if (process.env.MOELAB_PROFILE) {
    profileStats = new Map();
    active = profiled(active, profileStats);
    reportProfileAtExit(active.name, profileStats);
  }
  return active;
}

/** Under MOELAB_PROFILE, starts the kernel table afresh (no-op otherwise). */
export function restartKernelProfile(): void {
  if (profileStats) resetProfile(profileStats);
}

function pick(): Kernels {
  const want = process.env.MOELAB_BACKEND ?? 'auto';
  if (want === 'ref') return ref;
  const nat = loadNative();
  if (nat) return nat;
  const err = nativeLoadError();
  if (want === 'native' || err instanceof IncompleteAddonError) throw err ?? new Error('moelab: native backend unavailable');
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
