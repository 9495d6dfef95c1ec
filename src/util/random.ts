// Seeded pseudo-random numbers for everything in moelab that needs randomness (weight init,
// data sampling, dropout, router jitter). Generator: xoshiro128** (Blackman & Vigna 2018), 128
// bits of state, period 2^128 - 1, seeded through splitmix32 so that nearby seeds give unrelated
// streams. The whole state (including the cached second Box-Muller normal) is a small JSON-safe
// object, so a resumed run continues the exact same sequence.

/** JSON-serialisable generator state. `s` holds four uint32 words; `spare` is a cached normal. */
export interface RngState {
  s: [number, number, number, number];
  spare: number | null;
}

const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;

/** splitmix32 step: returns [next state, output]. Used to expand a seed into 128 bits. */
function splitmix32(x: number): [number, number] {
  x = (x + 0x9e3779b9) >>> 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return [x, (z ^ (z >>> 16)) >>> 0];
}

/** Mix a non-negative integer seed (up to 2^53) and a stream id into one uint32. */
export function mixSeed(seed: number, stream: number): number {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative safe integer, got ${seed}`);
  if (!Number.isSafeInteger(stream) || stream < 0) throw new RangeError(`stream must be a non-negative safe integer, got ${stream}`);
  let h = 0x243f6a88;
  for (const v of [seed % TWO_POW_32, Math.floor(seed / TWO_POW_32), stream % TWO_POW_32, Math.floor(stream / TWO_POW_32)]) {
    h = Math.imul(h ^ v, 0x9e3779b1) >>> 0;
    h = (h ^ (h >>> 15)) >>> 0;
  }
  return h;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | null = null;

  /**
   * A generator for `seed` (non-negative integer). `stream` selects an independent sequence for the
   * same seed, e.g. `new Rng(seed, 1)` for data sampling and `new Rng(seed, 2)` for init.
   */
  constructor(seed = 0, stream = 0) {
    let x = mixSeed(seed, stream);
    const w: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [nx, out] = splitmix32(x);
      x = nx;
      w.push(out);
    }
    if ((w[0] | w[1] | w[2] | w[3]) === 0) w[0] = 1; // the all-zero state is a fixed point
    [this.a, this.b, this.c, this.d] = w;
  }

  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.setState(state);
    return r;
  }

  getState(): RngState {
    return { s: [this.a, this.b, this.c, this.d], spare: this.spare };
  }

  setState(state: RngState): void {
    const s = state?.s;
    if (!Array.isArray(s) || s.length !== 4 || !s.every((v) => Number.isInteger(v) && v >= 0 && v < TWO_POW_32)) {
      throw new TypeError(`invalid RNG state: expected {s: [4 uint32], spare}, got ${JSON.stringify(state)}`);
    }
    if ((s[0] | s[1] | s[2] | s[3]) === 0) throw new TypeError('invalid RNG state: all-zero xoshiro state');
    if (state.spare !== null && typeof state.spare !== 'number') throw new TypeError('invalid RNG state: spare must be a number or null');
    [this.a, this.b, this.c, this.d] = s;
    this.spare = state.spare;
  }

  /** Next raw uint32 (xoshiro128**). */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    this.a >>>= 0; this.b >>>= 0; this.c >>>= 0; this.d >>>= 0;
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / TWO_POW_53;
  }

  /** Uniform integer in [0, n), unbiased. n must be a positive safe integer. */
  int(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`Rng.int: n must be a positive integer, got ${n}`);
    if (n <= TWO_POW_32) {
      // rejection sampling on 32 bits: accept u < limit, a multiple of n
      const limit = TWO_POW_32 - (TWO_POW_32 % n);
      for (;;) {
        const u = this.nextU32();
        if (u < limit) return u % n;
      }
    }
    for (;;) {
      const v = Math.floor(this.uniform() * n);
      if (v < n) return v;
    }
  }

  /** Standard normal (Box-Muller; the second value of each pair is cached in the state). */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    const u1 = 1 - this.uniform(); // (0, 1]: log is finite
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const th = 2 * Math.PI * u2;
    this.spare = r * Math.sin(th);
    return r * Math.cos(th);
  }

  /** Fill `out` with N(mean, std^2) samples. */
  fillNormal<T extends Float32Array | Float64Array>(out: T, mean = 0, std = 1): T {
    for (let i = 0; i < out.length; i++) out[i] = mean + std * this.normal();
    return out;
  }

  /** Fill `out` with uniform samples in [lo, hi). */
  fillUniform<T extends Float32Array | Float64Array>(out: T, lo = 0, hi = 1): T {
    const w = hi - lo;
    for (let i = 0; i < out.length; i++) out[i] = lo + w * this.uniform();
    return out;
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T extends { length: number; [i: number]: any }>(arr: T): T {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = arr[i];
      arr[i] = arr[j];
      arr[j] = t;
    }
    return arr;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
