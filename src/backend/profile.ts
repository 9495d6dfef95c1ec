// MOELAB_PROFILE=1: wraps every kernel of the contract (KERNEL_NAMES, PEER included) to count calls
// and wall time, and prints a table at exit. For finding where a training step goes; costs a clock
// read per kernel call.
import { KERNEL_NAMES, type Kernels } from './kernels.js';

export interface KernelStat {
  calls: number;
  ms: number;
}
export type KernelStats = Map<string, KernelStat>;

/** k with every kernel wrapped to add its calls and time to `stats` (one entry per kernel name). */
export function profiled(k: Kernels, stats: KernelStats = new Map()): Kernels {
  const out: Record<string, unknown> = { name: k.name };
  for (const key of KERNEL_NAMES) {
    const f = k[key] as (...a: unknown[]) => unknown;
    if (typeof f !== 'function') throw new TypeError(`profiled: kernels '${k.name}' lack '${key}'`);
    const s = { calls: 0, ms: 0 };
    stats.set(key, s);
    out[key] = (...args: unknown[]) => {
      const t = performance.now();
      try {
        return f(...args);
      } finally {
        s.ms += performance.now() - t;
        s.calls++;
      }
    };
  }
  return out as unknown as Kernels;
}

/** Zeroes every counter (a benchmark calls it after its warm-up so the table covers the timed steps). */
export function resetProfile(stats: KernelStats): void {
  for (const s of stats.values()) {
    s.calls = 0;
    s.ms = 0;
  }
}

/** Prints the kernels that ran, slowest first, to stderr when the process exits. */
export function reportProfileAtExit(name: string, stats: KernelStats): void {
  process.on('exit', () => {
    const rows = [...stats].filter(([, s]) => s.calls).sort((a, b) => b[1].ms - a[1].ms);
    const total = rows.reduce((t, [, s]) => t + s.ms, 0);
    process.stderr.write(`kernel profile (${name}): ${total.toFixed(1)} ms in kernels\n`);
    for (const [kname, s] of rows) {
      process.stderr.write(`  ${kname.padEnd(22)} ${s.ms.toFixed(1).padStart(10)} ms ${String(s.calls).padStart(8)} calls ${((100 * s.ms) / total).toFixed(1).padStart(6)}%\n`);
    }
  });
}
