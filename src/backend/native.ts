// The native addon's TS face. The addon exports one function per Kernels method, with the same
// name and argument order, so this file loads it, checks that it exports the whole contract, and
// records where it came from.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { KERNEL_NAMES, type Kernels } from './kernels.js';
import { OP_CODES } from './op_codes.js';
import { packageRoot } from '../util/package.js';

/** Thrown when an addon loads but lacks kernels the contract lists (a stale or partial build). */
export class IncompleteAddonError extends Error {
  constructor(readonly where: string, readonly missing: readonly string[]) {
    super(`moelab: the native addon at ${where} does not export ${missing.length} kernel(s) the contract lists: ` +
      `${missing.join(', ')}. It is older or newer than this code: rebuild it (\`npm install\` or scripts/build-native.sh).`);
    this.name = 'IncompleteAddonError';
  }
}

/**
 * The Kernels face of a loaded addon object: every name in KERNEL_NAMES must be a function on it,
 * otherwise IncompleteAddonError names the missing ones. Extra exports are ignored.
 */
export function kernelsFromAddon(addon: Record<string, unknown>, where: string): Kernels {
  const missing = [...KERNEL_NAMES, 'opCodes'].filter((n) => typeof addon[n] !== 'function');
  if (missing.length) throw new IncompleteAddonError(where, missing);
  // op codes cross the boundary as numbers: a build whose enums differ would run the wrong op
  const codes = JSON.stringify((addon.opCodes as () => unknown)());
  if (codes !== JSON.stringify(OP_CODES)) {
    throw new Error(`moelab: the native addon at ${where} numbers its ops differently from this moelab (${codes} vs ` +
      `${JSON.stringify(OP_CODES)}): it was built from other sources; rebuild it with \`npm install\``);
  }
  const out: Record<string, unknown> = { name: 'native' };
  for (const n of KERNEL_NAMES) out[n] = addon[n];
  return out as unknown as Kernels;
}

let cached: Kernels | null = null;
let loadError: Error | null = null;

/**
 * Loads build/Release/moelab.node once (MOELAB_ADDON_PATH names another build, e.g. the sanitizer
 * one in build-asan/) and checks it against the contract; returns null (and
 * remembers why) if it is missing, cannot be loaded or is incomplete.
 */
export function loadNative(): Kernels | null {
  if (cached || loadError) return cached;
  const path = process.env.MOELAB_ADDON_PATH || join(packageRoot(), 'build', 'Release', 'moelab.node');
  let addon: Record<string, unknown>;
  try {
    const require = createRequire(import.meta.url);
    addon = require(path) as Record<string, unknown>;
  } catch (e) {
    loadError = new Error(`moelab: native addon not loadable at ${path} (run \`npm install\` to build it): ${(e as Error).message}`);
    return null;
  }
  try {
    cached = kernelsFromAddon(addon, path);
  } catch (e) {
    loadError = e as Error;
  }
  return cached;
}

export function nativeLoadError(): Error | null {
  return loadError;
}
