// Special functions in double precision and the ranking order shared by the reference kernels (not
// kernels themselves).

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/**
 * Complementary error function in double precision (relative error ~1e-15):
 *   |z| < 2:  erf(z) = 2/sqrt(pi) z e^{-z^2} sum_n (2z^2)^n / (1*3*...*(2n+1))   (all terms positive)
 *   z >= 2:   erfc(z) = e^{-z^2}/sqrt(pi) / (z + (1/2)/(z + 1/(z + (3/2)/(z + 2/(z + ...)))))
 *   z < 0:    erfc(z) = 2 - erfc(-z)
 */
export function erfc(z: number): number {
  if (Number.isNaN(z)) return NaN;
  if (z < 0) return 2 - erfc(-z);
  if (z < 2) return 1 - erfSeries(z);
  if (z > 27) return 0;
  let f = z; // continued fraction evaluated bottom-up
  for (let k = 120; k >= 1; k--) f = z + (k / 2) / f;
  return Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
}

function erfSeries(z: number): number {
  const z2 = z * z;
  let term = 1, sum = 1;
  for (let n = 0; n < 200 && term > 1e-17 * sum; n++) {
    term *= (2 * z2) / (2 * n + 3);
    sum += term;
  }
  return TWO_OVER_SQRT_PI * z * Math.exp(-z2) * sum;
}

/** Standard normal cdf Phi(x) = 0.5 erfc(-x/sqrt2). */
export function normCdf(x: number): number {
  return 0.5 * erfc(-x * Math.SQRT1_2);
}

/** Exact GELU, 0.5x(1+erf(x/sqrt2)) = x Phi(x). */
export function geluErf(x: number): number {
  return x * normCdf(x);
}

/** d/dx of geluErf: Phi(x) + x phi(x). */
export function geluErfGrad(x: number): number {
  return normCdf(x) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
}

/** True when (a at index ia) ranks before (b at index ib): larger first, NaN largest, ties by index. */
export function ranksBefore(a: number, ia: number, b: number, ib: number): boolean {
  const an = Number.isNaN(a), bn = Number.isNaN(b);
  if (an || bn) return an && (!bn || ia < ib);
  return a > b || (a === b && ia < ib);
}

/** lowbias32 integer hash: x ^= x>>>16; x *= 0x7feb352d; x ^= x>>>15; x *= 0x846ca68b; x ^= x>>>16 (mod 2^32). */
export function hash32(x: number): number {
  x >>>= 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}
