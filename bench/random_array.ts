/** n floats in [-0.5, 0.5) from xorshift32 of `seed`: the same operands in every run and bench. */
export function randomArray(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    a[i] = x / 4294967296 - 0.5;
  }
  return a;
}
