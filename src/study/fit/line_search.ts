/**
 * Strong-Wolfe line search (Nocedal & Wright, Numerical Optimization, 2nd ed., Algorithms 3.5 and
 * 3.6, with the safeguarded cubic step of eq. 3.59). Finds a step a along direction d with
 *   f(x + a d) <= f(x) + c1 a f'(0)        (sufficient decrease)
 *   |f'(a)|    <= c2 |f'(0)|               (curvature)
 * A step that only meets sufficient decrease is returned when the bracket collapses, because a
 * decrease is still progress for L-BFGS (which then skips the memory update if s'y <= 0).
 */

export interface Evaluated {
  a: number;
  value: number;
  grad: Float64Array;
  /** Directional derivative grad . d at this step. */
  slope: number;
}

export interface LineSearchOptions {
  c1: number;
  c2: number;
  maxEvaluations: number;
}

export type StepFunction = (a: number) => Evaluated;

/** Minimiser of the cubic through (a0, f0, g0) and (a1, f1, g1), or NaN when it has none. */
function cubicMin(a0: number, f0: number, g0: number, a1: number, f1: number, g1: number): number {
  const d1 = g0 + g1 - (3 * (f0 - f1)) / (a0 - a1);
  const disc = d1 * d1 - g0 * g1;
  if (!(disc >= 0)) return NaN;
  const d2 = Math.sign(a1 - a0) * Math.sqrt(disc);
  return a1 - ((a1 - a0) * (g1 + d2 - d1)) / (g1 - g0 + 2 * d2);
}

/** Returns the accepted step and the number of function evaluations, or null when none decreases f. */
export function strongWolfe(
  step: StepFunction,
  f0: number,
  slope0: number,
  a0: number,
  o: LineSearchOptions,
): { point: Evaluated; evaluations: number } | null {
  let evaluations = 0;
  const evalAt = (a: number): Evaluated => { evaluations++; return step(a); };
  const armijo = (p: Evaluated) => Number.isFinite(p.value) && p.value <= f0 + o.c1 * p.a * slope0;
  const curvature = (p: Evaluated) => Math.abs(p.slope) <= -o.c2 * slope0;

  const zoom = (lo: Evaluated, hi: Evaluated): Evaluated | null => {
    while (evaluations < o.maxEvaluations) {
      const lower = Math.min(lo.a, hi.a), upper = Math.max(lo.a, hi.a), width = upper - lower;
      if (width <= 1e-16 * Math.max(1, upper)) break;
      let a = Number.isFinite(hi.value) ? cubicMin(lo.a, lo.value, lo.slope, hi.a, hi.value, hi.slope) : NaN;
      // Keep the trial well inside the bracket so it shrinks geometrically.
      if (!Number.isFinite(a) || a < lower + 0.1 * width || a > upper - 0.1 * width) a = (lo.a + hi.a) / 2;
      const p = evalAt(a);
      if (!armijo(p) || p.value >= lo.value) {
        hi = p;
      } else {
        if (curvature(p)) return p;
        if (p.slope * (hi.a - lo.a) >= 0) hi = lo;
        lo = p;
      }
    }
    return lo.a > 0 && armijo(lo) && lo.value < f0 ? lo : null;
  };

  const start: Evaluated = { a: 0, value: f0, grad: new Float64Array(0), slope: slope0 };
  let prev = start;
  let a = a0;
  for (let i = 0; evaluations < o.maxEvaluations; i++) {
    const p = evalAt(a);
    if (!armijo(p) || (i > 0 && p.value >= prev.value)) {
      const r = zoom(prev, p);
      return r ? { point: r, evaluations } : null;
    }
    if (curvature(p)) return { point: p, evaluations };
    if (p.slope >= 0) {
      const r = zoom(p, prev);
      return r ? { point: r, evaluations } : null;
    }
    prev = p;
    a *= 2;
  }
  return prev.a > 0 ? { point: prev, evaluations } : null;
}
