// MOELAB_PROFILE=1: wraps every kernel to count calls and wall time, and prints a table at exit.
// For finding where a training step goes; costs a clock read per kernel call.
import type { Kernels } from './kernels.js';

export function profiled(k: Kernels): Kernels {
  const stats = new Map<string, { calls: number; ms: number }>();
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(k) as (keyof Kernels)[]) {
    const f = k[key];
    if (typeof f !== 'function') {
      out[key] = f;
      continue;
    }
    const s = { calls: 0, ms: 0 };
    stats.set(key, s);
    out[key] = (...args: unknown[]) => {
      const t = performance.now();
      const r = (f as (...a: unknown[]) => unknown)(...args);
      s.ms += performance.now() - t;
      s.calls++;
      return r;
    };
  }
  process.on('exit', () => {
    const rows = [...stats].filter(([, s]) => s.calls).sort((a, b) => b[1].ms - a[1].ms);
    const total = rows.reduce((t, [, s]) => t + s.ms, 0);
    process.stderr.write(`kernel profile (${k.name}): ${total.toFixed(1)} ms in kernels\n`);
    for (const [name, s] of rows) {
      process.stderr.write(`  ${name.padEnd(22)} ${s.ms.toFixed(1).padStart(10)} ms ${String(s.calls).padStart(8)} calls ${((100 * s.ms) / total).toFixed(1).padStart(6)}%\n`);
    }
  });
  return out as unknown as Kernels;
}
