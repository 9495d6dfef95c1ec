// Server-side downsampling so a chart never receives more than ~1000 points per series, whatever
// the run's length. Largest-Triangle-Three-Buckets (Steinarsson 2013): keep the first and last
// point; split the rest into n-2 buckets of equal count; from each bucket keep the point a that
// maximises the triangle area |(x_p - x_c)(y_a - y_p) - (x_p - x_a)(y_c - y_p)| / 2 with p the point
// kept in the previous bucket and c the mean of the next bucket. Spikes (a loss blow-up) survive,
// unlike with striding or averaging.

/** Indices (ascending) of at most `n` points of (xs, ys) chosen by LTTB; all of them when there are <= n. */
export function lttbIndices(xs: ArrayLike<number>, ys: ArrayLike<number>, n: number): number[] {
  const len = xs.length;
  if (n >= len || len <= 2) return Array.from({ length: len }, (_, i) => i);
  if (n < 3) return n <= 1 ? [0] : [0, len - 1];
  const out = [0];
  const every = (len - 2) / (n - 2);
  let a = 0;
  for (let b = 0; b < n - 2; b++) {
    // next bucket's mean is the third corner of the triangle
    const nextStart = Math.floor((b + 1) * every) + 1;
    const nextEnd = Math.min(len, Math.floor((b + 2) * every) + 1);
    let cx = 0, cy = 0;
    for (let i = nextStart; i < nextEnd; i++) {
      cx += xs[i];
      cy += ys[i];
    }
    const cn = Math.max(1, nextEnd - nextStart);
    cx /= cn;
    cy /= cn;
    const start = Math.floor(b * every) + 1;
    const end = Math.floor((b + 1) * every) + 1;
    let best = start, bestArea = -1;
    for (let i = start; i < end; i++) {
      const area = Math.abs((xs[a] - cx) * (ys[i] - ys[a]) - (xs[a] - xs[i]) * (cy - ys[a]));
      if (area > bestArea) {
        bestArea = area;
        best = i;
      }
    }
    out.push(best);
    a = best;
  }
  out.push(len - 1);
  return out;
}

/**
 * Indices of the points with from <= x <= to (xs ascending), widened by one point on each side so
 * a zoomed line runs to the chart's edges. Null bounds are open.
 */
export function rangeIndices(xs: ArrayLike<number>, from: number | null, to: number | null): [number, number] {
  let lo = 0, hi = xs.length;
  if (from !== null) {
    while (lo < hi && xs[lo] < from) lo++;
    lo = Math.max(0, lo - 1);
  }
  if (to !== null) {
    let h = lo;
    while (h < xs.length && xs[h] <= to) h++;
    hi = Math.min(xs.length, h + 1);
  }
  return [lo, hi];
}
