// Shared test helpers: a seeded generator, random arrays, and closeness assertions with messages
// that say where two arrays first differ.
import assert from 'node:assert/strict';

/** mulberry32: small, fast, seeded; good enough for test data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randn(n: number, seed = 1, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12), v = r();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

export function randint(n: number, hi: number, seed = 1): Int32Array {
  const r = rng(seed);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(r() * hi);
  return out;
}

/** |a-b| <= atol + rtol*|b| elementwise. */
export function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, rtol = 1e-5, atol = 1e-6, what = 'arrays'): void {
  assert.equal(a.length, b.length, `${what}: length ${a.length} vs ${b.length}`);
  let worst = -1, worstErr = 0;
  for (let i = 0; i < a.length; i++) {
    const err = Math.abs(a[i] - b[i]);
    const tol = atol + rtol * Math.abs(b[i]);
    if (!(err <= tol) && !(Number.isNaN(a[i]) && Number.isNaN(b[i])) && !(a[i] === b[i])) {
      if (worst < 0 || err / tol > worstErr) { worst = i; worstErr = err / tol; }
    }
  }
  if (worst >= 0) assert.fail(`${what}: element ${worst} differs: ${a[worst]} vs ${b[worst]} (err/tol ${worstErr.toFixed(2)})`);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
