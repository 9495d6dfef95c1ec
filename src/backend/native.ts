// The native addon's TS face. The addon exports one function per Kernels method, with the same
// name and argument order, so this file only loads it and records where it came from.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Kernels } from './kernels.js';

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('moelab: cannot find package root');
    dir = up;
  }
  return dir;
}

let cached: Kernels | null = null;
let loadError: Error | null = null;

/**
 * Loads build/Release/moelab.node once (MOELAB_ADDON_PATH names another build, e.g. the sanitizer
 * one in build-asan/); returns null (and remembers why) if it is missing.
 */
export function loadNative(): Kernels | null {
  if (cached || loadError) return cached;
  const path = process.env.MOELAB_ADDON_PATH || join(packageRoot(), 'build', 'Release', 'moelab.node');
  try {
    const require = createRequire(import.meta.url);
    const addon = require(path) as Omit<Kernels, 'name'>;
    cached = Object.assign(Object.create(null), addon, { name: 'native' as const }) as Kernels;
  } catch (e) {
    loadError = new Error(`moelab: native addon not loadable at ${path} (run \`npm install\` to build it): ${(e as Error).message}`);
  }
  return cached;
}

export function nativeLoadError(): Error | null {
  return loadError;
}
