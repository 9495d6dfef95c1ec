/**
 * Minimum of a function of one variable on [lo, hi]: a uniform scan (so a non-convex f still gives
 * its global minimum to within the scan spacing) refined by golden-section search between the
 * best scan point's neighbours. `atBoundary` says the minimum sits on an end of the interval,
 * where the true optimum may lie outside it.
 */
export interface Min1d {
  x: number;
  value: number;
  atBoundary: boolean;
}

export function minimize1d(f: (x: number) => number, lo: number, hi: number, scan = 200, tol = 1e-10): Min1d {
  if (!(hi > lo)) throw new Error(`minimize1d: empty interval [${lo}, ${hi}]`);
  let bestI = 0, bestV = Infinity;
  const at = (i: number) => lo + ((hi - lo) * i) / scan;
  for (let i = 0; i <= scan; i++) {
    const v = f(at(i));
    if (v < bestV) { bestV = v; bestI = i; }
  }
  if (!Number.isFinite(bestV)) return { x: NaN, value: NaN, atBoundary: false };
  let a = at(Math.max(0, bestI - 1)), b = at(Math.min(scan, bestI + 1));
  const g = (Math.sqrt(5) - 1) / 2;
  let c = b - g * (b - a), d = a + g * (b - a);
  let fc = f(c), fd = f(d);
  while (b - a > tol * Math.max(1, Math.abs(a) + Math.abs(b))) {
    if (fc < fd) { b = d; d = c; fd = fc; c = b - g * (b - a); fc = f(c); }
    else { a = c; c = d; fc = fd; d = a + g * (b - a); fd = f(d); }
  }
  let x = (a + b) / 2, value = f(x);
  // Keep the scan's point when refinement did not beat it (e.g. a kink at an end).
  if (!(value <= bestV)) { x = at(bestI); value = bestV; }
  const span = (hi - lo) / scan;
  return { x, value, atBoundary: x - lo < span * 1e-3 || hi - x < span * 1e-3 };
}
