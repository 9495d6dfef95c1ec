// Reference fused AdamW step (PyTorch semantics), in double precision per element.
import type { F32 } from '../kernels.js';

/**
 * For i < p.length:
 *   m = beta1*m + (1-beta1)*g;  v = beta2*v + (1-beta2)*g^2   (stored as float32, then used)
 *   p = p*(1 - lr*wd) - (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps)
 */
export function adamw(p: F32, g: F32, m: F32, v: F32, lr: number, beta1: number, beta2: number, eps: number, wd: number,
  bc1: number, bc2: number): void {
  const n = p.length;
  for (const [name, a] of [['g', g], ['m', m], ['v', v]] as const) {
    if (a.length < n) throw new RangeError(`adamw: '${name}' has ${a.length} elements, needs ${n}`);
  }
  if (!(bc1 > 0 && bc2 > 0)) throw new RangeError(`adamw: bias corrections must be > 0, got ${bc1}, ${bc2}`);
  const decay = 1 - lr * wd, step = lr / bc1, sbc2 = Math.sqrt(bc2);
  for (let i = 0; i < n; i++) {
    m[i] = beta1 * m[i] + (1 - beta1) * g[i];
    v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
    p[i] = p[i] * decay - (step * m[i]) / (Math.sqrt(v[i]) / sbc2 + eps);
  }
}
