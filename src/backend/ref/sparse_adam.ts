// Reference lazy (sparse) Adam on rows of a table, moments in float32 or bfloat16 bits.
// Contract in ../kernels/peer.ts.
import type { F32, I32, U16 } from '../kernels.js';
import { need, dim, len } from './check.js';
import { bf16BitsToF32, f32ToBf16Bits } from '../../io/safetensors.js';
import { hash32 as lowbias32 } from './math.js';

const bits = new DataView(new ArrayBuffer(4));

/**
 * float32 -> bfloat16 bits with stochastic rounding: adds lowbias32(key + c) & 0xffff to the
 * float's bits and truncates (Inf and NaN round to nearest). Contract in ../kernels/peer.ts.
 */
function f32ToBf16Stochastic(x: number, key: number, c: number): number {
  bits.setFloat32(0, x);
  const u = bits.getUint32(0);
  if ((u & 0x7f800000) >>> 0 === 0x7f800000) return f32ToBf16Bits(x);
  return ((u + (lowbias32((key + c) >>> 0) & 0xffff)) >>> 16) & 0xffff;
}

/**
 * Lazy (sparse) Adam, PyTorch SparseAdam semantics, on rows ids[0..U) (strictly increasing) of
 * p [N, d] with coalesced gradient rows g [U, d]; m, v are [N, d] in float32 or bfloat16 bits:
 *   m += (1-beta1)(g - m);  v += (1-beta2)(g^2 - v);  p -= lr sqrt(bc2)/bc1 * m / (sqrt(v) + eps)
 */
export function sparseAdam(U: number, d: number, ids: I32, g: F32, p: F32 | U16, m: F32 | U16, v: F32 | U16,
  lr: number, beta1: number, beta2: number, eps: number, bc1: number, bc2: number, seed?: number): void {
  const fn = 'sparseAdam';
  dim(fn, 'U', U); dim(fn, 'd', d, 1);
  len(fn, 'ids', ids, U); len(fn, 'g', g, U * d);
  const N = Math.floor(p.length / d);
  const bf = m instanceof Uint16Array;
  if (bf !== (v instanceof Uint16Array)) throw new TypeError(`${fn}: 'm' and 'v' must have the same type`);
  len(fn, 'm', m, N * d); len(fn, 'v', v, N * d);
  need(bc1 > 0 && bc2 > 0, fn, `bias corrections must be > 0, got ${bc1}, ${bc2}`);
  const pb = p instanceof Uint16Array;
  if (pb && seed === undefined) throw new TypeError(`${fn}: a bfloat16 table 'p' needs the rounding seed (argument 13)`);
  if (pb) need(Number.isInteger(seed) && seed! >= 0 && seed! < 2 ** 32, fn, `seed must be a uint32, got ${seed}`);
  for (let i = 0; i < U; i++) {
    need(ids[i] >= 0 && ids[i] < N, fn, `id ${ids[i]} out of range [0, ${N})`);
    need(i === 0 || ids[i] > ids[i - 1], fn, `ids must be strictly increasing (ids[${i}] = ${ids[i]})`);
  }
  const step = (lr * Math.sqrt(bc2)) / bc1;
  for (let i = 0; i < U; i++) {
    const row = ids[i] * d;
    const key = pb ? lowbias32((seed! ^ lowbias32(ids[i])) >>> 0) : 0;
    for (let c = 0; c < d; c++) {
      const gi = g[i * d + c], o = row + c;
      const m0 = bf ? bf16BitsToF32(m[o]) : m[o], v0 = bf ? bf16BitsToF32(v[o]) : v[o];
      const m1 = Math.fround(m0 + (1 - beta1) * (gi - m0));
      const v1 = Math.fround(v0 + (1 - beta2) * (gi * gi - v0));
      if (bf) { m[o] = f32ToBf16Bits(m1); v[o] = f32ToBf16Bits(v1); } else { m[o] = m1; v[o] = v1; }
      if (pb) p[o] = f32ToBf16Stochastic(Math.fround(bf16BitsToF32(p[o]) - Math.fround(Math.fround(step * m1) / Math.fround(Math.sqrt(v1) + eps))), key, c);
      else p[o] = p[o] - (step * m1) / (Math.sqrt(v1) + eps);
    }
  }
}

/** The reference cannot advise the OS about memory: validates the argument and returns false. */
export function peerAdviseHugePages(a: F32 | U16): boolean {
  if (!(a instanceof Float32Array || a instanceof Uint16Array)) throw new TypeError('peerAdviseHugePages: expected a Float32Array or Uint16Array');
  return false;
}
