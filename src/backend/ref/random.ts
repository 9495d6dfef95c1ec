/** Counter-based random fills (the same numbers as the native kernels, for any thread count). */
import type { F32 } from '../kernels.js';
import { hash32 as lowbias32 } from './math.js';

/**
 * out[i] = mean + std * sqrt(-2 ln u1) cos(2 pi u2), u1 = (h(2i) + 0.5) / 2^32,
 * u2 = (h(2i+1) + 0.5) / 2^32, h(j) = lowbias32(lowbias32(j) ^ seed) (all uint32).
 */
export function randn(out: F32, seed: number, mean: number, std: number): void {
  for (let i = 0; i < out.length; i++) {
    const j = (2 * i) >>> 0;
    const u1 = (lowbias32((lowbias32(j) ^ seed) >>> 0) + 0.5) / 4294967296;
    const u2 = (lowbias32((lowbias32((j + 1) >>> 0) ^ seed) >>> 0) + 0.5) / 4294967296;
    out[i] = mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
}
